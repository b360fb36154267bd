#pragma once
// What the jobs service's files share (jobs_service.cpp: state, notifications, timers, rollouts;
// device.cpp: the device side over MQTT and HTTPS; control_plane.cpp: the iot operations;
// template_ops.cpp: job templates): the per-request batch, the device answer, and the small helpers
// that shape AWS's answers. Not for other modules.
#include "common/aws_api.hpp"
#include "common/json_members.hpp"
#include "jobs/jobs_service.hpp"

#include <boost/json/object.hpp>

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace fleetcore::jobs {

/// One request's effects: its storage operations, the things whose pending lists it may change (with
/// the list before), and what it answers the device that asked.
struct jobs_service::batch {
  std::vector<storage::operation> ops;
  std::map<std::string, std::vector<std::string>> before;  // thing -> pending job ids before the request
  std::vector<std::pair<std::string, std::string>> broadcasts;  // notify, notify-next
  std::vector<std::pair<std::string, std::string>> replies;     // to the requesting session
  std::string client_id;
  std::uint64_t session = 0;
};

struct jobs_service::device_request {
  std::string topic, thing, rest, payload, client_id;
  std::uint64_t session = 0;
};

/// A device request's outcome, whichever way it came (MQTT or the iot-jobs-data HTTPS API).
struct jobs_service::device_answer {
  std::string code;  // empty: accepted; else the MQTT rejection code (InvalidRequest, ResourceNotFound...)
  std::string message;
  std::optional<execution> state;  // the executionState of a VersionMismatch / InvalidStateTransition
  boost::json::object body;        // accepted: the response members
};

namespace detail {

namespace json = boost::json;
using common::aws_response;

constexpr std::size_t k_max_document = 32768;
constexpr std::size_t k_max_description = 2028;
constexpr std::int64_t k_max_timeout_min = 10080;  // 7 days, AWS's limit for both timers
constexpr std::int64_t k_minute_ms = 60'000;
/// statusDetails pairs a device may store per execution: AWS sets no number, each value is at most 1 KiB,
/// and every update rewrites the execution's stored document: fleetcore's bound.
constexpr std::size_t k_max_details = 100;

inline aws_response invalid(std::string_view msg) { return aws_response::error(400, "InvalidRequestException", msg); }
inline aws_response not_found(std::string_view msg) { return aws_response::error(404, "ResourceNotFoundException", msg); }
inline aws_response bad_transition(std::string_view msg) {
  return aws_response::error(409, "InvalidStateTransitionException", msg);
}

inline std::size_t index(exec_status s) { return static_cast<std::size_t>(s); }
/// Device-side times are epoch seconds (the Python v2 SDK reads them with fromtimestamp); the control
/// plane's are seconds with a fraction.
inline std::int64_t device_time(std::int64_t ms) { return ms / 1000; }
inline double api_time(std::int64_t ms) { return static_cast<double>(ms) / 1000.0; }

inline std::string text(const json::object& in, std::string_view key) {
  return std::string(common::text_member(in, key).value_or(""));
}

inline json::object details_json(const status_details& d) {
  json::object o;
  for (const auto& [k, v] : d) o[k] = v;
  return o;
}

/// The pending order: IN_PROGRESS before QUEUED, each oldest first (then by job id).
inline bool pending_before(const execution* a, const execution* b) {
  if (a->status != b->status) return a->status == exec_status::in_progress;
  if (a->queued_ms != b->queued_ms) return a->queued_ms < b->queued_ms;
  return a->job_id < b->job_id;
}

/// The summary of a pending execution in get replies and notify messages.
inline json::object device_summary(const execution& e) {
  json::object o{{"jobId", e.job_id}, {"queuedAt", device_time(e.queued_ms)}};
  if (e.started_ms) o["startedAt"] = device_time(e.started_ms);
  o["lastUpdatedAt"] = device_time(e.updated_ms);
  o["versionNumber"] = e.version;
  o["executionNumber"] = e.execution_number;
  return o;
}

inline json::object execution_state(const execution& e) {
  return {{"status", to_string(e.status)}, {"statusDetails", details_json(e.details)}, {"versionNumber", e.version}};
}

/// A whole number given as a JSON number or a digit string (the embedded-C SDK sends expectedVersion
/// as "2"); nullopt when absent, an error message in `error` when malformed.
std::optional<std::int64_t> lenient_int(const json::object& in, std::string_view key, std::string& error);
/// statusDetails: an object of string values, keys `[a-zA-Z0-9:_-]{1,128}`, values 1-1024 characters.
std::optional<std::string> read_details(const json::value& v, status_details& out, std::size_t max_pairs);
/// The timeoutConfig member, validated: minutes (unchanged when absent).
std::optional<aws_response> read_timeout(const json::object& in, std::int64_t& minutes);
/// abortConfig, jobExecutionsRetryConfig and jobExecutionsRolloutConfig, validated into `j`.
std::optional<aws_response> read_configs(const json::object& in, job& j);
/// Members of CreateJob / UpdateJob / CreateJobTemplate this version does not implement: refused, not ignored.
std::optional<aws_response> refuse_unimplemented(const json::object& in);

}  // namespace detail
}  // namespace fleetcore::jobs
