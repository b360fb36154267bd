#pragma once
#include "mqtt/packets.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace fleetcore::broker {

/// An application message as routed: immutable once built and shared by every recipient, so a
/// message fanned out to N subscribers holds one copy of its topic, properties and payload.
struct message {
  std::string topic;
  std::string payload;
  std::uint8_t qos = 0;
  bool retain = false;
  /// MQTT 5 properties forwarded unchanged, encoded once (no length prefix): payload format,
  /// content type, response topic, correlation data, user properties.
  std::string forward_props;
  /// Wall-clock expiry (ms since the epoch), 0 = never.
  std::int64_t expiry_at_ms = 0;
  /// Incarnation of the publishing session, for no-local; 0 for server-originated messages.
  std::uint64_t origin = 0;
  /// How many rule republishes led to this message (the rules engine's loop protection).
  std::uint8_t rule_hops = 0;
};

using message_ptr = std::shared_ptr<const message>;

/// Builds a message from a decoded PUBLISH (or will), encoding its forwardable properties.
message_ptr make_message(std::string topic, std::string payload, std::uint8_t qos, bool retain,
                         const mqtt::properties& props, std::int64_t now_wall_ms,
                         std::uint64_t origin, std::uint8_t rule_hops = 0);

/// Options of one subscription as the router needs them.
struct subscription_options {
  std::uint8_t qos = 0;
  bool no_local = false;
  bool retain_as_published = false;
  mqtt::retain_handling handling = mqtt::retain_handling::send;
  std::uint32_t subscription_id = 0;  // 0 = none

  std::uint8_t to_byte() const noexcept {
    return static_cast<std::uint8_t>(qos | (no_local ? 0x04 : 0) | (retain_as_published ? 0x08 : 0) |
                                     static_cast<std::uint8_t>(handling) << 4);
  }
  static subscription_options from_byte(std::uint8_t b, std::uint32_t id) noexcept {
    return {static_cast<std::uint8_t>(b & 3), (b & 4) != 0, (b & 8) != 0,
            static_cast<mqtt::retain_handling>((b >> 4) & 3), id};
  }
};

}  // namespace fleetcore::broker
