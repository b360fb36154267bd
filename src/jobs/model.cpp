#include "jobs/model.hpp"

#include "common/json_members.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <array>

namespace fleetcore::jobs {

namespace json = boost::json;

namespace {
constexpr std::array<std::string_view, 3> k_job_status = {"IN_PROGRESS", "CANCELED", "COMPLETED"};
constexpr std::array<std::string_view, exec_status_count> k_exec_status = {
    "QUEUED", "IN_PROGRESS", "SUCCEEDED", "FAILED", "TIMED_OUT", "REJECTED", "REMOVED", "CANCELED"};

template <class E, std::size_t N>
std::optional<E> parse_enum(const std::array<std::string_view, N>& names, std::string_view s) {
  auto it = std::find(names.begin(), names.end(), s);
  if (it == names.end()) return std::nullopt;
  return static_cast<E>(it - names.begin());
}

std::optional<json::object> parse_object(std::string_view body) {
  boost::system::error_code ec;
  auto v = json::parse(body, ec);
  if (ec || !v.is_object()) return std::nullopt;
  return std::move(v.get_object());
}

std::string text(const json::object& o, std::string_view key) {
  return std::string(common::text_member(o, key).value_or(""));
}
std::int64_t integer(const json::object& o, std::string_view key) { return common::int_member(o, key).value_or(0); }
}  // namespace

std::string_view to_string(job_status s) { return k_job_status[static_cast<std::size_t>(s)]; }
std::optional<job_status> parse_job_status(std::string_view s) { return parse_enum<job_status>(k_job_status, s); }
std::string_view to_string(exec_status s) { return k_exec_status[static_cast<std::size_t>(s)]; }
std::optional<exec_status> parse_exec_status(std::string_view s) { return parse_enum<exec_status>(k_exec_status, s); }

bool valid_job_id(std::string_view id) {
  return !id.empty() && id.size() <= 64 && std::all_of(id.begin(), id.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '_' || c == '-';
  });
}

bool valid_details_key(std::string_view k) {
  return !k.empty() && k.size() <= 128 && std::all_of(k.begin(), k.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '_' || c == '-' || c == ':';
  });
}

std::string job::serialize() const {
  json::array t;
  for (const auto& a : targets) t.emplace_back(a);
  return json::serialize(json::object{{"jobId", id},
                                      {"description", description},
                                      {"document", document},
                                      {"targets", std::move(t)},
                                      {"continuous", continuous},
                                      {"status", to_string(status)},
                                      {"forceCanceled", force_canceled},
                                      {"reasonCode", reason_code},
                                      {"comment", comment},
                                      {"createdAt", created_ms},
                                      {"lastUpdatedAt", updated_ms},
                                      {"completedAt", completed_ms},
                                      {"inProgressTimeoutInMinutes", in_progress_timeout_min}});
}

std::optional<job> job::parse(std::string_view body) {
  auto o = parse_object(body);
  if (!o) return std::nullopt;
  job j;
  j.id = text(*o, "jobId");
  j.description = text(*o, "description");
  j.document = text(*o, "document");
  boost::system::error_code ec;
  j.document_json = json::parse(j.document, ec);
  auto status = parse_job_status(text(*o, "status"));
  if (ec || !status || !valid_job_id(j.id)) return std::nullopt;
  j.status = *status;
  if (const auto* t = o->if_contains("targets"); t && t->is_array())
    for (const auto& a : t->get_array())
      if (a.is_string()) j.targets.emplace_back(a.get_string());
  j.continuous = common::bool_member(*o, "continuous").value_or(false);
  j.force_canceled = common::bool_member(*o, "forceCanceled").value_or(false);
  j.reason_code = text(*o, "reasonCode");
  j.comment = text(*o, "comment");
  j.created_ms = integer(*o, "createdAt");
  j.updated_ms = integer(*o, "lastUpdatedAt");
  j.completed_ms = integer(*o, "completedAt");
  j.in_progress_timeout_min = integer(*o, "inProgressTimeoutInMinutes");
  return j;
}

std::int64_t execution::deadline_ms() const {
  if (timeout_at_ms && step_timeout_at_ms) return std::min(timeout_at_ms, step_timeout_at_ms);
  return timeout_at_ms ? timeout_at_ms : step_timeout_at_ms;
}

std::string execution::serialize() const {
  json::object d;
  for (const auto& [k, v] : details) d[k] = v;
  return json::serialize(json::object{{"jobId", job_id},
                                      {"thingName", thing},
                                      {"status", to_string(status)},
                                      {"statusDetails", std::move(d)},
                                      {"forceCanceled", force_canceled},
                                      {"queuedAt", queued_ms},
                                      {"startedAt", started_ms},
                                      {"lastUpdatedAt", updated_ms},
                                      {"executionNumber", execution_number},
                                      {"versionNumber", version},
                                      {"timeoutAt", timeout_at_ms},
                                      {"stepTimeoutAt", step_timeout_at_ms}});
}

std::optional<execution> execution::parse(std::string_view body) {
  auto o = parse_object(body);
  if (!o) return std::nullopt;
  execution e;
  e.job_id = text(*o, "jobId");
  e.thing = text(*o, "thingName");
  auto status = parse_exec_status(text(*o, "status"));
  if (!status || !valid_job_id(e.job_id) || e.thing.empty()) return std::nullopt;
  e.status = *status;
  if (const auto* d = common::object_member(*o, "statusDetails"))
    for (const auto& [k, v] : *d)
      if (v.is_string()) e.details.emplace(std::string(k), std::string(v.get_string()));
  e.force_canceled = common::bool_member(*o, "forceCanceled").value_or(false);
  e.queued_ms = integer(*o, "queuedAt");
  e.started_ms = integer(*o, "startedAt");
  e.updated_ms = integer(*o, "lastUpdatedAt");
  e.execution_number = integer(*o, "executionNumber");
  e.version = integer(*o, "versionNumber");
  e.timeout_at_ms = integer(*o, "timeoutAt");
  e.step_timeout_at_ms = integer(*o, "stepTimeoutAt");
  return e;
}

}  // namespace fleetcore::jobs
