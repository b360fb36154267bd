#pragma once
// MQTT 5 properties (section 2.2.2). One struct carries every property; which ones a packet may hold
// is checked by the codec against the table in properties.cpp.
#include "mqtt/errors.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace fleetcore::mqtt {

namespace wire {
class reader;
class writer;
}  // namespace wire

struct user_property {
  std::string key;
  std::string value;
  bool operator==(const user_property&) const = default;
};

struct properties {
  std::optional<std::uint8_t> payload_format_indicator;      // 0x01
  std::optional<std::uint32_t> message_expiry_interval;      // 0x02
  std::optional<std::string> content_type;                   // 0x03
  std::optional<std::string> response_topic;                 // 0x08
  std::optional<std::string> correlation_data;               // 0x09
  std::vector<std::uint32_t> subscription_identifiers;       // 0x0B
  std::optional<std::uint32_t> session_expiry_interval;      // 0x11
  std::optional<std::string> assigned_client_identifier;     // 0x12
  std::optional<std::uint16_t> server_keep_alive;            // 0x13
  std::optional<std::string> authentication_method;          // 0x15
  std::optional<std::string> authentication_data;            // 0x16
  std::optional<std::uint8_t> request_problem_information;   // 0x17
  std::optional<std::uint32_t> will_delay_interval;          // 0x18
  std::optional<std::uint8_t> request_response_information;  // 0x19
  std::optional<std::string> response_information;           // 0x1A
  std::optional<std::string> server_reference;               // 0x1C
  std::optional<std::string> reason_string;                  // 0x1F
  std::optional<std::uint16_t> receive_maximum;              // 0x21
  std::optional<std::uint16_t> topic_alias_maximum;          // 0x22
  std::optional<std::uint16_t> topic_alias;                  // 0x23
  std::optional<std::uint8_t> maximum_qos;                   // 0x24
  std::optional<std::uint8_t> retain_available;              // 0x25
  std::vector<user_property> user_properties;                // 0x26
  std::optional<std::uint32_t> maximum_packet_size;          // 0x27
  std::optional<std::uint8_t> wildcard_subscription_available;    // 0x28
  std::optional<std::uint8_t> subscription_identifier_available;  // 0x29
  std::optional<std::uint8_t> shared_subscription_available;      // 0x2A

  bool operator==(const properties&) const = default;
};

/// Where a property block appears; the bit positions index the allowed-in masks.
enum class property_context : std::uint8_t {
  connect,
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
  disconnect,
  auth,
  will,
};

/// Decodes a property block (length prefix included) of a packet a client sent. Unknown identifiers,
/// properties not allowed in `ctx` (a Subscription Identifier outside SUBSCRIBE), duplicates of
/// single-valued properties, out-of-range values and a Response Topic that is not a topic name fail
/// the reader with malformed_packet or protocol_error.
properties decode_properties(wire::reader& in, property_context ctx);

/// Encodes `p` with its length prefix. Properties not allowed in `ctx` are skipped.
void encode_properties(wire::writer& out, const properties& p, property_context ctx);

/// Size in bytes of the encoded property block without its length prefix.
std::size_t properties_size(const properties& p, property_context ctx);

}  // namespace fleetcore::mqtt
