#pragma once
// Time zones for parse_time / time_to_epoch: UTC and fixed offsets, and region ids (America/Belize)
// read from the system's compiled tz database (/usr/share/zoneinfo, TZif files).
//
// A region zone is read from disk the first time a message names it, then kept for the life of the
// process (read-only afterwards; the cache takes a lock only to look a name up). The transition table
// is used as is: for instants after the file's last transition (fat TZif files run to 2037) the last
// offset applies; the POSIX rule in the file's footer is not evaluated.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace fleetcore::rules::sql::detail {

/// The offset of a zone at an instant.
struct zone_offset_at {
  int seconds = 0;    // local time = UTC + seconds
  std::string abbr;   // "UTC", "CST", "PDT"; for a fixed offset, "+01:00" style
};

/// Whether `zone` names a supported zone (fixed, or a region found in the tz database).
bool zone_known(std::string_view zone);

/// The offset of `zone` at `utc_seconds` since the epoch, or nullopt for an unknown zone.
std::optional<zone_offset_at> offset_at_utc(std::string_view zone, std::int64_t utc_seconds);

/// The offset of `zone` for a local wall-clock time (`local_seconds` = local time read as if UTC).
std::optional<zone_offset_at> offset_at_local(std::string_view zone, std::int64_t local_seconds);

}  // namespace fleetcore::rules::sql::detail
