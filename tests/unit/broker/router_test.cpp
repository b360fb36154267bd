#include "broker/router.hpp"
#include "broker/session.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

namespace fleetcore::broker {
namespace {

std::shared_ptr<session> make(const char* id) { return std::make_shared<session>(id, 1, nullptr); }

std::multiset<std::string> matched(router& r, std::string_view topic) {
  std::vector<route_entry> out;
  r.match(topic, out);
  std::multiset<std::string> ids;
  for (auto& e : out) ids.insert(e.target->client_id);
  return ids;
}

TEST(router, exact_and_wildcards) {
  router r;
  auto a = make("a"), b = make("b"), c = make("c"), d = make("d");
  r.add("s/1/temp", "", a, {});
  r.add("s/+/temp", "", b, {});
  r.add("s/#", "", c, {});
  r.add("#", "", d, {});
  EXPECT_EQ(matched(r, "s/1/temp"), (std::multiset<std::string>{"a", "b", "c", "d"}));
  EXPECT_EQ(matched(r, "s/2/temp"), (std::multiset<std::string>{"b", "c", "d"}));
  EXPECT_EQ(matched(r, "s"), (std::multiset<std::string>{"c", "d"}));  // "s/#" matches its parent
  EXPECT_EQ(matched(r, "other"), (std::multiset<std::string>{"d"}));
  EXPECT_EQ(r.subscription_count(), 4u);
}

TEST(router, dollar_topics_skip_root_wildcards) {
  router r;
  auto a = make("a"), b = make("b"), c = make("c");
  r.add("#", "", a, {});
  r.add("+/x", "", b, {});
  r.add("$SYS/#", "", c, {});
  EXPECT_EQ(matched(r, "$SYS/x"), (std::multiset<std::string>{"c"}));
  EXPECT_EQ(matched(r, "a/x"), (std::multiset<std::string>{"a", "b"}));
}

TEST(router, empty_levels) {
  router r;
  auto a = make("a");
  r.add("+/+", "", a, {});
  EXPECT_EQ(matched(r, "/x").size(), 1u);
  EXPECT_EQ(matched(r, "x/").size(), 1u);
  EXPECT_EQ(matched(r, "x").size(), 0u);
}

TEST(router, replace_options_and_remove_prunes) {
  router r;
  auto a = make("a");
  r.add("x/y", "", a, {0});
  r.add("x/y", "", a, {2});
  std::vector<route_entry> out;
  r.match("x/y", out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].opts.qos, 2);
  EXPECT_TRUE(r.remove("x/y", "", a.get()));
  EXPECT_FALSE(r.remove("x/y", "", a.get()));
  EXPECT_EQ(r.subscription_count(), 0u);
  EXPECT_TRUE(matched(r, "x/y").empty());
}

TEST(router, shared_group_round_robin_prefers_online) {
  router r;
  auto a = make("a"), b = make("b"), c = make("c"), plain = make("p");
  for (auto& s : {a, b, c}) r.add("jobs/+", "g", s, {});
  r.add("jobs/+", "", plain, {});
  a->online = true;
  b->online = true;
  c->online = false;  // offline members are skipped while anyone is online
  std::map<std::string, int> counts;
  for (int i = 0; i < 100; ++i) {
    std::vector<route_entry> out;
    r.match("jobs/1", out);
    ASSERT_EQ(out.size(), 2u);  // the plain subscriber and one member
    for (auto& e : out)
      if (e.shared) counts[e.target->client_id]++;
  }
  EXPECT_EQ(counts["a"], 50);
  EXPECT_EQ(counts["b"], 50);
  EXPECT_EQ(counts["c"], 0);
  EXPECT_TRUE(r.remove("jobs/+", "g", a.get()));
  EXPECT_EQ(r.subscription_count(), 3u);
}

TEST(router, two_groups_each_get_one) {
  router r;
  auto a = make("a"), b = make("b");
  r.add("t", "g1", a, {});
  r.add("t", "g2", b, {});
  EXPECT_EQ(matched(r, "t"), (std::multiset<std::string>{"a", "b"}));
}

TEST(router, peers_are_matched_with_their_groups_unless_skipped) {
  router r;
  auto a = make("a"), node = make("n2");
  node->peer = true;
  node->online = true;
  r.add("t/+", "", a, {});
  r.add("t/#", "", node, {});
  r.add("t/+", "g", node, {});
  std::vector<route_entry> out;
  std::vector<std::string_view> groups;
  r.match("t/1", out, &groups);
  ASSERT_EQ(out.size(), 3u);
  ASSERT_EQ(groups.size(), 3u);
  std::multiset<std::pair<std::string, std::string>> got;
  for (std::size_t i = 0; i < out.size(); ++i) got.emplace(out[i].target->client_id, std::string(groups[i]));
  EXPECT_EQ(got, (std::multiset<std::pair<std::string, std::string>>{{"a", ""}, {"n2", ""}, {"n2", "g"}}));
  // A message from a peer is not routed back to peers; a group whose only member is a peer picks no one.
  out.clear();
  r.match("t/1", out, nullptr, true);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].target->client_id, "a");
}

TEST(router, shared_group_round_robin_includes_peers) {
  router r;
  auto a = make("a"), node = make("n2");
  a->online = true;
  node->peer = true;
  node->online = true;
  r.add("w", "g", a, {});
  r.add("w", "g", node, {});
  std::map<std::string, int> counts;
  for (int i = 0; i < 10; ++i) {
    std::vector<route_entry> out;
    r.match("w", out);
    ASSERT_EQ(out.size(), 1u);
    counts[out[0].target->client_id]++;
  }
  EXPECT_EQ(counts["a"], 5);
  EXPECT_EQ(counts["n2"], 5);
  // Skipping peers, the local member gets every message.
  for (int i = 0; i < 3; ++i) {
    std::vector<route_entry> out;
    r.match("w", out, nullptr, true);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].target->client_id, "a");
  }
}

TEST(router, add_tells_whether_the_subscription_is_new) {
  router r;
  auto a = make("a");
  EXPECT_TRUE(r.add("x", "", a, {0}));
  EXPECT_FALSE(r.add("x", "", a, {1}));
  EXPECT_TRUE(r.add("x", "g", a, {0}));
}

}  // namespace
}  // namespace fleetcore::broker
