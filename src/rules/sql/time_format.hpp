#pragma once
// parse_time and time_to_epoch: Joda-Time / JDK DateTimeFormatter patterns, the common subset.
//
// Pattern letters: G (era AD/BC), y u Y (year; yy = two digits), M (M, MM number; MMM Jan; MMMM January),
// d (day of month), D (day of year, format only), E (EEE Mon, EEEE Monday), e (ISO day of week),
// a (AM/PM), H (0-23), k (1-24), h (1-12), K (0-11), m, s, S (fraction of second, SSS = millis),
// Z (+0100; ZZ +01:00; ZZZ zone id), X x (offset, X also 'Z' for zero), z (zone name; UTC or the
// offset), V (VV zone id), text in single quotes ('' is a quote); other non-letters are literal.
// Time zones: UTC, GMT, Z, UT, Etc/UTC, Etc/GMT, fixed offsets (+01:00, -0500, +01, UTC+01:00, GMT-5),
// and region ids (America/Los_Angeles) from the system tz database (time_zone.hpp). An unknown zone
// makes the call Undefined with an error. z prints the zone's abbreviation (CST, PDT, UTC), VV/ZZZ its id.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace fleetcore::rules::sql::detail {

/// The offset from UTC in seconds of a supported zone id, or nullopt.
std::optional<int> zone_offset(std::string_view zone) noexcept;

/// Formats `epoch_ms` in `zone` by `pattern`. On failure returns nullopt and sets `error`.
std::optional<std::string> format_time(std::string_view pattern, std::int64_t epoch_ms, std::string_view zone,
                                       std::string& error);

/// Parses `text` by `pattern` to milliseconds since the epoch (UTC unless the text names a zone).
/// On failure returns nullopt and sets `error`.
std::optional<std::int64_t> parse_time_text(std::string_view text, std::string_view pattern, std::string& error);

}  // namespace fleetcore::rules::sql::detail
