#pragma once
// Topic names and filters (MQTT 5.0 section 4.7): validation, shared-subscription parsing, matching.
#include <cstddef>
#include <optional>
#include <string_view>

namespace fleetcore::mqtt {

/// A topic name a PUBLISH may carry: non-empty, no wildcards.
bool valid_topic_name(std::string_view topic) noexcept;

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
