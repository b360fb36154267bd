// The jobs service's iot operations: jobs and their executions.
#include "jobs/internal.hpp"

#include "common/aws_paging.hpp"
#include "common/log.hpp"
#include "registry/arn.hpp"

#include <boost/asio/post.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>

namespace fleetcore::jobs {

namespace json = boost::json;
using common::aws_response;
using namespace detail;

// --- the control plane -------------------------------------------------------------------------

std::vector<std::string_view> jobs_service::operations() {
  return {"CreateJob",          "DescribeJob",          "ListJobs",
          "UpdateJob",          "CancelJob",            "DeleteJob",
          "GetJobDocument",     "AssociateTargetsWithJob", "DescribeJobExecution",
          "ListJobExecutionsForJob", "ListJobExecutionsForThing", "CancelJobExecution",
          "DeleteJobExecution",      "CreateJobTemplate",       "DescribeJobTemplate",
          "ListJobTemplates",        "DeleteJobTemplate",       "DescribeManagedJobTemplate",
          "ListManagedJobTemplates",
          // The device data plane over HTTPS, beside iot's operations of the same names and paths.
          "iot-jobs-data:GetPendingJobExecutions", "iot-jobs-data:StartNextPendingJobExecution",
          "iot-jobs-data:DescribeJobExecution", "iot-jobs-data:UpdateJobExecution"};
}

std::future<aws_response> jobs_service::call(std::string op, json::object input) {
  auto promise = std::make_shared<std::promise<aws_response>>();
  auto f = promise->get_future();
  boost::asio::post(io_, [this, op = std::move(op), input = std::move(input), promise] {
    api_calls_.inc();
    batch b;
    auto response = run(op, input, b);
    commit(b, [promise, response = std::move(response)](bool durable) mutable {
      promise->set_value(durable ? std::move(response)
                                 : aws_response::error(500, "InternalFailureException", "the change could not be stored"));
    });
  });
  return f;
}

aws_response jobs_service::run(const std::string& op, const json::object& in, batch& b) {
  if (op == "CreateJob") return create_job(in, b);
  if (op == "DescribeJob") return describe_job(in);
  if (op == "ListJobs") return list_jobs(in);
  if (op == "UpdateJob") return update_job(in, b);
  if (op == "CancelJob") return cancel_job(in, b);
  if (op == "DeleteJob") return delete_job(in, b);
  if (op == "GetJobDocument") return get_job_document(in);
  if (op == "AssociateTargetsWithJob") return associate_targets(in, b);
  if (op == "CreateJobTemplate") return create_template(in, b);
  if (op == "DescribeJobTemplate") return describe_template(in);
  if (op == "ListJobTemplates") return list_templates(in);
  if (op == "DeleteJobTemplate") return delete_template(in, b);
  if (op == "DescribeManagedJobTemplate") return describe_managed(in);
  if (op == "ListManagedJobTemplates") return list_managed(in);
  if (op == "iot-jobs-data:GetPendingJobExecutions") return data_plane(device_op::get_pending, in, b);
  if (op == "iot-jobs-data:StartNextPendingJobExecution") return data_plane(device_op::start_next, in, b);
  if (op == "iot-jobs-data:DescribeJobExecution") return data_plane(device_op::describe, in, b);
  if (op == "iot-jobs-data:UpdateJobExecution") return data_plane(device_op::update, in, b);
  if (op == "DescribeJobExecution") return describe_execution(in);
  if (op == "ListJobExecutionsForJob") return list_executions_for_job(in);
  if (op == "ListJobExecutionsForThing") return list_executions_for_thing(in);
  if (op == "CancelJobExecution") return cancel_execution(in, b);
  if (op == "DeleteJobExecution") return delete_execution(in, b);
  return aws_response::error(404, "UnknownOperationException", "jobs has no operation " + op);
}

namespace detail {
/// The timeoutConfig member, validated: minutes (0 when absent).
std::optional<aws_response> read_timeout(const json::object& in, std::int64_t& minutes) {
  const auto* t = common::object_member(in, "timeoutConfig");
  if (!t) return std::nullopt;
  auto m = common::int_member(*t, "inProgressTimeoutInMinutes");
  if (!m || *m < 1 || *m > k_max_timeout_min)
    return invalid("timeoutConfig.inProgressTimeoutInMinutes must be between 1 and 10080");
  minutes = *m;
  return std::nullopt;
}

/// abortConfig and jobExecutionsRetryConfig, validated into `j` (a TIMED_OUT retry needs a timeout).
std::optional<aws_response> read_configs(const json::object& in, job& j) {
  if (const auto* a = in.if_contains("abortConfig")) {
    std::vector<abort_criterion> abort;
    if (auto e = parse_abort(*a, abort)) return invalid(*e);
    j.abort = std::move(abort);
  }
  if (const auto* r = in.if_contains("jobExecutionsRetryConfig")) {
    std::vector<retry_criterion> retry;
    if (auto e = parse_retry(*r, retry)) return invalid(*e);
    for (const auto& c : retry)
      if (c.failure_type == "TIMED_OUT" && j.in_progress_timeout_min == 0)
        return invalid("retrying TIMED_OUT executions needs a timeoutConfig");
    j.retry = std::move(retry);
  }
  if (const auto* r = in.if_contains("jobExecutionsRolloutConfig")) {
    rollout_config rollout;
    if (auto e = parse_rollout(*r, rollout)) return invalid(*e);
    j.rollout = rollout;
  }
  if (const auto* p = in.if_contains("presignedUrlConfig")) {
    const auto* o = p->if_object();
    auto role = o ? common::text_member(*o, "roleArn") : std::nullopt;
    if (!o || (role && (role->size() < 20 || role->size() > 2048)))
      return invalid("presignedUrlConfig.roleArn must be an IAM role ARN");
    auto expires = common::int_member(*o, "expiresInSec");
    if (o->contains("expiresInSec") && (!expires || *expires < 60 || *expires > 3600))
      return invalid("presignedUrlConfig.expiresInSec must be between 60 and 3600");
    j.presigned_role_arn = std::string(role.value_or(""));
    j.presigned_expires_s = expires.value_or(3600);
  }
  return std::nullopt;
}

/// Members of CreateJob / UpdateJob this version does not implement yet: refused, not ignored.
std::optional<aws_response> refuse_unimplemented(const json::object& in) {
  for (std::string_view key : {"destinationPackageVersions"})
    if (in.contains(key)) return invalid(std::string(key) + " is not supported by fleetcore yet");
  if (auto ns = common::text_member(in, "namespaceId"); ns && !ns->empty())
    return invalid("namespaceId is not supported by fleetcore yet");
  return std::nullopt;
}
}  // namespace detail

aws_response jobs_service::create_job(const json::object& in, batch& b) {
  const std::string id = text(in, "jobId");
  if (!valid_job_id(id)) return invalid("jobId must match [a-zA-Z0-9_-]{1,64}");
  if (auto e = refuse_unimplemented(in)) return *e;
  if (jobs_.contains(id))
    return aws_response::already_exists("Job " + id + " already exists", id, job_arn(id));
  job j;
  j.id = id;
  auto selection = text(in, "targetSelection");
  if (!selection.empty() && selection != "SNAPSHOT" && selection != "CONTINUOUS")
    return invalid("targetSelection must be SNAPSHOT or CONTINUOUS");
  j.continuous = selection == "CONTINUOUS";
  if (auto e = apply_template(in, j)) return *e;
  if (auto d = common::text_member(in, "description")) j.description = *d;
  if (j.description.size() > k_max_description) return invalid("description is longer than 2028 characters");
  if (auto document = common::text_member(in, "document")) j.document = *document;
  // A documentSource was read from the object store before this ran (the module puts its content in
  // `document`); the URL is kept for DescribeJob.
  if (auto source = common::text_member(in, "documentSource")) j.document_source = *source;
  if (j.document.empty()) return invalid("document is required (or a documentSource or a jobTemplateArn that has one)");
  if (j.document.size() > k_max_document) return invalid("document is larger than 32768 bytes");
  boost::system::error_code ec;
  j.document_json = json::parse(j.document, ec);
  if (ec || !j.document_json.is_object()) return invalid("document must be a JSON object");
  if (auto e = read_timeout(in, j.in_progress_timeout_min)) return *e;
  if (auto e = read_configs(in, j)) return *e;
  const std::int64_t now = now_ms();
  if (const auto* sc = in.if_contains("schedulingConfig")) {
    if (auto e = parse_scheduling(*sc, j.schedule)) return invalid(*e);
    constexpr std::int64_t half_hour = 30 * k_minute_ms, day = 24 * 60 * k_minute_ms;
    const auto& t = j.schedule;
    if (t.start_ms && (t.start_ms < now + half_hour || t.start_ms > now + 366 * day))
      return invalid("startTime must be at least 30 minutes and at most a year ahead");
    if (t.end_ms && (t.end_ms < std::max(now, t.start_ms) + half_hour || t.end_ms > now + 2 * 366 * day))
      return invalid("endTime must be at least 30 minutes after startTime and at most two years ahead");
    if (t.start_ms) j.status = job_status::scheduled;
  }

  // The targets, resolved now: things, and the things of groups and their descendants.
  std::set<std::string> things;
  if (auto e = resolve_targets(in, j.targets, things)) return *e;

  j.created_ms = now;
  j.rollout_total = static_cast<std::int64_t>(things.size());
  counts_[id] = {};
  auto& stored = jobs_.emplace(id, std::move(j)).first->second;
  if ((stored.rollout.limited() || stored.status == job_status::scheduled) && stored.rolling_out()) {
    // Rolled out over time (or later): the things are kept in order for the rollout to take.
    auto& list = targets_[id];
    list.assign(things.begin(), things.end());
    json::array a;
    for (const auto& t : list) a.emplace_back(t);
    b.ops.push_back(storage::op::put_document{{std::string(k_targets_kind), id, json::serialize(a)}});
    rollout_step(stored, b);
  } else {
    for (const auto& thing : things) create_execution(stored, thing, b);
    stored.rollout_done = stored.rollout_total;
  }
  store_job(stored, b);
  maybe_complete(stored, b);
  FC_LOG_INFO("jobs.created", "job={} things={} status={}", id, things.size(), to_string(stored.status));
  return job_answer(stored);
}

std::optional<aws_response> jobs_service::resolve_targets(const json::object& in, std::vector<std::string>& arns,
                                                          std::set<std::string>& things) const {
  const auto* targets = in.if_contains("targets");
  if (!targets || !targets->is_array() || targets->get_array().empty()) return invalid("targets must list at least one ARN");
  for (const auto& t : targets->get_array()) {
    if (!t.is_string()) return invalid("targets must be ARNs");
    std::string_view arn = t.get_string();
    if (auto thing = registry::aws_arn::name_of(arn, "thing")) {
      if (!dir_.thing_exists || !dir_.thing_exists(*thing)) return not_found("Thing " + *thing + " does not exist");
      things.insert(*thing);
    } else if (auto group = registry::aws_arn::name_of(arn, "thinggroup")) {
      auto members = dir_.group_things ? dir_.group_things(*group) : std::nullopt;
      if (!members) return not_found("Thing group " + *group + " does not exist");
      things.insert(members->begin(), members->end());
    } else {
      return invalid("target " + std::string(arn) + " is neither a thing nor a thing group ARN");
    }
    arns.emplace_back(arn);
  }
  return std::nullopt;
}

aws_response jobs_service::job_answer(const job& j) const {
  // CreateJob, CancelJob and AssociateTargetsWithJob answer alike.
  json::object out{{"jobArn", job_arn(j.id)}, {"jobId", j.id}};
  if (!j.description.empty()) out["description"] = j.description;
  return aws_response::ok(json::serialize(out));
}

aws_response jobs_service::describe_job(const json::object& in) {
  auto id = text(in, "jobId");
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return not_found("Job " + id + " does not exist");
  const job& j = it->second;
  const auto& c = counts_[j.id];
  json::array targets;
  for (const auto& t : j.targets) targets.emplace_back(t);
  json::object o{{"jobArn", job_arn(j.id)},
                 {"jobId", j.id},
                 {"targetSelection", j.continuous ? "CONTINUOUS" : "SNAPSHOT"},
                 {"status", to_string(j.status)},
                 {"forceCanceled", j.force_canceled},
                 {"targets", std::move(targets)},
                 {"createdAt", api_time(j.created_ms)},
                 {"lastUpdatedAt", api_time(j.updated_ms)},
                 {"isConcurrent", j.rolling_out() && j.status == job_status::in_progress},
                 {"jobProcessDetails",
                  {{"numberOfCanceledThings", c[index(exec_status::canceled)]},
                   {"numberOfSucceededThings", c[index(exec_status::succeeded)]},
                   {"numberOfFailedThings", c[index(exec_status::failed)]},
                   {"numberOfRejectedThings", c[index(exec_status::rejected)]},
                   {"numberOfQueuedThings", c[index(exec_status::queued)]},
                   {"numberOfInProgressThings", c[index(exec_status::in_progress)]},
                   {"numberOfRemovedThings", c[index(exec_status::removed)]},
                   {"numberOfTimedOutThings", c[index(exec_status::timed_out)]}}}};
  if (!j.description.empty()) o["description"] = j.description;
  if (!j.reason_code.empty()) o["reasonCode"] = j.reason_code;
  if (!j.comment.empty()) o["comment"] = j.comment;
  if (j.completed_ms) o["completedAt"] = api_time(j.completed_ms);
  j.describe(o);
  if (!j.template_arn.empty()) o["jobTemplateArn"] = j.template_arn;
  if (!j.document_parameters.empty()) o["documentParameters"] = parameters_json(j.document_parameters);
  if (!j.schedule.start_time.empty() || !j.schedule.end_time.empty()) o["schedulingConfig"] = scheduling_json(j.schedule);
  if (j.rolling_out()) {
    json::array processing;
    for (const auto& t : j.targets) processing.emplace_back(t);
    o["jobProcessDetails"].as_object()["processingTargets"] = std::move(processing);
  }
  json::object body{{"job", std::move(o)}};
  if (!j.document_source.empty()) body["documentSource"] = j.document_source;
  return aws_response::ok(json::serialize(body));
}

aws_response jobs_service::list_jobs(const json::object& in) {
  std::int64_t max = 0;
  if (auto e = common::page_size(in, "maxResults", 250, 50, max)) return aws_response::from(*e);
  auto status = common::text_member(in, "status");
  auto selection = common::text_member(in, "targetSelection");
  auto group = common::text_member(in, "thingGroupName");
  std::vector<std::string> ids;
  for (const auto& [id, j] : jobs_) {
    if (status && to_string(j.status) != *status) continue;
    if (selection && (j.continuous ? "CONTINUOUS" : "SNAPSHOT") != *selection) continue;
    if (group && std::none_of(j.targets.begin(), j.targets.end(), [&](const std::string& t) {
          return registry::aws_arn::name_of(t, "thinggroup") == std::string(*group);
        }))
      continue;
    ids.push_back(id);
  }
  std::optional<std::string> token, next;
  if (auto t = common::text_member(in, "nextToken")) token = std::string(*t);
  json::array jobs;
  for (const auto& id : common::page_after(ids, token, max, next)) {
    const job& j = jobs_.at(id);
    json::object s{{"jobArn", job_arn(id)},
                   {"jobId", id},
                   {"targetSelection", j.continuous ? "CONTINUOUS" : "SNAPSHOT"},
                   {"status", to_string(j.status)},
                   {"createdAt", api_time(j.created_ms)},
                   {"lastUpdatedAt", api_time(j.updated_ms)},
                   {"isConcurrent", j.rolling_out() && j.status == job_status::in_progress}};
    if (j.completed_ms) s["completedAt"] = api_time(j.completed_ms);
    jobs.push_back(std::move(s));
  }
  json::object body{{"jobs", std::move(jobs)}};
  if (next) body["nextToken"] = *next;
  return aws_response::ok(json::serialize(body));
}

aws_response jobs_service::update_job(const json::object& in, batch& b) {
  auto id = text(in, "jobId");
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return not_found("Job " + id + " does not exist");
  if (auto e = refuse_unimplemented(in)) return *e;
  job& j = it->second;
  job changed = j;  // applied only once every member is valid
  if (auto d = common::text_member(in, "description")) {
    if (d->size() > k_max_description) return invalid("description is longer than 2028 characters");
    changed.description = *d;
  }
  // A new timeout applies to the executions that go IN_PROGRESS from now on.
  if (auto e = read_timeout(in, changed.in_progress_timeout_min)) return *e;
  if (auto e = read_configs(in, changed)) return *e;
  j = std::move(changed);
  store_job(j, b);
  return aws_response::ok("{}");
}

aws_response jobs_service::cancel_job(const json::object& in, batch& b) {
  auto id = text(in, "jobId");
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return not_found("Job " + id + " does not exist");
  job& j = it->second;
  const bool force = common::bool_member(in, "force").value_or(false);
  auto reason = text(in, "reasonCode");
  auto comment = text(in, "comment");
  if (reason.size() > 128 || !std::all_of(reason.begin(), reason.end(), [](unsigned char c) {
        return std::isupper(c) || std::isdigit(c) || c == '_';
      }))
    return invalid("reasonCode must match [A-Z0-9_]{0,128}");
  if (comment.size() > k_max_description) return invalid("comment is longer than 2028 characters");
  // A job canceled without force can still be canceled with force (its IN_PROGRESS executions then).
  if (j.status == job_status::completed || (j.status == job_status::canceled && (!force || j.force_canceled)))
    return invalid("Job " + id + " is " + std::string(to_string(j.status)) + " and cannot be canceled");
  cancel(j, force, reason, comment, b);
  return job_answer(j);
}

void jobs_service::cancel(job& j, bool force, const std::string& reason, const std::string& comment, batch& b) {
  j.status = job_status::canceled;
  if (j.rolling_out()) {  // the things not reached yet never get an execution
    j.rollout_stopped = true;
    targets_.erase(j.id);
    b.ops.push_back(storage::op::delete_document{std::string(k_targets_kind), j.id});
  }
  j.force_canceled = j.force_canceled || force;
  if (!reason.empty()) j.reason_code = reason;
  if (!comment.empty()) j.comment = comment;
  job_event(j, "cancellation_in_progress", b);
  for (auto e = executions_.lower_bound(execution_key(j.id, "")); e != executions_.end() && e->second.job_id == j.id; ++e) {
    auto& x = e->second;
    if (x.status == exec_status::queued || (force && x.status == exec_status::in_progress)) {
      x.force_canceled = x.status == exec_status::in_progress;
      set_status(x, exec_status::canceled, b);
    }
  }
  store_job(j, b);
  job_event(j, "canceled", b);
  FC_LOG_INFO("jobs.canceled", "job={} force={} reason={}", j.id, force, j.reason_code);
}

aws_response jobs_service::delete_job(const json::object& in, batch& b) {
  auto id = text(in, "jobId");
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return not_found("Job " + id + " does not exist");
  if (it->second.status == job_status::in_progress && !common::bool_member(in, "force").value_or(false))
    return bad_transition("Job " + id + " is IN_PROGRESS: cancel it first, or delete it with force");
  job_event(it->second, "deletion_in_progress", b);
  for (auto e = executions_.lower_bound(execution_key(id, "")); e != executions_.end() && e->second.job_id == id;)
    erase_execution(e++, b);
  b.ops.push_back(storage::op::delete_document{std::string(k_job_kind), id});
  targets_.erase(id);
  b.ops.push_back(storage::op::delete_document{std::string(k_targets_kind), id});
  job_event(it->second, "deleted", b);
  counts_.erase(id);
  jobs_.erase(it);
  FC_LOG_INFO("jobs.deleted", "job={}", id);
  return aws_response::ok("{}");
}

aws_response jobs_service::associate_targets(const json::object& in, batch& b) {
  auto id = text(in, "jobId");
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return not_found("Job " + id + " does not exist");
  if (auto ns = common::text_member(in, "namespaceId"); ns && !ns->empty())
    return invalid("namespaceId is not supported by fleetcore yet");
  job& j = it->second;
  if (!j.continuous || j.status != job_status::in_progress)
    return invalid("targets can be added only to an IN_PROGRESS job whose targetSelection is CONTINUOUS");
  auto comment = text(in, "comment");
  if (comment.size() > k_max_description) return invalid("comment is longer than 2028 characters");
  std::set<std::string> things;
  std::vector<std::string> arns, added;
  if (auto e = resolve_targets(in, arns, things)) return *e;
  for (auto& arn : arns)
    if (std::find(j.targets.begin(), j.targets.end(), arn) == j.targets.end()) added.push_back(std::move(arn));
  if (j.targets.size() + added.size() > 100) return aws_response::error(410, "LimitExceededException", "a job has at most 100 targets");
  j.targets.insert(j.targets.end(), added.begin(), added.end());
  if (!comment.empty()) j.comment = comment;
  for (const auto& thing : things) join(j, thing, b);
  store_job(j, b);
  return job_answer(j);
}

aws_response jobs_service::get_job_document(const json::object& in) {
  auto id = text(in, "jobId");
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return not_found("Job " + id + " does not exist");
  return aws_response::ok(json::serialize(json::object{{"document", it->second.document}}));
}

namespace {
json::object execution_summary(const execution& e) {
  json::object o{{"status", to_string(e.status)}, {"queuedAt", api_time(e.queued_ms)}};
  if (e.started_ms) o["startedAt"] = api_time(e.started_ms);
  o["lastUpdatedAt"] = api_time(e.updated_ms);
  o["executionNumber"] = e.execution_number;
  o["retryAttempt"] = e.retry_attempt;
  return o;
}
}  // namespace

aws_response jobs_service::describe_execution(const json::object& in) {
  auto id = text(in, "jobId");
  auto thing = text(in, "thingName");
  auto it = executions_.find(execution_key(id, thing));
  auto number = common::int_member(in, "executionNumber");
  if (it == executions_.end() || (number && *number != it->second.execution_number))
    return not_found("No job execution of job " + id + " for thing " + thing);
  const execution& e = it->second;
  json::object o{{"jobId", e.job_id},
                 {"status", to_string(e.status)},
                 {"forceCanceled", e.force_canceled},
                 {"statusDetails", {{"detailsMap", details_json(e.details)}}},
                 {"thingArn", thing_arn(e.thing)},
                 {"queuedAt", api_time(e.queued_ms)}};
  if (e.started_ms) o["startedAt"] = api_time(e.started_ms);
  o["lastUpdatedAt"] = api_time(e.updated_ms);
  o["executionNumber"] = e.execution_number;
  o["versionNumber"] = e.version;
  if (auto d = e.deadline_ms()) o["approximateSecondsBeforeTimedOut"] = std::max<std::int64_t>(0, (d - now_ms()) / 1000);
  return aws_response::ok(json::serialize(json::object{{"execution", std::move(o)}}));
}

aws_response jobs_service::list_executions_for_job(const json::object& in) {
  auto id = text(in, "jobId");
  if (!jobs_.contains(id)) return not_found("Job " + id + " does not exist");
  std::int64_t max = 0;
  if (auto e = common::page_size(in, "maxResults", 250, 50, max)) return aws_response::from(*e);
  auto status = common::text_member(in, "status");
  std::vector<std::string> things;
  for (auto e = executions_.lower_bound(execution_key(id, "")); e != executions_.end() && e->second.job_id == id; ++e)
    if (!status || to_string(e->second.status) == *status) things.push_back(e->second.thing);
  std::optional<std::string> token, next;
  if (auto t = common::text_member(in, "nextToken")) token = std::string(*t);
  json::array out;
  for (const auto& thing : common::page_after(things, token, max, next))
    out.push_back(json::object{{"thingArn", thing_arn(thing)},
                               {"jobExecutionSummary", execution_summary(executions_.at(execution_key(id, thing)))}});
  json::object body{{"executionSummaries", std::move(out)}};
  if (next) body["nextToken"] = *next;
  return aws_response::ok(json::serialize(body));
}

aws_response jobs_service::list_executions_for_thing(const json::object& in) {
  auto thing = text(in, "thingName");
  std::int64_t max = 0;
  if (auto e = common::page_size(in, "maxResults", 250, 50, max)) return aws_response::from(*e);
  if (auto ns = common::text_member(in, "namespaceId"); ns && !ns->empty())
    return invalid("namespaceId is not supported by fleetcore yet");
  auto status = common::text_member(in, "status");
  auto job_filter = common::text_member(in, "jobId");
  std::vector<std::string> ids;
  if (auto it = thing_jobs_.find(thing); it != thing_jobs_.end())
    for (const auto& id : it->second) {
      if (job_filter && id != *job_filter) continue;
      if (status && to_string(executions_.at(execution_key(id, thing)).status) != *status) continue;
      ids.push_back(id);
    }
  std::optional<std::string> token, next;
  if (auto t = common::text_member(in, "nextToken")) token = std::string(*t);
  json::array out;
  for (const auto& id : common::page_after(ids, token, max, next))
    out.push_back(json::object{{"jobId", id}, {"jobExecutionSummary", execution_summary(executions_.at(execution_key(id, thing)))}});
  json::object body{{"executionSummaries", std::move(out)}};
  if (next) body["nextToken"] = *next;
  return aws_response::ok(json::serialize(body));
}

aws_response jobs_service::cancel_execution(const json::object& in, batch& b) {
  auto id = text(in, "jobId");
  auto thing = text(in, "thingName");
  auto it = executions_.find(execution_key(id, thing));
  if (it == executions_.end()) return not_found("No job execution of job " + id + " for thing " + thing);
  execution& e = it->second;
  const bool force = common::bool_member(in, "force").value_or(false);
  status_details details;
  const auto* d = in.if_contains("statusDetails");
  if (d)
    if (auto err = read_details(*d, details, 10)) return invalid(*err);
  if (auto expected = common::int_member(in, "expectedVersion"); expected && *expected != e.version)
    return aws_response::error(409, "VersionConflictException",
                               "expectedVersion " + std::to_string(*expected) + " is not the current version " +
                                   std::to_string(e.version));
  if (terminal(e.status)) return bad_transition("The job execution is already " + std::string(to_string(e.status)));
  if (e.status == exec_status::in_progress && !force)
    return bad_transition("The job execution is IN_PROGRESS: cancel it with force");
  if (d) e.details = std::move(details);
  e.force_canceled = e.status == exec_status::in_progress;
  set_status(e, exec_status::canceled, b);
  return aws_response::ok("{}");
}

aws_response jobs_service::delete_execution(const json::object& in, batch& b) {
  auto id = text(in, "jobId");
  auto thing = text(in, "thingName");
  auto it = executions_.find(execution_key(id, thing));
  auto number = common::int_member(in, "executionNumber");
  if (it == executions_.end() || !number || *number != it->second.execution_number)
    return not_found("No job execution of job " + id + " for thing " + thing);
  if (!terminal(it->second.status) && !common::bool_member(in, "force").value_or(false))
    return bad_transition("The job execution is " + std::string(to_string(it->second.status)) +
                          ": delete it with force, or once it is terminal");
  auto& j = jobs_.at(id);
  erase_execution(it, b);
  maybe_complete(j, b);
  return aws_response::ok("{}");
}

}  // namespace fleetcore::jobs
