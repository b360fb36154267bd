// The broker's side of a cluster (peers.cpp, the claim in sessions.cpp) against a fake cluster_link:
// what it tells the link, what it hands over, and what it does with what peers send.
#include "harness.hpp"

namespace fleetcore::broker {
namespace {

using namespace harness;

/// Records what the broker asks of the cluster; interest changes may be held to show what waits.
struct fake_link final : cluster_link {
  struct forwarded_message {
    std::string node;
    message_ptr m;
    std::vector<std::string> groups;
    forward_done done;
  };
  std::vector<std::pair<std::string, bool>> interests;
  std::vector<std::function<void()>> held_interest;
  bool hold_interest = false;
  std::vector<std::string> claims;
  std::vector<forwarded_message> forwarded;

  void interest(const std::string& filter, bool add, std::function<void()> done) override {
    interests.emplace_back(filter, add);
    if (hold_interest)
      held_interest.push_back(std::move(done));
    else if (done)
      done();
  }
  void claim(const std::string& client_id, bool, std::function<void(bool)> done) override {
    claims.push_back(client_id);
    done(held_elsewhere);
  }
  bool held_elsewhere = false;
  void forward(const std::string& node, const message_ptr& m, std::vector<std::string> groups,
               forward_done done) override {
    forwarded.push_back({node, m, std::move(groups), std::move(done)});
  }
};

class peers_test : public broker_fixture {
 protected:
  peers_test() { b_.set_cluster(&link_); }
  ~peers_test() override { b_.set_cluster(nullptr); }

  /// Peer `node` has interest in `filters`.
  void peer(const std::string& node, std::vector<std::string> filters) {
    b_.peer_reset(node, nullptr);
    std::vector<std::pair<std::string, bool>> changes;
    for (auto& f : filters) changes.emplace_back(std::move(f), true);
    b_.peer_interest(node, std::move(changes), nullptr);
    run();
  }
  std::uint8_t puback_reason(fake_connection& c) {
    auto pk = c.packets();
    EXPECT_EQ(pk.size(), 1u);
    if (pk.empty()) return 0xFF;
    EXPECT_EQ(pk.front()[0], 0x40);
    return pk.front().size() > 4 ? pk.front()[4] : 0;
  }

  /// The persistent session of "dev" as node n2 stored it: incarnation 5, subscribed to t/# at QoS 1.
  static storage::session_record dev_held_by_n2() {
    storage::session_record r;
    r.client_id = "dev";
    r.incarnation = 5;
    r.expiry_interval = 3600;
    r.protocol = 5;
    r.node = "n2";
    r.subscriptions.push_back({"t/#", 1, 0});
    return r;
  }
  /// A CONNECT of `id` resuming its session (MQTT 5, expiry 3600), run; what it wrote is not checked.
  std::shared_ptr<harness::fake_connection> resume(const std::string& id) {
    auto c = open();
    mqtt::connect_packet p;
    p.client_id = id;
    p.clean_start = false;
    p.props.session_expiry_interval = 3600;
    c->feed(p);
    run();
    return c;
  }

