#pragma once
// AWS IoT's name rules and the device topic grammar `$aws/things/{thing}/{service}/...`, shared by the
// registry, the shadow service, the broker's reserved-topic rules and the services that answer
// devices (jobs, streams).
#include <optional>
#include <string_view>

namespace fleetcore::common {

namespace detail {
inline bool name_chars(std::string_view s, std::size_t max) noexcept {
  if (s.empty() || s.size() > max) return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == ':' || c == '_' ||
              c == '-';
    if (!ok) return false;
  }
  return true;
}
}  // namespace detail

/// Thing, thing type and thing group names: [a-zA-Z0-9:_-]{1,128}.
inline bool valid_thing_name(std::string_view s) noexcept { return detail::name_chars(s, 128); }
/// Named shadows: [a-zA-Z0-9:_-]{1,64}.
inline bool valid_shadow_name(std::string_view s) noexcept { return detail::name_chars(s, 64); }

inline constexpr std::string_view things_topic_prefix = "$aws/things/";

/// A topic `$aws/things/{thing}/{service}[/{rest}]`; views into the topic.
struct thing_topic {
  std::string_view thing;
  std::string_view service;  // "shadow", "jobs", "streams", ...
  std::string_view rest;     // after "{service}/", empty if nothing follows
};

/// Splits a device topic; nullopt if it is not under `$aws/things/` or names no valid thing.
inline std::optional<thing_topic> parse_thing_topic(std::string_view topic) noexcept {
  if (!topic.starts_with(things_topic_prefix)) return std::nullopt;
  topic.remove_prefix(things_topic_prefix.size());
  auto slash = topic.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  thing_topic t;
  t.thing = topic.substr(0, slash);
  if (!valid_thing_name(t.thing)) return std::nullopt;
  topic.remove_prefix(slash + 1);
  slash = topic.find('/');
  t.service = topic.substr(0, slash);
  if (slash != std::string_view::npos) t.rest = topic.substr(slash + 1);
  if (t.service.empty()) return std::nullopt;
  return t;
}

}  // namespace fleetcore::common
