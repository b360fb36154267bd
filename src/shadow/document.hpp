#pragma once
// The Device Shadow document semantics of AWS IoT, without I/O: validating a request, merging an
// update into the stored shadow (null removes, arrays replace, metadata timestamps per leaf), the
// delta, and the response documents (accepted, delta, documents, get, delete, errors). Timestamps are
// passed in (seconds since the epoch), so every result is a pure function of its inputs.
#include <boost/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace fleetcore::shadow {

/// AWS's limits; `max_document_bytes` applies to the request and to the resulting state.
struct limits {
  std::size_t max_document_bytes = 8 * 1024;
  int max_depth = 6;  // levels of nesting inside desired/reported
  /// Requests of one MQTT connection being processed at once; more are refused with 429 (AWS: 10).
  int max_inflight_per_client = 10;
};

/// A refusal as AWS words it: HTTP-like code and message.
struct error {
  int code = 400;
  std::string message;
};

/// A stored shadow. A deleted shadow is kept as a tombstone so that its version continues.
struct shadow_state {
  boost::json::object state;     // {"desired": {...}, "reported": {...}}, sections absent when empty
  boost::json::object metadata;  // same shape, leaves {"timestamp": t}
  std::int64_t version = 0;
  bool exists = false;
  std::int64_t deleted_at = 0;   // seconds; set on a tombstone

  std::string serialize() const;
  static std::optional<shadow_state> parse(std::string_view stored);
};

/// A parsed request (update, get or delete payload).
struct request {
  boost::json::object body;
  std::optional<std::string> client_token;
  std::optional<std::int64_t> version;
};

/// Parses a /get or /delete payload (empty, or an object with an optional clientToken).
std::optional<error> parse_simple(std::string_view payload, request& out);
/// Parses and validates an /update payload: JSON object, `state` with only desired/reported
/// (objects or null), clientToken and version types, nesting depth, no null in arrays, size.
std::optional<error> parse_update(std::string_view payload, const limits& lim, request& out);

/// What an accepted update produces.
struct update_result {
  boost::json::object accepted;                 // /update/accepted (and the HTTP response)
  std::optional<boost::json::object> delta;    // /update/delta, when the update had desired and a delta remains
  boost::json::object documents;                // /update/documents
};

/// Applies a validated update to `s` at time `now`. Fails with 409 on a version mismatch and 413 if
/// the resulting state exceeds the limit (leaving `s` unchanged).
std::optional<error> apply_update(shadow_state& s, const request& req, std::int64_t now, const limits& lim,
                                  update_result& out);

/// The complete document for /get/accepted and GetThingShadow (state with delta, metadata,
/// version, timestamp, clientToken); 404 if the shadow does not exist.
std::optional<error> get_document(const shadow_state& s, const request& req, std::int64_t now,
                                  boost::json::object& out, std::string_view name_for_errors);

/// Deletes (to a tombstone); the /delete/accepted document. 404 if it does not exist.
std::optional<error> delete_shadow(shadow_state& s, const request& req, std::int64_t now, boost::json::object& out,
                                   std::string_view name_for_errors);

/// The error response document: code, message, timestamp, clientToken.
boost::json::object error_document(const error& e, std::int64_t now, const std::optional<std::string>& client_token);

/// Desired values that differ from reported (nested objects compared key by key, arrays as values).
boost::json::object compute_delta(const boost::json::object& desired, const boost::json::object& reported);

/// Seconds after which a tombstone no longer carries its version (AWS: 48 hours).
inline constexpr std::int64_t tombstone_keep_s = 48 * 3600;

}  // namespace fleetcore::shadow
