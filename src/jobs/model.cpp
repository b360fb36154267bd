#include "jobs/model.hpp"

#include "common/json_members.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <array>
#include <cstdio>
#include <ctime>

namespace fleetcore::jobs {

namespace json = boost::json;

namespace {
constexpr std::array<std::string_view, 4> k_job_status = {"IN_PROGRESS", "CANCELED", "COMPLETED", "SCHEDULED"};
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
  json::object o{{"jobId", id},
                 {"description", description},
                 {"document", document},
                 {"documentSource", document_source},
                 {"targets", std::move(t)},
                 {"continuous", continuous},
                 {"status", to_string(status)},
                 {"forceCanceled", force_canceled},
                 {"reasonCode", reason_code},
                 {"comment", comment},
                 {"createdAt", created_ms},
                 {"lastUpdatedAt", updated_ms},
                 {"completedAt", completed_ms},
                 {"jobTemplateArn", template_arn},
                 {"documentParameters", parameters_json(document_parameters)},
                 {"attempts", {{"finished", finished}, {"failed", failed}, {"rejected", rejected}, {"timedOut", timed_out}}},
                 {"scheduling", scheduling_json(schedule)},
                 {"schedulingEnded", schedule.ended},
                 {"rolloutDone", rollout_done},
                 {"rolloutTotal", rollout_total},
                 {"windowStart", window_start_ms},
                 {"windowCreated", window_created},
                 {"rolloutStopped", rollout_stopped}};
  store(o);
  return json::serialize(o);
}

void job_configs::store(json::object& o) const {
  o["inProgressTimeoutInMinutes"] = in_progress_timeout_min;
  o["retry"] = retry_json(retry);
  o["abort"] = abort_json(abort);
  o["rollout"] = rollout_json(rollout);
  if (presigned_expires_s) o["presigned"] = {{"roleArn", presigned_role_arn}, {"expiresInSec", presigned_expires_s}};
}

bool job_configs::load(const json::object& o) {
  in_progress_timeout_min = common::int_member(o, "inProgressTimeoutInMinutes").value_or(0);
  if (const auto* r = o.if_contains("retry"); r && !r->is_null() && parse_retry(*r, retry)) return false;
  if (const auto* a = o.if_contains("abort"); a && !a->is_null() && parse_abort(*a, abort)) return false;
  if (const auto* r = o.if_contains("rollout"); r && !r->is_null() && parse_rollout(*r, rollout)) return false;
  if (const auto* p = common::object_member(o, "presigned")) {
    presigned_role_arn = std::string(common::text_member(*p, "roleArn").value_or(""));
    presigned_expires_s = common::int_member(*p, "expiresInSec").value_or(0);
  }
  return true;
}

void job_configs::describe(json::object& o) const {
  if (in_progress_timeout_min) o["timeoutConfig"] = {{"inProgressTimeoutInMinutes", in_progress_timeout_min}};
  if (!retry.empty()) o["jobExecutionsRetryConfig"] = retry_json(retry);
  if (!abort.empty()) o["abortConfig"] = abort_json(abort);
  if (rollout.limited()) o["jobExecutionsRolloutConfig"] = rollout_json(rollout);
  if (presigned_expires_s)
    o["presignedUrlConfig"] = {{"roleArn", presigned_role_arn}, {"expiresInSec", presigned_expires_s}};
}

json::value rollout_json(const rollout_config& r) {
  if (!r.limited()) return nullptr;
  json::object o;
  if (r.maximum_per_minute) o["maximumPerMinute"] = r.maximum_per_minute;
  if (r.base_per_minute) {
    json::object criteria;
    if (r.notified_step) criteria["numberOfNotifiedThings"] = r.notified_step;
    if (r.succeeded_step) criteria["numberOfSucceededThings"] = r.succeeded_step;
    o["exponentialRate"] = {{"baseRatePerMinute", r.base_per_minute},
                            {"incrementFactor", r.factor},
                            {"rateIncreaseCriteria", std::move(criteria)}};
  }
  return o;
}

std::optional<std::string> parse_rollout(const json::value& v, rollout_config& out) {
  const auto* o = v.if_object();
  if (!o) return "jobExecutionsRolloutConfig must be an object";
  rollout_config r;
  if (o->contains("maximumPerMinute")) {
    auto m = common::int_member(*o, "maximumPerMinute");
    if (!m || *m < 1 || *m > 1000) return "maximumPerMinute must be between 1 and 1000";
    r.maximum_per_minute = *m;
  }
  if (const auto* e = o->if_contains("exponentialRate")) {
    const auto* eo = e->if_object();
    auto base = eo ? common::int_member(*eo, "baseRatePerMinute") : std::nullopt;
    auto factor = eo ? common::number_member(*eo, "incrementFactor") : std::nullopt;
    const auto* criteria = eo ? common::object_member(*eo, "rateIncreaseCriteria") : nullptr;
    if (!base || *base < 1 || *base > 1000) return "baseRatePerMinute must be between 1 and 1000";
    if (!factor || *factor < 1.1 || *factor > 5) return "incrementFactor must be between 1.1 and 5";
    auto notified = criteria ? common::int_member(*criteria, "numberOfNotifiedThings") : std::nullopt;
    auto succeeded = criteria ? common::int_member(*criteria, "numberOfSucceededThings") : std::nullopt;
    if (!notified == !succeeded || (notified && *notified < 1) || (succeeded && *succeeded < 1))
      return "rateIncreaseCriteria must give numberOfNotifiedThings or numberOfSucceededThings (at least 1)";
    r.base_per_minute = *base;
    r.factor = *factor;
    r.notified_step = notified.value_or(0);
    r.succeeded_step = succeeded.value_or(0);
  }
  out = r;
  return std::nullopt;
}

json::value scheduling_json(const scheduling& s) {
  if (s.start_time.empty() && s.end_time.empty()) return nullptr;
  json::object o;
  if (!s.start_time.empty()) o["startTime"] = s.start_time;
  if (!s.end_time.empty()) o["endTime"] = s.end_time;
  if (!s.end_behavior.empty()) o["endBehavior"] = s.end_behavior;
  return o;
}

std::optional<std::int64_t> parse_schedule_time(std::string_view text) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0, used = 0;
  std::string t(text);
  if (std::sscanf(t.c_str(), "%4d-%2d-%2dT%2d:%2d%n", &y, &mo, &d, &h, &mi, &used) != 5 || used != 16) return std::nullopt;
  std::string_view rest = text.substr(16);
  if (rest.size() >= 3 && rest[0] == ':') {
    if (std::sscanf(t.c_str() + 16, ":%2d", &sec) != 1 || !std::isdigit(static_cast<unsigned char>(rest[1])) ||
        !std::isdigit(static_cast<unsigned char>(rest[2])))
      return std::nullopt;
    rest.remove_prefix(3);
  }
  if (rest == "Z") rest = {};
  if (!rest.empty() || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 59) return std::nullopt;
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = sec;
  return static_cast<std::int64_t>(timegm(&tm)) * 1000;
}

