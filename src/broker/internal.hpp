#pragma once
// Helpers shared by the broker's translation units (not part of its interface).
#include "broker/session.hpp"
#include "mqtt/topic.hpp"

#include <cstdint>
#include <string_view>
#include <utility>

namespace fleetcore::broker::detail {

/// Splits a subscribed filter into (group, filter); group is empty for a non-shared subscription.
inline std::pair<std::string_view, std::string_view> split_shared(std::string_view full) {
  if (auto s = mqtt::parse_shared(full); s && !s->group.empty()) return {s->group, s->filter};
  return {{}, full};
}

/// The bytes a queued delivery is accounted for (limits.max_queued_bytes, pressure).
inline std::int64_t delivery_bytes(const delivery& d) {
  return static_cast<std::int64_t>(d.msg->topic.size() + d.msg->payload.size() + d.msg->forward_props.size() + 64);
}

/// Session expiry interval that never expires (MQTT 5: 0xFFFFFFFF).
inline constexpr std::uint32_t never_expires = 0xFFFFFFFF;

}  // namespace fleetcore::broker::detail
