#include "mqtt/codec.hpp"

#include <gtest/gtest.h>

namespace fleetcore::mqtt {
namespace {

using bytes = std::vector<std::uint8_t>;
constexpr std::uint32_t big = 1 << 20;

packet round_trip(const packet& p, protocol_version v) {
  bytes wire = encode(p, v);
  auto r = decode(wire, v, big);
  EXPECT_EQ(r.state, decode_result::status::ok) << to_string(r.error);
  EXPECT_EQ(r.consumed, wire.size());
  // Every strict prefix is incomplete, never an error.
  for (std::size_t n = 0; n < wire.size(); ++n) {
    auto partial = decode(std::span(wire.data(), n), v, big);
    EXPECT_EQ(partial.state, decode_result::status::need_more) << "prefix " << n;
  }
  return r.pkt;
}

decode_result decode_bytes(const bytes& b, protocol_version v = protocol_version::v5,
                           std::uint32_t max = big) {
  return decode(b, v, max);
}

class codec_both : public ::testing::TestWithParam<protocol_version> {};

TEST_P(codec_both, connect_round_trip) {
  connect_packet c;
  c.version = GetParam();
  c.clean_start = false;
  c.keep_alive = 30;
  c.client_id = "dev-1";
  c.username = "user";
  c.password = std::string("p\0w", 3);
  will_message w;
  w.topic = "will/t";
  w.payload = "bye";
  w.qos = 1;
  w.retain = true;
  if (GetParam() == protocol_version::v5) {
    w.props.will_delay_interval = 5;
    w.props.user_properties.push_back({"k", "v"});
    c.props.session_expiry_interval = 3600;
    c.props.receive_maximum = 10;
    c.props.topic_alias_maximum = 5;
    c.props.maximum_packet_size = 4096;
  }
  c.will = w;
  EXPECT_EQ(std::get<connect_packet>(round_trip(c, GetParam())), c);
}

TEST_P(codec_both, publish_round_trip_all_qos) {
  for (std::uint8_t qos = 0; qos <= 2; ++qos) {
    publish_packet p;
    p.qos = qos;
    p.retain = qos == 1;
    p.dup = qos == 2;
    p.topic = "a/b/c";
    p.packet_id = qos ? 42 : 0;
    p.payload = std::string(300, 'x');  // two-byte remaining length
    if (GetParam() == protocol_version::v5) {
      p.props.message_expiry_interval = 10;
      p.props.content_type = "text/plain";
      p.props.response_topic = "reply/here";
      p.props.correlation_data = std::string("\x00\x01", 2);
      p.props.payload_format_indicator = 1;
      p.props.user_properties = {{"a", "1"}, {"a", "2"}};
    }
    EXPECT_EQ(std::get<publish_packet>(round_trip(p, GetParam())), p);
  }
}

TEST_P(codec_both, acks_round_trip) {
  for (auto t : {packet_type::puback, packet_type::pubrec, packet_type::pubrel, packet_type::pubcomp}) {
    ack_packet a;
    a.type = t;
    a.packet_id = 7;
    if (GetParam() == protocol_version::v5) {
      a.reason = reason_code::no_matching_subscribers;
      a.props.reason_string = "none";
    }
    EXPECT_EQ(std::get<ack_packet>(round_trip(a, GetParam())), a);
  }
}

TEST_P(codec_both, subscribe_family_round_trip) {
  subscribe_packet s;
  s.packet_id = 9;
  s.subscriptions.push_back({"a/+/c", 1});
  s.subscriptions.push_back({"#", 2});
  if (GetParam() == protocol_version::v5) {
    s.subscriptions[0].no_local = true;
    s.subscriptions[0].retain_as_published = true;
    s.subscriptions[1].handling = retain_handling::dont_send;
    s.props.subscription_identifiers = {12};
  }
  EXPECT_EQ(std::get<subscribe_packet>(round_trip(s, GetParam())), s);

  suback_packet sa{9, {reason_code::granted_qos1, reason_code::success}, {}};
  EXPECT_EQ(std::get<suback_packet>(round_trip(sa, GetParam())), sa);

  unsubscribe_packet u{10, {"a/+/c", "#"}, {}};
  EXPECT_EQ(std::get<unsubscribe_packet>(round_trip(u, GetParam())), u);

  unsuback_packet ua{10, {}, {}};
  if (GetParam() == protocol_version::v5)
    ua.reasons = {reason_code::success, reason_code::no_subscription_existed};
  EXPECT_EQ(std::get<unsuback_packet>(round_trip(ua, GetParam())), ua);
}

TEST_P(codec_both, control_packets_round_trip) {
  round_trip(pingreq_packet{}, GetParam());
  round_trip(pingresp_packet{}, GetParam());
  disconnect_packet d;
  if (GetParam() == protocol_version::v5) {
    d.reason = reason_code::disconnect_with_will;
    d.props.session_expiry_interval = 0;
  }
  EXPECT_EQ(std::get<disconnect_packet>(round_trip(d, GetParam())), d);
  connack_packet ca;
  ca.session_present = true;
  if (GetParam() == protocol_version::v5) {
    ca.props.assigned_client_identifier = "auto-1";
    ca.props.server_keep_alive = 20;
    ca.props.topic_alias_maximum = 10;
  }
  EXPECT_EQ(std::get<connack_packet>(round_trip(ca, GetParam())), ca);
}

INSTANTIATE_TEST_SUITE_P(versions, codec_both,
                         ::testing::Values(protocol_version::v311, protocol_version::v5));

TEST(codec, auth_round_trip_v5) {
  auth_packet a;
  a.reason = reason_code::continue_authentication;
  a.props.authentication_method = "SCRAM";
  a.props.authentication_data = "abc";
  EXPECT_EQ(std::get<auth_packet>(round_trip(a, protocol_version::v5)), a);
}

TEST(codec, v311_connack_return_codes) {
  connack_packet ca;
  ca.reason = reason_code::not_authorized;
  EXPECT_EQ(encode(ca, protocol_version::v311), (bytes{0x20, 0x02, 0x00, 0x05}));
  ca.reason = reason_code::unsupported_protocol_version;
  EXPECT_EQ(encode(ca, protocol_version::v311), (bytes{0x20, 0x02, 0x00, 0x01}));
}

TEST(codec, known_bytes) {
  // PUBLISH QoS 1 "a/b" id 1 payload "hi", 3.1.1.
  bytes b{0x32, 0x09, 0x00, 0x03, 'a', '/', 'b', 0x00, 0x01, 'h', 'i'};
  auto r = decode_bytes(b, protocol_version::v311);
  ASSERT_EQ(r.state, decode_result::status::ok);
  auto& p = std::get<publish_packet>(r.pkt);
  EXPECT_EQ(p.topic, "a/b");
  EXPECT_EQ(p.packet_id, 1);
  EXPECT_EQ(p.payload, "hi");
  EXPECT_EQ(encode(p, protocol_version::v311), b);
}

TEST(codec_malformed, remaining_length_too_long) {
  auto r = decode_bytes({0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01});
  EXPECT_EQ(r.state, decode_result::status::error);
  EXPECT_EQ(r.error, reason_code::malformed_packet);
}

TEST(codec_malformed, reserved_packet_type_and_flags) {
  EXPECT_EQ(decode_bytes({0x00, 0x00}).error, reason_code::malformed_packet);
  EXPECT_EQ(decode_bytes({0xC1, 0x00}).error, reason_code::malformed_packet);  // PINGREQ flags
  EXPECT_EQ(decode_bytes({0x80, 0x05, 0, 1, 0, 1, 'a'}).error, reason_code::malformed_packet);  // SUBSCRIBE flags
  EXPECT_EQ(decode_bytes({0xF0, 0x00}, protocol_version::v311).error, reason_code::malformed_packet);  // AUTH in 3.1.1
}

TEST(codec_malformed, publish_qos3_and_dup_on_qos0) {
  EXPECT_EQ(decode_bytes({0x36, 0x05, 0, 1, 'a', 0, 1}).error, reason_code::malformed_packet);
  EXPECT_EQ(decode_bytes({0x38, 0x04, 0, 1, 'a', 0}).error, reason_code::malformed_packet);
}

TEST(codec_malformed, publish_with_wildcard_topic) {
  EXPECT_EQ(decode_bytes({0x30, 0x04, 0, 1, '#', 0}).error, reason_code::topic_name_invalid);
  EXPECT_EQ(decode_bytes({0x30, 0x03, 0, 1, '+'}, protocol_version::v311).error,
            reason_code::topic_name_invalid);
}

TEST(codec_malformed, bad_utf8) {
  // Topic containing an overlong encoding, a surrogate and U+0000.
  for (bytes topic : {bytes{0xC0, 0xAF}, bytes{0xED, 0xA0, 0x80}, bytes{'a', 0x00}}) {
    bytes b{0x30, static_cast<std::uint8_t>(2 + topic.size()), 0, static_cast<std::uint8_t>(topic.size())};
    b.insert(b.end(), topic.begin(), topic.end());
    EXPECT_EQ(decode_bytes(b, protocol_version::v311).error, reason_code::malformed_packet);
  }
}

TEST(codec_malformed, payload_format_indicator_checks_payload) {
  publish_packet p;
  p.topic = "t";
  p.props.payload_format_indicator = 1;
  p.payload = "\xff\xfe";
  auto wire = encode(p, protocol_version::v5);
  EXPECT_EQ(decode_bytes(wire).error, reason_code::payload_format_invalid);
}

TEST(codec_malformed, oversize_detected_from_header) {
  // Only the fixed header of a 1 MiB packet has arrived; the limit is 128 KiB.
  bytes b{0x30, 0x80, 0x80, 0x40};
  auto r = decode_bytes(b, protocol_version::v5, 128 * 1024);
  EXPECT_EQ(r.error, reason_code::packet_too_large);
}

TEST(codec_malformed, connect_errors) {
  connect_packet c;
  c.client_id = "x";
  auto wire = encode(c, protocol_version::v5);
  auto bad_name = wire;
  bad_name[4] = 'X';  // "MXTT"
  EXPECT_EQ(decode_bytes(bad_name).error, reason_code::protocol_error);
  auto bad_level = wire;
  bad_level[8] = 6;
  EXPECT_EQ(decode_bytes(bad_level).error, reason_code::unsupported_protocol_version);
  auto reserved = wire;
  reserved[9] |= 0x01;
  EXPECT_EQ(decode_bytes(reserved).error, reason_code::malformed_packet);
  auto will_qos_without_will = wire;
  will_qos_without_will[9] |= 0x08;
  EXPECT_EQ(decode_bytes(will_qos_without_will).error, reason_code::malformed_packet);
}

TEST(codec_malformed, property_rules) {
  // PUBLISH with a property only CONNECT may carry (session expiry 0x11).
  bytes b{0x30, 0x09, 0, 1, 't', 0x05, 0x11, 0, 0, 0, 1};
  EXPECT_EQ(decode_bytes(b).error, reason_code::protocol_error);
  // Duplicate message expiry.
  bytes dup{0x30, 0x0E, 0, 1, 't', 0x0A, 0x02, 0, 0, 0, 1, 0x02, 0, 0, 0, 1};
  EXPECT_EQ(decode_bytes(dup).error, reason_code::protocol_error);
  // Unknown property id 0x7F.
  bytes unknown{0x30, 0x06, 0, 1, 't', 0x02, 0x7F, 0x00};
  EXPECT_EQ(decode_bytes(unknown).error, reason_code::malformed_packet);
  // Property length running past the packet.
  bytes overrun{0x30, 0x05, 0, 1, 't', 0x09, 0x01};
  EXPECT_EQ(decode_bytes(overrun).error, reason_code::malformed_packet);
}

// Subscription identifiers travel only from server to client: encoded, never accepted from a client.
TEST(codec, publish_subscription_identifiers_are_encoded) {
  publish_packet p;
  p.topic = "t";
  p.props.subscription_identifiers = {1, 300000};
  EXPECT_EQ(encode(p, protocol_version::v5),
            (bytes{0x30, 0x0A, 0, 1, 't', 0x06, 0x0B, 0x01, 0x0B, 0xE0, 0xA7, 0x12}));
}

// [MQTT-3.3.4-6]: a PUBLISH from a client must not carry a Subscription Identifier.
TEST(codec_malformed, client_publish_with_subscription_identifier) {
  EXPECT_EQ(decode_bytes({0x30, 0x06, 0, 1, 't', 0x02, 0x0B, 0x01}).error, reason_code::protocol_error);
  EXPECT_EQ(decode_bytes({0x32, 0x08, 0, 1, 't', 0, 1, 0x02, 0x0B, 0x05}).error, reason_code::protocol_error);
}

// [MQTT-3.3.2-14]: the Response Topic is a topic name: no wildcards; it is not empty either.
TEST(codec_malformed, response_topic_with_wildcards) {
  EXPECT_EQ(decode_bytes({0x30, 0x0A, 0, 1, 't', 0x06, 0x08, 0, 3, 'r', '/', '#'}).error,
            reason_code::protocol_error);
  EXPECT_EQ(decode_bytes({0x30, 0x0A, 0, 1, 't', 0x06, 0x08, 0, 3, 'r', '/', '+'}).error,
            reason_code::protocol_error);
  EXPECT_EQ(decode_bytes({0x30, 0x07, 0, 1, 't', 0x03, 0x08, 0, 0}).error, reason_code::protocol_error);
  auto ok = decode_bytes({0x30, 0x0A, 0, 1, 't', 0x06, 0x08, 0, 3, 'r', '/', 'x'});
  ASSERT_EQ(ok.state, decode_result::status::ok);
  EXPECT_EQ(std::get<publish_packet>(ok.pkt).props.response_topic, "r/x");
  // The same rule for a will's Response Topic.
  for (std::string topic : {"r/+", "#", "a/#"}) {
    connect_packet c;
    c.client_id = "x";
    c.will = will_message{};
    c.will->topic = "w";
    c.will->props.response_topic = topic;
    EXPECT_EQ(decode_bytes(encode(c, protocol_version::v5)).error, reason_code::protocol_error) << topic;
  }
}

// [MQTT-1.5.5-1]: a Variable Byte Integer uses the fewest bytes; anything longer is malformed.
TEST(codec_malformed, non_minimal_variable_byte_integers) {
  // Remaining length 0 in two, three and four bytes (PINGREQ), 3 in two bytes (PUBLISH).
  EXPECT_EQ(decode_bytes({0xC0, 0x80, 0x00}).error, reason_code::malformed_packet);
  EXPECT_EQ(decode_bytes({0xC0, 0x80, 0x80, 0x00}).error, reason_code::malformed_packet);
  EXPECT_EQ(decode_bytes({0xC0, 0x80, 0x80, 0x80, 0x00}).error, reason_code::malformed_packet);
  EXPECT_EQ(decode_bytes({0x30, 0x83, 0x00, 0, 1, 't'}, protocol_version::v311).error, reason_code::malformed_packet);
  // A prefix is still only incomplete.
  EXPECT_EQ(decode_bytes({0xC0, 0x80}).state, decode_result::status::need_more);
  // Property length 0 in two bytes; property id 1 in two bytes; subscription identifier 1 in two bytes.
  EXPECT_EQ(decode_bytes({0x30, 0x05, 0, 1, 't', 0x80, 0x00}).error, reason_code::malformed_packet);
  EXPECT_EQ(decode_bytes({0x30, 0x07, 0, 1, 't', 0x03, 0x81, 0x00, 0x00}).error, reason_code::malformed_packet);
  EXPECT_EQ(decode_bytes({0x82, 0x0A, 0, 1, 0x03, 0x0B, 0x81, 0x00, 0, 1, 'a', 0x00}).error,
            reason_code::malformed_packet);
  // The largest one-, two-, three- and four-byte values are minimal.
  EXPECT_EQ(decode_bytes({0x82, 0x09, 0, 1, 0x02, 0x0B, 0x7F, 0, 1, 'a', 0x00}).state, decode_result::status::ok);
  EXPECT_EQ(decode_bytes({0x82, 0x0A, 0, 1, 0x03, 0x0B, 0xFF, 0x7F, 0, 1, 'a', 0x00}).state, decode_result::status::ok);
  EXPECT_EQ(decode_bytes({0x82, 0x0B, 0, 1, 0x04, 0x0B, 0xFF, 0xFF, 0x7F, 0, 1, 'a', 0x00}).state,
            decode_result::status::ok);
  EXPECT_EQ(decode_bytes({0x82, 0x0C, 0, 1, 0x05, 0x0B, 0xFF, 0xFF, 0xFF, 0x7F, 0, 1, 'a', 0x00}).state,
            decode_result::status::ok);
}

TEST(codec_malformed, subscribe_rules) {
  // No topic filters.
  EXPECT_EQ(decode_bytes({0x82, 0x03, 0, 1, 0}).error, reason_code::protocol_error);
  // 3.1.1 reserved option bits.
  EXPECT_EQ(decode_bytes({0x82, 0x06, 0, 1, 0, 1, 'a', 0x04}, protocol_version::v311).error,
            reason_code::malformed_packet);
  // v5 retain handling 3.
  EXPECT_EQ(decode_bytes({0x82, 0x07, 0, 1, 0, 0, 1, 'a', 0x30}).error, reason_code::protocol_error);
  // Packet id 0.
  EXPECT_EQ(decode_bytes({0x82, 0x07, 0, 0, 0, 0, 1, 'a', 0x00}).error, reason_code::protocol_error);
}

}  // namespace
}  // namespace fleetcore::mqtt

namespace fleetcore::mqtt {
namespace {
// Found by fuzz_mqtt_decoder: 3.1.1 return codes outside the specification's set cannot be re-encoded.
TEST(codec_malformed, v311_return_codes_outside_spec) {
  EXPECT_EQ(decode(std::vector<std::uint8_t>{0x90, 0x03, 0x00, 0x01, 0xDE}, protocol_version::v311, 1024).error,
            reason_code::malformed_packet);
  EXPECT_EQ(decode(std::vector<std::uint8_t>{0x20, 0x02, 0x00, 0x09}, protocol_version::v311, 1024).error,
            reason_code::malformed_packet);
}
}  // namespace
}  // namespace fleetcore::mqtt