std::optional<std::string> parse_scheduling(const json::value& v, scheduling& out) {
  const auto* o = v.if_object();
  if (!o) return "schedulingConfig must be an object";
  scheduling s;
  if (auto t = common::text_member(*o, "startTime")) {
    auto ms = parse_schedule_time(*t);
    if (!ms) return "startTime must be YYYY-MM-DDTHH:MM (UTC)";
    s.start_time = *t;
    s.start_ms = *ms;
  }
  if (auto t = common::text_member(*o, "endTime")) {
    auto ms = parse_schedule_time(*t);
    if (!ms) return "endTime must be YYYY-MM-DDTHH:MM (UTC)";
    s.end_time = *t;
    s.end_ms = *ms;
  }
  if (auto b = common::text_member(*o, "endBehavior")) {
    if (*b != "STOP_ROLLOUT" && *b != "CANCEL" && *b != "FORCE_CANCEL")
      return "endBehavior must be STOP_ROLLOUT, CANCEL or FORCE_CANCEL";
    s.end_behavior = *b;
  }
  out = std::move(s);
  return std::nullopt;
}

json::object parameters_json(const std::map<std::string, std::string>& p) {
  json::object o;
  for (const auto& [k, v] : p) o[k] = v;
  return o;
}

json::value retry_json(const std::vector<retry_criterion>& r) {
  if (r.empty()) return nullptr;
  json::array list;
  for (const auto& c : r) list.push_back(json::object{{"failureType", c.failure_type}, {"numberOfRetries", c.retries}});
  return json::object{{"criteriaList", std::move(list)}};
}

json::value abort_json(const std::vector<abort_criterion>& a) {
  if (a.empty()) return nullptr;
  json::array list;
  for (const auto& c : a)
    list.push_back(json::object{{"failureType", c.failure_type},
                                {"action", "CANCEL"},
                                {"thresholdPercentage", c.threshold_percentage},
                                {"minNumberOfExecutedThings", c.min_executed}});
  return json::object{{"criteriaList", std::move(list)}};
}

