#pragma once
// Topic names and filters (MQTT 5.0 section 4.7): validation, shared-subscription parsing, matching.
#include <cstddef>
#include <optional>
#include <string_view>

namespace fleetcore::mqtt {

/// A topic name a PUBLISH may carry: non-empty, no wildcards.
bool valid_topic_name(std::string_view topic) noexcept;

/// Why a topic name cannot be published, checked the same way for every origin of a message.
enum class topic_name_error {
  none,
  invalid,   // empty, wildcards, not UTF-8, U+0000, or control characters (U+0001-U+001F, U+007F-U+009F)
  too_long,  // more bytes than the limit
  too_deep,  // more levels than the limit
};
/// The topic rules of a PUBLISH, whatever carries it (MQTT, will, HTTP). Control characters are
/// allowed by the specification but "MAY" be treated as malformed [MQTT-1.5.4]; mosquitto's clients
/// do, and drop the connection, so a topic with them would cut off every matching subscriber.
topic_name_error check_topic_name(std::string_view topic, std::size_t max_bytes, std::size_t max_levels) noexcept;

/// A topic filter: non-empty; `#` only alone as the last level; `+` only alone in a level.
bool valid_topic_filter(std::string_view filter) noexcept;

/// Number of levels (`a/b/c` has 3).
std::size_t topic_levels(std::string_view topic) noexcept;

/// `$share/{group}/{filter}` split into its parts.
struct shared_filter {
  std::string_view group;
  std::string_view filter;
};

/// Returns the parts if `filter` starts with `$share/`, or nullopt for an ordinary filter. A
/// `$share/` filter with an empty or invalid group, or no filter part, yields a group of size 0.
std::optional<shared_filter> parse_shared(std::string_view filter) noexcept;

/// True if `topic` matches `filter`; topics starting with `$` are not matched by a filter whose
/// first level is a wildcard [MQTT-4.7.2-1].
bool topic_matches(std::string_view filter, std::string_view topic) noexcept;

}  // namespace fleetcore::mqtt
