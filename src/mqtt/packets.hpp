#pragma once
// MQTT control packets as plain values, for both protocol versions. Fields that exist only in MQTT 5
// (reason codes, properties) are ignored when encoding for 3.1.1.
#include "mqtt/errors.hpp"
#include "mqtt/properties.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace fleetcore::mqtt {

enum class protocol_version : std::uint8_t { v311 = 4, v5 = 5 };

enum class packet_type : std::uint8_t {
  connect = 1,
  connack,
  publish,
  puback,
  pubrec,
  pubrel,
  pubcomp,
  subscribe,
  suback,
  unsubscribe,
  unsuback,
  pingreq,
  pingresp,
  disconnect,
  auth,
};

struct will_message {
  std::string topic;
  std::string payload;
  std::uint8_t qos = 0;
  bool retain = false;
  properties props;  // will properties (MQTT 5)
  bool operator==(const will_message&) const = default;
};

struct connect_packet {
  protocol_version version = protocol_version::v5;
  bool clean_start = true;
  std::uint16_t keep_alive = 60;
  std::string client_id;
  std::optional<will_message> will;
  std::optional<std::string> username;
  std::optional<std::string> password;
  properties props;
  bool operator==(const connect_packet&) const = default;
};

struct connack_packet {
  bool session_present = false;
  reason_code reason = reason_code::success;
  properties props;
  bool operator==(const connack_packet&) const = default;
};

struct publish_packet {
  bool dup = false;
  std::uint8_t qos = 0;
  bool retain = false;
  std::string topic;
  std::uint16_t packet_id = 0;
  properties props;
  std::string payload;
  bool operator==(const publish_packet&) const = default;
};

/// PUBACK, PUBREC, PUBREL and PUBCOMP share one shape.
struct ack_packet {
  packet_type type = packet_type::puback;
  std::uint16_t packet_id = 0;
  reason_code reason = reason_code::success;
  properties props;
  bool operator==(const ack_packet&) const = default;
};

enum class retain_handling : std::uint8_t { send = 0, send_if_new = 1, dont_send = 2 };

struct subscription_request {
  std::string filter;
  std::uint8_t qos = 0;
  bool no_local = false;
  bool retain_as_published = false;
  retain_handling handling = retain_handling::send;
  bool operator==(const subscription_request&) const = default;
};

struct subscribe_packet {
  std::uint16_t packet_id = 0;
  std::vector<subscription_request> subscriptions;
  properties props;
  bool operator==(const subscribe_packet&) const = default;
};

struct suback_packet {
  std::uint16_t packet_id = 0;
  std::vector<reason_code> reasons;
  properties props;
  bool operator==(const suback_packet&) const = default;
};

struct unsubscribe_packet {
  std::uint16_t packet_id = 0;
  std::vector<std::string> filters;
  properties props;
  bool operator==(const unsubscribe_packet&) const = default;
};

struct unsuback_packet {
  std::uint16_t packet_id = 0;
  std::vector<reason_code> reasons;  // MQTT 5 only
  properties props;
  bool operator==(const unsuback_packet&) const = default;
};

struct pingreq_packet {
  bool operator==(const pingreq_packet&) const = default;
};
struct pingresp_packet {
  bool operator==(const pingresp_packet&) const = default;
};

struct disconnect_packet {
  reason_code reason = reason_code::success;
  properties props;
  bool operator==(const disconnect_packet&) const = default;
};

struct auth_packet {
  reason_code reason = reason_code::success;
  properties props;
  bool operator==(const auth_packet&) const = default;
};

using packet = std::variant<connect_packet, connack_packet, publish_packet, ack_packet,
                            subscribe_packet, suback_packet, unsubscribe_packet, unsuback_packet,
                            pingreq_packet, pingresp_packet, disconnect_packet, auth_packet>;

}  // namespace fleetcore::mqtt
