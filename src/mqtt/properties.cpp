#include "mqtt/properties.hpp"

#include "mqtt/topic.hpp"
#include "mqtt/wire.hpp"

#include <array>
#include <type_traits>
#include <variant>

namespace fleetcore::mqtt {
namespace {

using ctx = property_context;

constexpr std::uint32_t bit(ctx c) { return 1u << static_cast<unsigned>(c); }
constexpr std::uint32_t message_ctx = bit(ctx::publish) | bit(ctx::will);
constexpr std::uint32_t ack_ctx = bit(ctx::connack) | bit(ctx::puback) | bit(ctx::pubrec) |
                                  bit(ctx::pubrel) | bit(ctx::pubcomp) | bit(ctx::suback) |
                                  bit(ctx::unsuback) | bit(ctx::disconnect) | bit(ctx::auth);

enum class kind { byte, flag, u16, u32, varint, utf8, binary };

using field = std::variant<std::optional<std::uint8_t> properties::*,
                           std::optional<std::uint16_t> properties::*,
                           std::optional<std::uint32_t> properties::*,
                           std::optional<std::string> properties::*>;

struct descriptor {
  std::uint8_t id;
  kind type;
  std::uint32_t allowed;
  field member;
};

// Single-valued properties; subscription identifiers (0x0B) and user properties (0x26) are handled
// separately because they may repeat.
const std::array<descriptor, 25> table{{
    {0x01, kind::flag, message_ctx, &properties::payload_format_indicator},
    {0x02, kind::u32, message_ctx, &properties::message_expiry_interval},
    {0x03, kind::utf8, message_ctx, &properties::content_type},
    {0x08, kind::utf8, message_ctx, &properties::response_topic},
    {0x09, kind::binary, message_ctx, &properties::correlation_data},
    {0x11, kind::u32, bit(ctx::connect) | bit(ctx::connack) | bit(ctx::disconnect),
     &properties::session_expiry_interval},
    {0x12, kind::utf8, bit(ctx::connack), &properties::assigned_client_identifier},
    {0x13, kind::u16, bit(ctx::connack), &properties::server_keep_alive},
    {0x15, kind::utf8, bit(ctx::connect) | bit(ctx::connack) | bit(ctx::auth),
     &properties::authentication_method},
    {0x16, kind::binary, bit(ctx::connect) | bit(ctx::connack) | bit(ctx::auth),
     &properties::authentication_data},
    {0x17, kind::flag, bit(ctx::connect), &properties::request_problem_information},
    {0x18, kind::u32, bit(ctx::will), &properties::will_delay_interval},
    {0x19, kind::flag, bit(ctx::connect), &properties::request_response_information},
    {0x1A, kind::utf8, bit(ctx::connack), &properties::response_information},
    {0x1C, kind::utf8, bit(ctx::connack) | bit(ctx::disconnect), &properties::server_reference},
    {0x1F, kind::utf8, ack_ctx, &properties::reason_string},
    {0x21, kind::u16, bit(ctx::connect) | bit(ctx::connack), &properties::receive_maximum},
    {0x22, kind::u16, bit(ctx::connect) | bit(ctx::connack), &properties::topic_alias_maximum},
    {0x23, kind::u16, bit(ctx::publish), &properties::topic_alias},
    {0x24, kind::flag, bit(ctx::connack), &properties::maximum_qos},
    {0x25, kind::flag, bit(ctx::connack), &properties::retain_available},
    {0x27, kind::u32, bit(ctx::connect) | bit(ctx::connack), &properties::maximum_packet_size},
    {0x28, kind::flag, bit(ctx::connack), &properties::wildcard_subscription_available},
    {0x29, kind::flag, bit(ctx::connack), &properties::subscription_identifier_available},
    {0x2A, kind::flag, bit(ctx::connack), &properties::shared_subscription_available},
}};

constexpr std::uint8_t subscription_identifier_id = 0x0B;
constexpr std::uint8_t user_property_id = 0x26;
constexpr std::uint32_t subscription_identifier_ctx = bit(ctx::publish) | bit(ctx::subscribe);

const descriptor* find(std::uint8_t id) {
  for (const auto& d : table)
    if (d.id == id) return &d;
  return nullptr;
}

void read_value(wire::reader& in, properties& p, const descriptor& d) {
  std::visit(
      [&](auto member) {
        auto& slot = p.*member;
        if (slot.has_value()) {
          in.fail(reason_code::protocol_error);  // single-valued property repeated
          return;
        }
        using value_t = typename std::remove_reference_t<decltype(slot)>::value_type;
        if constexpr (std::is_same_v<value_t, std::string>) {
          slot = std::string(d.type == kind::utf8 ? in.utf8() : in.binary());
        } else if constexpr (std::is_same_v<value_t, std::uint8_t>) {
          std::uint8_t v = in.u8();
          if (d.type == kind::flag && v > 1) in.fail(reason_code::protocol_error);
          slot = v;
        } else if constexpr (std::is_same_v<value_t, std::uint16_t>) {
          slot = in.u16();
        } else {
          slot = in.u32();
        }
      },
      d.member);
}

}  // namespace

properties decode_properties(wire::reader& in, property_context c) {
  properties p;
  std::uint32_t len = in.varint();
  wire::reader r = in.sub(len);
  while (r.ok() && r.remaining() > 0) {
    std::uint32_t id = r.varint();
    if (!r.ok()) break;
    if (id == user_property_id) {
      auto k = r.utf8();
      auto v = r.utf8();
      p.user_properties.push_back({std::string(k), std::string(v)});
      continue;
    }
    if (id == subscription_identifier_id) {
      // Decoding reads what clients send: only their SUBSCRIBE may carry one [MQTT-3.3.4-6].
      if (c != ctx::subscribe) {
        r.fail(reason_code::protocol_error);
        break;
      }
      std::uint32_t v = r.varint();
      if (v == 0 || (c == ctx::subscribe && !p.subscription_identifiers.empty()))
        r.fail(reason_code::protocol_error);
      p.subscription_identifiers.push_back(v);
      continue;
    }
    const descriptor* d = id <= 0xFF ? find(static_cast<std::uint8_t>(id)) : nullptr;
    if (!d) {
      r.fail(reason_code::malformed_packet);
      break;
    }
    if (!(d->allowed & bit(c))) {
      r.fail(reason_code::protocol_error);
      break;
    }
    read_value(r, p, *d);
  }
  if (!r.ok()) in.fail(r.error);
  if (in.ok()) {
    // Values the specification forbids.
    if ((p.receive_maximum && *p.receive_maximum == 0) ||
        (p.maximum_packet_size && *p.maximum_packet_size == 0) ||
        (p.topic_alias && *p.topic_alias == 0))
      in.fail(reason_code::protocol_error);
    // The Response Topic is a topic name: not empty, no wildcards [MQTT-3.3.2-14].
    if (p.response_topic && !valid_topic_name(*p.response_topic)) in.fail(reason_code::protocol_error);
  }
  return p;
}

namespace {

template <typename Fn>
void for_each_present(const properties& p, property_context c, Fn&& fn) {
  for (const auto& d : table) {
    if (!(d.allowed & bit(c))) continue;
    std::visit(
        [&](auto member) {
          const auto& slot = p.*member;
          if (slot) fn(d, *slot);
        },
        d.member);
  }
}

template <typename T>
std::size_t value_size(kind, const T& v) {
  if constexpr (std::is_same_v<T, std::string>)
    return 2 + v.size();
  else
    return sizeof(T);
}

}  // namespace

std::size_t properties_size(const properties& p, property_context c) {
  std::size_t n = 0;
  for_each_present(p, c, [&](const descriptor& d, const auto& v) { n += 1 + value_size(d.type, v); });
  if (subscription_identifier_ctx & bit(c))
    for (auto id : p.subscription_identifiers) n += 1 + wire::varint_size(id);
  for (const auto& up : p.user_properties) n += 1 + 4 + up.key.size() + up.value.size();
  return n;
}

void encode_properties(wire::writer& out, const properties& p, property_context c) {
  out.varint(static_cast<std::uint32_t>(properties_size(p, c)));
  for_each_present(p, c, [&](const descriptor& d, const auto& v) {
    out.u8(d.id);
    using value_t = std::decay_t<decltype(v)>;
    if constexpr (std::is_same_v<value_t, std::string>)
      out.binary(v);
    else if constexpr (std::is_same_v<value_t, std::uint8_t>)
      out.u8(v);
    else if constexpr (std::is_same_v<value_t, std::uint16_t>)
      out.u16(v);
    else
      out.u32(v);
  });
  if (subscription_identifier_ctx & bit(c)) {
    for (auto id : p.subscription_identifiers) {
      out.u8(subscription_identifier_id);
      out.varint(id);
    }
  }
  for (const auto& up : p.user_properties) {
    out.u8(user_property_id);
    out.binary(up.key);
    out.binary(up.value);
  }
}

}  // namespace fleetcore::mqtt
