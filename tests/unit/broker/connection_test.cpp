// The protocol machine (client_connection + broker) through a fake transport (harness.hpp).
#include "harness.hpp"

namespace fleetcore::broker {
namespace {

using namespace harness;
using connection_test = broker_fixture;

TEST_F(connection_test, connect_is_acknowledged_byte_for_byte) {
  auto c = open();
  mqtt::connect_packet p;
  p.version = mqtt::protocol_version::v311;
  p.client_id = "dev";
  c->feed(p, mqtt::protocol_version::v311);
  run();
  EXPECT_EQ(c->written, (std::vector<std::uint8_t>{0x20, 0x02, 0x00, 0x00}));
  EXPECT_EQ(hooks_.events, std::vector<std::string>{"connected dev"});
}

TEST_F(connection_test, qos1_and_qos2_publish_reach_a_subscriber_and_are_acknowledged) {
  auto sub = connect("sub");
  subscribe(*sub, "t/#", 2);
  auto pub = connect("pub");
  auto m = publish_of("t/a", "hello", 1, 3);
  pub->feed(m);
  run();
  auto acks = pub->packets();
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks.front()[0], 0x40);                      // PUBACK
  EXPECT_EQ((acks.front()[2] << 8) | acks.front()[3], 3);  // its packet id
  auto got = sub->packets();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got.front()[0] & 0xF6, 0x32);  // PUBLISH QoS 1
  // QoS 2: PUBREC, then PUBREL from the publisher, then PUBCOMP.
  pub->written.clear();
  m.qos = 2;
  m.packet_id = 4;
  pub->feed(m);
  run();
  EXPECT_EQ(pub->packets().front()[0], 0x50);  // PUBREC
  pub->written.clear();
  pub->feed(mqtt::ack_packet{mqtt::packet_type::pubrel, 4, reason_code::success, {}});
  run();
  EXPECT_EQ(pub->packets().front()[0], 0x70);  // PUBCOMP
  EXPECT_EQ(hooks_.events[1], "subscribed sub t/#");
}

TEST_F(connection_test, takeover_disconnects_the_older_connection_with_0x8e) {
  auto first = connect("dup");
  auto second = connect("dup");
  run();
  auto pk = first->packets();
  ASSERT_FALSE(pk.empty());
  EXPECT_EQ(pk.back()[0], 0xE0);  // DISCONNECT
  EXPECT_EQ(pk.back()[2], 0x8E);  // Session taken over
  EXPECT_TRUE(first->closed);
  EXPECT_FALSE(second->closed);
  EXPECT_EQ(hooks_.events[1], "disconnected dup DUPLICATE_CLIENTID");
}

