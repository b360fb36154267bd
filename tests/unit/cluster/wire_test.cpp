#include "cluster/wire.hpp"

#include <gtest/gtest.h>

#include <tuple>

namespace fleetcore::cluster::wire {
namespace {

TEST(cluster_wire, message_round_trip) {
  message m{"node-1", 42, 7, 2, true, 3, 1'700'000'000'000, "a/b", std::string("\x01\x01", 2), {"g1", "g2"},
            std::string("pay\0load", 8)};
  auto frame = encode(m);
  ASSERT_EQ(kind_of(frame), kind::message);
  auto d = decode_message(frame);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->node, "node-1");
  EXPECT_EQ(d->request, 42u);
  EXPECT_EQ(d->order_key, 7u);
  EXPECT_EQ(d->qos, 2);
  EXPECT_TRUE(d->retain);
  EXPECT_EQ(d->rule_hops, 3);
  EXPECT_EQ(d->expiry_at_ms, 1'700'000'000'000);
  EXPECT_EQ(d->topic, "a/b");
  EXPECT_EQ(d->props, std::string("\x01\x01", 2));
  EXPECT_EQ(d->groups, (std::vector<std::string>{"g1", "g2"}));
  EXPECT_EQ(d->payload, std::string("pay\0load", 8));
}

TEST(cluster_wire, interest_hello_ack_round_trip) {
  interest i{"n2", 99, 5, true, true, {{"a/#", true}, {"$share/g/b", false}}};
  auto di = decode_interest(encode(i));
  ASSERT_TRUE(di);
  EXPECT_EQ(di->node, "n2");
  EXPECT_EQ(di->epoch, 99u);
  EXPECT_EQ(di->request, 5u);
  EXPECT_TRUE(di->reset);
  EXPECT_TRUE(di->want_reply);
  EXPECT_EQ(di->changes, i.changes);

  auto dh = decode_hello(encode(hello{"n3", 12345}));
  ASSERT_TRUE(dh);
  EXPECT_EQ(dh->node, "n3");
  EXPECT_EQ(dh->epoch, 12345u);

  auto dc = decode_claim(encode(claim{"n1", 4, 8, "dev-7", true}));
  ASSERT_TRUE(dc);
  EXPECT_EQ(dc->client_id, "dev-7");
  EXPECT_EQ(dc->request, 8u);
  EXPECT_TRUE(dc->clean_start);
  EXPECT_FALSE(decode_claim(encode(claim{"n1", 4, 0, "dev-7", true})));  // a claim is always a request

  documents docs{"n1", 4, {{false, "thing", "lamp", "{}"}, {true, "policy", "p1", ""}}};
  auto dd = decode_documents(encode(docs));
  ASSERT_TRUE(dd);
  EXPECT_EQ(dd->entries, docs.entries);

  auto db = decode_bye(encode(bye{"n3", 12345}));
  ASSERT_TRUE(db);
  EXPECT_EQ(db->node, "n3");
  EXPECT_FALSE(decode_hello(encode(bye{"n3", 1})));

  auto dt = decode_inherited(encode(inherited{"n1", 5, "n3"}));
  ASSERT_TRUE(dt);
  EXPECT_EQ(std::tuple(dt->node, dt->epoch, dt->of), std::tuple(std::string("n1"), std::uint64_t{5}, std::string("n3")));
  EXPECT_FALSE(decode_inherited(encode(inherited{"n1", 5, ""})));  // of nobody

  auto da = decode_ack(encode(ack{"n9", 77, true, 3}));
  ASSERT_TRUE(da);
  EXPECT_EQ(da->node, "n9");
  EXPECT_EQ(da->request, 77u);
  EXPECT_TRUE(da->ok);
  EXPECT_EQ(da->recipients, 3u);
}

TEST(cluster_wire, truncated_or_padded_frames_are_refused) {
  auto frame = encode(interest{"n", 1, 2, false, false, {{"a", true}}});
  for (std::size_t n = 0; n < frame.size(); ++n) EXPECT_FALSE(decode_interest(frame.substr(0, n))) << n;
  EXPECT_FALSE(decode_interest(frame + "x"));
  auto h = encode(hello{"n", 1});
  EXPECT_FALSE(decode_hello(h + "x"));
  EXPECT_FALSE(decode_ack(encode(ack{"n", 1, true, 1}).substr(0, 5)));
  // The wrong kind, an unknown version, a bad flag.
  EXPECT_FALSE(decode_hello(frame));
  auto bad_version = h;
  bad_version[1] = 9;
  EXPECT_FALSE(decode_hello(bad_version));
  auto a = encode(ack{"n", 1, true, 1});
  a[13] = 2;  // ok is 0 or 1 (after kind, version, node "n" and the 8-byte request)
  EXPECT_FALSE(decode_ack(a));
  EXPECT_FALSE(kind_of(""));
  EXPECT_FALSE(kind_of("Z"));
}

TEST(cluster_wire, counts_beyond_the_frame_are_refused) {
  auto frame = encode(interest{"n", 1, 0, true, false, {}});
  // The change count is the last four bytes: claim four billion changes.
  frame.replace(frame.size() - 4, 4, "\xff\xff\xff\xff");
  EXPECT_FALSE(decode_interest(frame));
  message m{"n", 0, 0, 1, false, 0, 0, "t", "", {}, "p"};
  auto f = encode(m);
  EXPECT_TRUE(decode_message(f));
  m.qos = 3;
  EXPECT_FALSE(decode_message(encode(m)));
  m.qos = 1;
  m.topic.clear();
  EXPECT_FALSE(decode_message(encode(m)));
}

}  // namespace
}  // namespace fleetcore::cluster::wire