  fake_link link_;
};

TEST_F(peers_test, a_connect_claims_the_client_id_and_a_subscription_is_interest) {
  auto c = connect("dev");
  EXPECT_EQ(link_.claims, std::vector<std::string>{"dev"});
  // The SUBACK waits until the peers know of the new interest.
  link_.hold_interest = true;
  mqtt::subscribe_packet s;
  s.packet_id = 7;
  s.subscriptions.push_back({"t/#", 1});
  c->feed(s);
  run();
  EXPECT_TRUE(c->packets().empty());
  ASSERT_EQ(link_.interests, (std::vector<std::pair<std::string, bool>>{{"t/#", true}}));
  link_.held_interest.front()();
  run();
  ASSERT_EQ(c->packets().size(), 1u);
  EXPECT_EQ(c->packets().front()[0], 0x90);
  // A second subscriber of a filter whose first is still being told waits for the same answer.
  mqtt::subscribe_packet u;
  u.packet_id = 8;
  u.subscriptions.push_back({"u/#", 1});
  c->written.clear();
  c->feed(u);
  run();
  auto d = connect("dev2");
  u.packet_id = 9;
  d->feed(u);
  run();
  EXPECT_EQ(link_.interests.size(), 2u);  // u/# told once
  EXPECT_TRUE(c->packets().empty());
  EXPECT_TRUE(d->packets().empty());
  link_.held_interest.back()();
  run();
  EXPECT_EQ(c->packets().size(), 1u);
  EXPECT_EQ(d->packets().size(), 1u);
  // A later subscriber of a filter already known is no news; the last one leaving is.
  link_.hold_interest = false;
  subscribe(*d, "t/#", 0);
  EXPECT_EQ(link_.interests.size(), 2u);
  c->feed(mqtt::disconnect_packet{});
  d->feed(mqtt::disconnect_packet{});
  run();
  EXPECT_EQ(std::count(link_.interests.begin(), link_.interests.end(), std::pair<std::string, bool>{"t/#", false}), 1);
}

TEST_F(peers_test, a_qos1_publish_is_acknowledged_once_the_peer_stored_it) {
  peer("n2", {"t/+"});
  auto pub = connect("pub");
  pub->feed(publish_of("t/a", "x", 1, 3));
  run();
  ASSERT_EQ(link_.forwarded.size(), 1u);
  EXPECT_EQ(link_.forwarded[0].node, "n2");
  EXPECT_EQ(link_.forwarded[0].m->topic, "t/a");
  EXPECT_TRUE(link_.forwarded[0].groups.empty());
  EXPECT_TRUE(pub->packets().empty());  // waits for n2
  link_.forwarded[0].done(true, 1);
  run();
  EXPECT_EQ(puback_reason(*pub), 0x00);  // success: n2 has a subscriber
  // A peer that refuses (or never answers) refuses the publisher, who sends again.
  pub->written.clear();
  pub->feed(publish_of("t/a", "y", 1, 4));
  run();
  ASSERT_EQ(link_.forwarded.size(), 2u);
  link_.forwarded[1].done(false, 0);
  run();
  EXPECT_GE(puback_reason(*pub), 0x80);
}

TEST_F(peers_test, a_peers_message_reaches_local_subscribers_and_goes_no_further) {
  auto sub = connect("sub");
  subscribe(*sub, "t/#", 1);
  peer("n2", {"t/#"});
  auto m = make_message("t/a", "from n2", 1, false, {}, 0, 0);
  bool acked = false;
  std::size_t recipients = 0;
  b_.publish_from_peer(m, 42, {}, [&](bool durable, std::size_t n) {
    acked = durable;
    recipients = n;
  });
  run();
  EXPECT_TRUE(acked);
  EXPECT_EQ(recipients, 1u);
  ASSERT_EQ(sub->packets().size(), 1u);
  EXPECT_TRUE(link_.forwarded.empty());  // never back to a peer
}

TEST_F(peers_test, a_shared_group_takes_turns_between_local_members_and_peers) {
  auto member = connect("member");
  subscribe(*member, "$share/g/w/+", 1);
  peer("n2", {"$share/g/w/+"});
  auto pub = connect("pub");
  pub->feed(publish_of("w/1", "a", 0, 0));
  pub->feed(publish_of("w/2", "b", 0, 0));
  run();
  EXPECT_EQ(member->packets().size(), 1u);
  ASSERT_EQ(link_.forwarded.size(), 1u);
  EXPECT_EQ(link_.forwarded[0].groups, std::vector<std::string>{"g"});
  // From a peer, picked for group g here: the local member gets it; for another group, nobody.
  member->written.clear();
  b_.publish_from_peer(make_message("w/3", "c", 0, false, {}, 0, 0), 1, {"g"}, nullptr);
  b_.publish_from_peer(make_message("w/4", "d", 0, false, {}, 0, 0), 1, {"other"}, nullptr);
  run();
  EXPECT_EQ(member->packets().size(), 1u);
  EXPECT_EQ(link_.forwarded.size(), 1u);
}

TEST_F(peers_test, a_node_gets_one_frame_whatever_matched_it) {
  // Each node matches as a plain subscriber and as the one member of a group: targets sort plain ones
  // first, so one node's entries are apart whatever the order of the two.
  peer("n2", {"s/#", "$share/g1/s/+"});
  peer("n3", {"s/#", "$share/g2/s/+"});
  auto pub = connect("pub");
  pub->feed(publish_of("s/1", "x", 0, 0));
  run();
  std::map<std::string, std::vector<std::string>> frames;
  for (auto& f : link_.forwarded) {
    EXPECT_FALSE(frames.contains(f.node)) << f.node << " got two frames";
    frames[f.node] = f.groups;
  }
  EXPECT_EQ(frames, (std::map<std::string, std::vector<std::string>>{{"n2", {"g1"}}, {"n3", {"g2"}}}));
}

TEST_F(peers_test, retained_messages_go_to_every_peer) {
  peer("n2", {});
  peer("n3", {"r/#"});
  auto pub = connect("pub");
  mqtt::publish_packet m = publish_of("r/x", "v", 0, 0);
  m.retain = true;
  pub->feed(m);
  run();
  ASSERT_EQ(link_.forwarded.size(), 2u);
  std::set<std::string> nodes{link_.forwarded[0].node, link_.forwarded[1].node};
  EXPECT_EQ(nodes, (std::set<std::string>{"n2", "n3"}));
  // A gone peer gets nothing more.
  b_.peer_gone("n3");
  run();
  pub->feed(m);
  run();
  ASSERT_EQ(link_.forwarded.size(), 3u);
  EXPECT_EQ(link_.forwarded[2].node, "n2");
}

TEST_F(peers_test, release_hands_a_persistent_session_over_without_deleting_it) {
  auto dev = connect("dev", 60, mqtt::protocol_version::v5, 3600);
  subscribe(*dev, "d/t", 1);
  store_.written.clear();
  bool had = false;
  b_.release("dev", false, [&](bool h) { had = h; });
  run();
  EXPECT_TRUE(had);
  auto pk = dev->packets();
  ASSERT_FALSE(pk.empty());
  EXPECT_EQ(pk.front()[0], 0xE0);  // DISCONNECT
  EXPECT_EQ(pk.front()[2], 0x8E);  // session taken over
  EXPECT_EQ(store_.count<storage::op::delete_session>(), 0u);
  EXPECT_EQ(link_.interests.back(), (std::pair<std::string, bool>{"d/t", false}));
  // Given up with clean start, the session ends (and its rows go).
  auto other = connect("other", 60, mqtt::protocol_version::v5, 3600);
  store_.written.clear();
  b_.release("other", true, [&](bool h) { had = h; });
  run();
  EXPECT_FALSE(had);
  EXPECT_EQ(store_.count<storage::op::delete_session>(), 1u);
}

TEST_F(peers_test, a_local_copy_is_stale_when_another_node_held_the_session) {
  auto dev = connect("dev", 60, mqtt::protocol_version::v5, 3600);
  subscribe(*dev, "s/t", 1);
  dev->feed(mqtt::disconnect_packet{});
  run();
  // The client moved to another node while this one was cut off; now it is back here, and the other
  // node says it had the session: the one here is not resumed, nor deleted (the store has the other's).
  link_.held_elsewhere = true;
  store_.written.clear();
  auto back = resume("dev");
  auto pk = back->packets();
  ASSERT_FALSE(pk.empty());
  EXPECT_EQ(pk.front()[0], 0x20);
  EXPECT_EQ(pk.front()[2], 0x00);  // no session present: the store had none to take over here
  EXPECT_EQ(store_.count<storage::op::delete_session>(), 0u);
}

// A node that died held a persistent session subscribed to t/#. Until a surviving node has taken it
// over, a QoS 1 message for it is refused to its publisher (who sends it again), not acknowledged and
// lost; QoS 0 goes nowhere, and its shared groups have other members.
TEST_F(peers_test, a_gone_nodes_sessions_refuse_qos1_until_taken_over_here) {
  peer("n2", {"t/#", "$share/g/s"});
  b_.peer_gone("n2", true);
  run();
  auto pub = connect("pub");
  pub->feed(publish_of("t/a", "x", 1, 3));
  run();
  EXPECT_TRUE(link_.forwarded.empty());
  EXPECT_EQ(puback_reason(*pub), 0x80);
  pub->written.clear();
  pub->feed(publish_of("t/a", "x", 0, 0));
  pub->feed(publish_of("s", "y", 1, 4));  // the group's stand-in for n2 is gone: no member, no wait
  run();
  EXPECT_TRUE(link_.forwarded.empty());
  EXPECT_EQ(puback_reason(*pub), 0x10);  // no matching subscribers

  // This node is the heir: the session moves to a new incarnation held here, its subscription is
  // this node's interest, and its queued message waits for its client.
  auto r = dev_held_by_n2();
  r.queue.push_back({7, {"t/old", "queued", 1, false, "", 0}, {}});
  store_.node_sessions = {r};
  long taken = -2;
  b_.inherit("n2", [&](long n) { taken = n; });
  run();
  EXPECT_EQ(taken, 1);
  ASSERT_EQ(store_.count<storage::op::adopt_session>(), 1u);
  auto adopt = std::get<storage::op::adopt_session>(*std::find_if(
      store_.written.begin(), store_.written.end(),
      [](const auto& op) { return std::holds_alternative<storage::op::adopt_session>(op); }));
  EXPECT_EQ(std::tuple(adopt.client_id, adopt.from, adopt.node), std::tuple(std::string("dev"), std::uint64_t{5}, std::string()));
  EXPECT_NE(adopt.to, 5u);
  EXPECT_EQ(std::count(link_.interests.begin(), link_.interests.end(), std::pair<std::string, bool>{"t/#", true}), 1);
  b_.orphan_adopted("n2");
  run();
  pub->written.clear();
  store_.written.clear();
  pub->feed(publish_of("t/a", "z", 1, 5));
  run();
  EXPECT_TRUE(link_.forwarded.empty());
  EXPECT_EQ(puback_reason(*pub), 0x00);
  ASSERT_EQ(store_.count<storage::op::put_message>(), 1u);
  EXPECT_EQ(std::get<storage::op::put_message>(*std::find_if(
                store_.written.begin(), store_.written.end(),
                [](const auto& op) { return std::holds_alternative<storage::op::put_message>(op); }))
                .incarnation,
            adopt.to);
  // Its client comes back here: the session is present with both messages, in order.
  auto dev = resume("dev");
  auto pk = dev->packets();
  ASSERT_EQ(pk.size(), 3u);
  EXPECT_EQ(std::tuple(pk[0][0], pk[0][2]), std::tuple(std::uint8_t{0x20}, std::uint8_t{0x01}));  // session present
  EXPECT_NE(std::string(pk[1].begin(), pk[1].end()).find("queued"), std::string::npos);
  EXPECT_NE(std::string(pk[2].begin(), pk[2].end()).find("z"), std::string::npos);
}

// Another node (or the session's client, through it) took the session first: the adoption's batch
// fails, and the copy here goes without a trace in the tries or the store.
TEST_F(peers_test, a_session_another_node_took_first_is_not_kept) {
  store_.node_sessions = {dev_held_by_n2()};
  store_.hold = true;
  long taken = -2;
  b_.inherit("n2", [&](long n) { taken = n; });
  run();
  store_.commit(false);
  run();
  EXPECT_EQ(taken, 0);
  EXPECT_TRUE(link_.interests.empty());
  EXPECT_EQ(store_.count<storage::op::delete_session>(), 0u);  // its rows are the other node's
  store_.hold = false;
  auto pub = connect("pub");
  pub->feed(publish_of("t/a", "x", 1, 3));
  run();
  EXPECT_EQ(puback_reason(*pub), 0x10);  // nobody here subscribes
}

// A client connects here while the heir of its dead node takes its session over: the first to move
// the stored rows has it. Losing, this node refuses the CONNECT (0x88: server unavailable) rather than
// resume a copy whose rows are another's; the client comes back, and its claim finds the session.
TEST_F(peers_test, a_connect_that_loses_the_session_to_another_node_is_refused) {
  store_.node_sessions = {dev_held_by_n2()};
  store_.hold = true;
  auto lost = resume("dev");
  EXPECT_TRUE(lost->packets().empty());  // waits for its rows to move
  store_.commit(false);
  run();
  auto pk = lost->packets();
  ASSERT_EQ(pk.size(), 1u);
  EXPECT_EQ(std::tuple(pk[0][0], pk[0][3]), std::tuple(std::uint8_t{0x20}, std::uint8_t{0x88}));
  EXPECT_TRUE(link_.interests.empty());
  // Won: the session is resumed, its subscription this node's interest before the CONNACK.
  auto won = resume("dev");
  store_.commit(true);
  run();
  pk = won->packets();
  ASSERT_EQ(pk.size(), 1u);
  EXPECT_EQ(std::tuple(pk[0][0], pk[0][2], pk[0][3]), std::tuple(std::uint8_t{0x20}, std::uint8_t{1}, std::uint8_t{0}));
  EXPECT_EQ(link_.interests, (std::vector<std::pair<std::string, bool>>{{"t/#", true}}));
}

}  // namespace
}  // namespace fleetcore::broker