TEST_F(connection_test, keep_alive_expires_at_one_and_a_half_periods_on_the_manual_clock) {
  auto c = connect("sleepy", 10);
  later(*c, std::chrono::milliseconds(14'900));
  EXPECT_FALSE(c->closed);
  later(*c, std::chrono::milliseconds(200));
  EXPECT_TRUE(c->closed);
  auto pk = c->packets();
  ASSERT_FALSE(pk.empty());
  EXPECT_EQ(pk.back()[2], 0x8D);  // Keep alive timeout
  EXPECT_EQ(hooks_.events.back(), "disconnected sleepy MQTT_KEEP_ALIVE_TIMEOUT");
}

TEST_F(connection_test, handshakes_get_30_s_from_accept_then_connect_10_s) {
  // A TLS handshake waiting behind a reconnecting fleet is not cut at 10 s.
  auto c = open();
  later(*c, std::chrono::seconds(29));
  EXPECT_FALSE(c->closed);
  c->transport_ready();  // the handshake is done: CONNECT must come within 10 s
  later(*c, std::chrono::milliseconds(9'900));
  EXPECT_FALSE(c->closed);
  later(*c, std::chrono::milliseconds(200));
  EXPECT_TRUE(c->closed);

  auto stuck = open();  // a handshake that never ends
  later(*stuck, std::chrono::milliseconds(30'100));
  EXPECT_TRUE(stuck->closed);
}

TEST_F(connection_test, mqtt311_keep_alive_zero_gets_the_server_limit) {
  auto c = connect("quiet311", 0, mqtt::protocol_version::v311);
  clock_.advance(std::chrono::seconds(1200 * 3 / 2 + 1));  // max_keep_alive 1200 by default
  c->check_timeouts(clock_.now());
  run();
  EXPECT_TRUE(c->closed);
}

TEST_F(connection_test, client_disconnect_is_client_initiated) {
  auto c = connect("leaver");
  c->feed(mqtt::disconnect_packet{});
  run();
  EXPECT_TRUE(c->closed);
  EXPECT_EQ(hooks_.events.back(), "disconnected leaver CLIENT_INITIATED_DISCONNECT client");
}

TEST_F(connection_test, reserved_topics_are_refused_with_0x87) {
  auto c = connect("forger");
  mqtt::publish_packet m;
  m.qos = 1;
  m.topic = "$aws/events/presence/connected/x";
  m.packet_id = 9;
  c->feed(m);
  run();
  auto pk = c->packets();
  ASSERT_EQ(pk.size(), 1u);
  EXPECT_EQ(pk.front()[0], 0x40);
  EXPECT_EQ(pk.front()[4], 0x87);
}

TEST_F(connection_test, deliver_to_answers_one_session_alone) {
  auto asker = connect("asker");
  auto other = connect("other");
  for (auto* c : {asker.get(), other.get()}) {
    mqtt::subscribe_packet s;
    s.packet_id = 1;
    s.subscriptions.push_back({"reply/#", 1});
    c->feed(s);
  }
  run();
  asker->written.clear();
  other->written.clear();
  b_.deliver_to("asker", hooks_.session_ids["asker"], make_message("reply/key", "secret", 1, false, {}, 0, 0));
  run();
  ASSERT_EQ(asker->packets().size(), 1u);
  EXPECT_EQ(asker->packets().front()[0] & 0xF6, 0x32);  // PUBLISH QoS 1
  EXPECT_TRUE(other->written.empty());                  // subscribed to the same topic, sees nothing
  // A stale session id (the session was replaced) and an unsubscribed topic get nothing.
  asker->written.clear();
  b_.deliver_to("asker", hooks_.session_ids["asker"] + 1000, make_message("reply/key", "x", 1, false, {}, 0, 0));
  b_.deliver_to("asker", hooks_.session_ids["asker"], make_message("elsewhere", "x", 1, false, {}, 0, 0));
  run();
  EXPECT_TRUE(asker->written.empty());
}

TEST_F(connection_test, qos2_pubrec_and_pubcomp_wait_for_their_commits_and_go_to_the_sessions_connection) {
  // A persistent session's QoS 2 id is stored with its message: no PUBREC before that commit, not
  // for a retry either, and the PUBREC goes to the connection the session has when it lands.
  auto pub = connect("pub2", 60, mqtt::protocol_version::v5, 3600);
  store_.hold = true;
  auto m = publish_of("q2/t", "once", 2, 9);
  pub->feed(m);
  run();
  EXPECT_TRUE(pub->written.empty());
  pub->feed(m);  // a retry while the first copy is being stored
  run();
  EXPECT_TRUE(pub->written.empty());
  auto again = connect("pub2", 60, mqtt::protocol_version::v5, 3600);  // the device reconnects
  m.dup = true;
  again->feed(m);
  run();
  EXPECT_TRUE(again->written.empty());
  store_.commit();
  run();
  auto pk = again->packets();
  ASSERT_EQ(pk.size(), 1u);
  EXPECT_EQ(pk.front()[0], 0x50);                      // PUBREC, once
  EXPECT_EQ((pk.front()[2] << 8) | pk.front()[3], 9);  // for its id
  again->written.clear();
  again->feed(mqtt::ack_packet{mqtt::packet_type::pubrel, 9, reason_code::success, {}});
  run();
  EXPECT_TRUE(again->written.empty());  // the id's deletion is not durable yet
  store_.commit();
  run();
  ASSERT_EQ(again->packets().size(), 1u);
  EXPECT_EQ(again->packets().front()[0], 0x70);  // PUBCOMP
}

TEST_F(connection_test, outbound_qos2_publish_and_pubrel_wait_for_their_records) {
  auto sub = connect("sub2", 60, mqtt::protocol_version::v5, 3600);
  subscribe(*sub, "o/#", 2);
  store_.hold = true;
  auto pub = connect("pub3");
  pub->feed(publish_of("o/t", "exactly once", 2, 5));
  run();
  EXPECT_TRUE(sub->written.empty());  // its packet id is not recorded yet
  store_.commit();  // the message, then its packet id
  run();
  store_.commit();
  run();
  auto pk = sub->packets();
  ASSERT_EQ(pk.size(), 1u);
  EXPECT_EQ(pk.front()[0], 0x34);  // PUBLISH QoS 2, no DUP
  const std::uint16_t id = static_cast<std::uint16_t>((pk.front()[7] << 8) | pk.front()[8]);  // after "o/t"
  sub->written.clear();
  sub->feed(mqtt::ack_packet{mqtt::packet_type::pubrec, id, reason_code::success, {}});
  run();
  EXPECT_TRUE(sub->written.empty());  // the release is not durable yet
  store_.commit();
  run();
  ASSERT_EQ(sub->packets().size(), 1u);
  EXPECT_EQ(sub->packets().front()[0], 0x62);  // PUBREL
}

TEST_F(connection_test, a_resumed_session_resends_within_the_new_receive_maximum_and_holds_the_rest) {
  auto resume = [&](std::uint16_t receive_maximum) {
    auto c = open();
    mqtt::connect_packet p;
    p.client_id = "rm";
    p.clean_start = false;
    p.props.session_expiry_interval = 3600;
    p.props.receive_maximum = receive_maximum;
    c->feed(p);
    run();
    return c;
  };
  auto ids_of = [](const std::deque<std::vector<std::uint8_t>>& pk, std::uint8_t header) {
    std::vector<int> ids;
    for (const auto& x : pk) {
      EXPECT_EQ(x[0], header);
      ids.push_back((x[7] << 8) | x[8]);  // after the topic "r/t"
    }
    return ids;
  };
  auto first = resume(10);
  first->written.clear();
  subscribe(*first, "r/#", 1);
  auto pub = connect("pub");
  for (int i = 0; i < 5; ++i) pub->feed(publish_of("r/t", "m" + std::to_string(i), 1, static_cast<std::uint16_t>(i + 1)));
  run();
  EXPECT_EQ(ids_of(first->packets(), 0x32), (std::vector<int>{1, 2, 3, 4, 5}));

  auto second = resume(2);  // takes the session over with a window of 2
  EXPECT_TRUE(first->closed);
  auto pk = second->packets();
  ASSERT_FALSE(pk.empty());
  EXPECT_EQ(pk.front()[0], 0x20);
  pk.pop_front();
  EXPECT_EQ(ids_of(pk, 0x3A), (std::vector<int>{1, 2}));  // DUP, their ids
  auto ack = [&](std::uint16_t id) {
    second->written.clear();
    second->feed(mqtt::ack_packet{mqtt::packet_type::puback, id, reason_code::success, {}});
    run();
    return second->packets();
  };
  EXPECT_EQ(ids_of(ack(1), 0x3A), (std::vector<int>{3}));
  // The client had 5 from the first connection: acknowledging it frees nothing on this one.
  EXPECT_TRUE(ack(5).empty());
  EXPECT_EQ(ids_of(ack(2), 0x3A), (std::vector<int>{4}));
  // A new message waits for a slot, then goes out as new.
  second->written.clear();
  pub->feed(publish_of("r/t", "new", 1, 9));
  run();
  EXPECT_TRUE(second->packets().empty());
  auto next = ack(3);
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next.front()[0], 0x32);  // no DUP
}

TEST_F(connection_test, a_message_whose_storing_failed_is_refused_and_not_kept_for_the_offline_session) {
  auto sub = connect("keeper", 60, mqtt::protocol_version::v5, 3600);
  subscribe(*sub, "k/#", 1);
  sub->feed(mqtt::disconnect_packet{});
  run();
  store_.hold = true;
  auto pub = connect("pub4");
  pub->feed(publish_of("k/t", "lost store", 1, 3));
  run();
  EXPECT_TRUE(pub->packets().empty());  // waits for the commit
  store_.commit(false);
  run();
  auto pk = pub->packets();
  ASSERT_EQ(pk.size(), 1u);
  EXPECT_EQ(pk.front(), (std::vector<std::uint8_t>{0x40, 0x03, 0x00, 0x03, 0x80}));  // PUBACK, unspecified error
  pub->written.clear();
  // Sent again and stored this time: the session gets it once.
  pub->feed(publish_of("k/t", "lost store", 1, 3));
  run();
  store_.commit();
  run();
  store_.hold = false;
  auto back = open();
  mqtt::connect_packet p;
  p.client_id = "keeper";
  p.clean_start = false;
  p.props.session_expiry_interval = 3600;
  back->feed(p);
  run();
  auto got = back->packets();
  ASSERT_EQ(got.size(), 2u);  // CONNACK, then the message once
  EXPECT_EQ(got[0][0], 0x20);
  EXPECT_EQ(got[1][0], 0x32);
}

TEST_F(connection_test, a_qos2_copy_whose_storing_failed_is_not_sent_to_the_online_session) {
  auto sub = connect("q2keeper", 60, mqtt::protocol_version::v5, 3600);
  subscribe(*sub, "q/#", 2);
  store_.hold = true;
  auto pub = connect("pub5");
  pub->feed(publish_of("q/t", "once", 2, 4));
  run();
  EXPECT_TRUE(sub->written.empty());  // waits for its packet id's record
  store_.commit(false);  // the message and its packet id's record both fail
  run();
  EXPECT_TRUE(sub->written.empty());  // withdrawn, never sent
  auto pk = pub->packets();
  ASSERT_EQ(pk.size(), 1u);
  EXPECT_EQ(pk.front(), (std::vector<std::uint8_t>{0x50, 0x03, 0x00, 0x04, 0x80}));  // PUBREC, unspecified error
  pub->written.clear();
  pub->feed(publish_of("q/t", "once", 2, 5));  // sent again, stored this time
  run();
  store_.commit();
  run();
  store_.commit();
  run();
  auto got = sub->packets();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got.front()[0], 0x34);  // the message once, not a DUP
}

}  // namespace
}  // namespace fleetcore::broker