std::optional<std::string> parse_retry(const json::value& v, std::vector<retry_criterion>& out) {
  const auto* o = v.if_object();
  const auto* list = o ? o->if_contains("criteriaList") : nullptr;
  if (!list || !list->is_array() || list->get_array().empty() || list->get_array().size() > 2)
    return "jobExecutionsRetryConfig.criteriaList must have 1 or 2 criteria";
  std::int64_t total = 0;
  for (const auto& c : list->get_array()) {
    const auto* co = c.if_object();
    auto type = co ? common::text_member(*co, "failureType") : std::nullopt;
    auto n = co ? common::int_member(*co, "numberOfRetries") : std::nullopt;
    if (!type || (*type != "FAILED" && *type != "TIMED_OUT" && *type != "ALL"))
      return "retry failureType must be FAILED, TIMED_OUT or ALL";
    if (!n || *n < 0 || *n > 10) return "numberOfRetries must be between 0 and 10";
    if (std::any_of(out.begin(), out.end(), [&](const retry_criterion& x) { return x.failure_type == *type; }))
      return "retry failureType " + std::string(*type) + " is given twice";
    total += *n;
    out.push_back({std::string(*type), *n});
  }
  if (total > 10) return "at most 10 retries per device, all failure types together";
  return std::nullopt;
}

std::optional<std::string> parse_abort(const json::value& v, std::vector<abort_criterion>& out) {
  const auto* o = v.if_object();
  const auto* list = o ? o->if_contains("criteriaList") : nullptr;
  if (!list || !list->is_array() || list->get_array().empty()) return "abortConfig.criteriaList must have a criterion";
  for (const auto& c : list->get_array()) {
    const auto* co = c.if_object();
    if (!co) return "abortConfig criteria must be objects";
    auto type = common::text_member(*co, "failureType");
    if (!type || (*type != "FAILED" && *type != "REJECTED" && *type != "TIMED_OUT" && *type != "ALL"))
      return "abort failureType must be FAILED, REJECTED, TIMED_OUT or ALL";
    if (common::text_member(*co, "action") != std::optional<std::string_view>("CANCEL")) return "abort action must be CANCEL";
    auto pct = common::number_member(*co, "thresholdPercentage");
    if (!pct || *pct <= 0 || *pct > 100) return "thresholdPercentage must be greater than 0 and at most 100";
    auto min = common::int_member(*co, "minNumberOfExecutedThings");
    if (!min || *min < 1) return "minNumberOfExecutedThings must be at least 1";
    out.push_back({std::string(*type), *pct, *min});
  }
  return std::nullopt;
}

std::optional<job> job::parse(std::string_view body) {
  auto o = parse_object(body);
  if (!o) return std::nullopt;
  job j;
  j.id = text(*o, "jobId");
  j.description = text(*o, "description");
  j.document = text(*o, "document");
  j.document_source = text(*o, "documentSource");
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
  if (!j.load(*o)) return std::nullopt;
  if (const auto* sc = o->if_contains("scheduling"); sc && !sc->is_null() && parse_scheduling(*sc, j.schedule))
    return std::nullopt;
  j.schedule.ended = common::bool_member(*o, "schedulingEnded").value_or(false);
  j.template_arn = text(*o, "jobTemplateArn");
  if (const auto* p = common::object_member(*o, "documentParameters"))
    for (const auto& [k, v] : *p)
      if (v.is_string()) j.document_parameters.emplace(std::string(k), std::string(v.get_string()));
  j.rollout_done = integer(*o, "rolloutDone");
  j.rollout_total = integer(*o, "rolloutTotal");
  j.window_start_ms = integer(*o, "windowStart");
  j.window_created = integer(*o, "windowCreated");
  j.rollout_stopped = common::bool_member(*o, "rolloutStopped").value_or(false);
  if (const auto* a = common::object_member(*o, "attempts")) {
    j.finished = integer(*a, "finished");
    j.failed = integer(*a, "failed");
    j.rejected = integer(*a, "rejected");
    j.timed_out = integer(*a, "timedOut");
  }
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
                                      {"stepTimeoutAt", step_timeout_at_ms},
                                      {"retryAttempt", retry_attempt},
                                      {"retriesFailed", retries_failed},
                                      {"retriesTimedOut", retries_timed_out}});
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
  e.retry_attempt = integer(*o, "retryAttempt");
  e.retries_failed = integer(*o, "retriesFailed");
  e.retries_timed_out = integer(*o, "retriesTimedOut");
  return e;
}

}  // namespace fleetcore::jobs
