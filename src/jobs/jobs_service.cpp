// The jobs service's state: loading, the request batch and its commit, notifications, the executions'
// state machine, timers, rollouts, schedules and CONTINUOUS targets.
#include "jobs/internal.hpp"

#include "common/aws_names.hpp"
#include "common/log.hpp"
#include "registry/arn.hpp"
#include "registry/registry.hpp"
#include "common/uuid.hpp"

#include <boost/asio/post.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>

namespace fleetcore::jobs {

namespace json = boost::json;
using common::aws_response;
using namespace detail;

namespace detail {

/// A whole number given as a JSON number or a digit string (the embedded-C SDK sends expectedVersion
/// as "2"); nullopt when absent, an error message when malformed.
std::optional<std::int64_t> lenient_int(const json::object& in, std::string_view key, std::string& error) {
  const auto* v = in.if_contains(key);
  if (!v) return std::nullopt;
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64() && v->get_uint64() <= static_cast<std::uint64_t>(INT64_MAX)) return static_cast<std::int64_t>(v->get_uint64());
  if (v->is_string()) {
    std::string_view s = v->get_string();
    std::int64_t n = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    if (!s.empty() && s[0] != '-' && ec == std::errc() && end == s.data() + s.size()) return n;
  }
  error = std::string(key) + " must be a whole number";
  return std::nullopt;
}

/// statusDetails: an object of string values, keys `[a-zA-Z0-9:_-]{1,128}`, values 1-1024 characters.
std::optional<std::string> read_details(const json::value& v, status_details& out, std::size_t max_pairs) {
  if (!v.is_object()) return "statusDetails must be an object of strings";
  const auto& o = v.get_object();
  if (o.size() > max_pairs) return "statusDetails has more than " + std::to_string(max_pairs) + " entries";
  for (const auto& [k, val] : o) {
    if (!valid_details_key(k)) return "statusDetails key '" + std::string(k) + "' must match [a-zA-Z0-9:_-]{1,128}";
    if (!val.is_string() || val.get_string().empty() || val.get_string().size() > 1024)
      return "statusDetails value of '" + std::string(k) + "' must be a string of 1 to 1024 characters";
    out[std::string(k)] = std::string(val.get_string());
  }
  return std::nullopt;
}

}  // namespace detail

jobs_service::jobs_service(storage::store& store, common::clock& clock, directory dir, std::string arn_prefix, settings s)
    : store_(store), clock_(clock), dir_(std::move(dir)), arn_prefix_(std::move(arn_prefix)), settings_(s),
      work_(io_.get_executor()) {
  for (auto& d : store_.load_documents(std::string(k_job_kind))) {
    auto j = job::parse(d.body);
    if (!j) throw std::runtime_error("jobs: unreadable job '" + d.key + "'");
    counts_[j->id] = {};
    jobs_.emplace(j->id, std::move(*j));
  }
  for (auto& d : store_.load_documents(std::string(k_execution_kind))) {
    auto e = execution::parse(d.body);
    if (!e || !jobs_.contains(e->job_id)) throw std::runtime_error("jobs: unreadable execution '" + d.key + "'");
    ++counts_[e->job_id][index(e->status)];
    thing_jobs_[e->thing].insert(e->job_id);
    arm_timer(*e);
    executions_.emplace(d.key, std::move(*e));
  }
  for (auto& d : store_.load_documents(std::string(k_template_kind))) {
    auto t = job_template::parse(d.body);
    if (!t) throw std::runtime_error("jobs: unreadable job template '" + d.key + "'");
    templates_.emplace(t->id, std::move(*t));
  }
  std::vector<storage::operation> orphans;
  for (auto& d : store_.load_documents(std::string(k_targets_kind))) {
    auto it = jobs_.find(d.key);
    if (it == jobs_.end() || !it->second.rolling_out()) {  // left by a crash between two batches: unused
      orphans.push_back(storage::op::delete_document{std::string(k_targets_kind), d.key});
      continue;
    }
    boost::system::error_code ec;
    auto v = json::parse(d.body, ec);
    if (ec || !v.is_array()) throw std::runtime_error("jobs: unreadable targets of '" + d.key + "'");
    auto& list = targets_[d.key];
    for (const auto& t : v.get_array())
      if (t.is_string()) list.emplace_back(t.get_string());
  }
  if (!orphans.empty()) store_.submit(std::move(orphans), nullptr);
  FC_LOG_INFO("jobs.loaded", "jobs={} executions={} timers={} rollouts={}", jobs_.size(), executions_.size(),
              deadlines_.size(), targets_.size());
}

jobs_service::~jobs_service() { stop(); }

void jobs_service::start() {
  schedule_tick();
  thread_ = std::thread([this] {
    io_.run();
  });
}

void jobs_service::stop() {
  if (!thread_.joinable()) return;
  stopping_ = true;  // a tick already due must not arm the timer again
  boost::asio::post(io_, [this] { tick_.cancel(); });
  work_.reset();
  thread_.join();
  // The last requests' commits call back into this service (their answers): done before it goes.
  store_.flush();
}

void jobs_service::schedule_tick() {
  tick_.expires_after(std::chrono::milliseconds(settings_.timer_tick_ms));
  tick_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopping_) return;
    tick();
    schedule_tick();
  });
}

std::vector<const execution*> jobs_service::pending_of(const std::string& thing) const {
  std::vector<const execution*> out;
  auto it = thing_jobs_.find(thing);
  if (it == thing_jobs_.end()) return out;
  for (const auto& job_id : it->second) {
    const auto& e = executions_.at(execution_key(job_id, thing));
    if (!terminal(e.status)) out.push_back(&e);
  }
  std::sort(out.begin(), out.end(), pending_before);
  return out;
}

namespace {
/// An execution's identity in a pending list: a retry is a new execution of the same job.
std::string pending_identity(const execution& e) { return e.job_id + '#' + std::to_string(e.execution_number); }
}  // namespace

void jobs_service::touch(batch& b, const std::string& thing) {
  if (b.before.contains(thing)) return;
  std::vector<std::string> ids;
  for (const auto* e : pending_of(thing)) ids.push_back(pending_identity(*e));
  b.before.emplace(thing, std::move(ids));
}

void jobs_service::notifications(batch& b) {
  // notify when the set of pending jobs changed; notify-next when the head changed (AWS's triggers:
  // an execution that only changes status, or one that goes IN_PROGRESS without overtaking, sends
  // neither).
  const std::int64_t ts = device_time(now_ms());
  for (auto& [thing, before] : b.before) {
    const auto after = pending_of(thing);
    std::vector<std::string> ids;
    for (const auto* e : after) ids.push_back(pending_identity(*e));
    std::string prefix = std::string(common::things_topic_prefix) + thing + "/jobs/";
    auto sorted_before = before, sorted_after = ids;
    std::sort(sorted_before.begin(), sorted_before.end());
    std::sort(sorted_after.begin(), sorted_after.end());
    if (sorted_before != sorted_after) {
      json::array in_progress, queued;
      std::size_t listed = 0;
      for (const auto* e : after) {
        if (listed++ == settings_.max_listed) break;
        (e->status == exec_status::in_progress ? in_progress : queued).push_back(device_summary(*e));
      }
      json::object jobs;
      if (!in_progress.empty()) jobs["IN_PROGRESS"] = std::move(in_progress);
      if (!queued.empty()) jobs["QUEUED"] = std::move(queued);
      b.broadcasts.emplace_back(prefix + "notify", json::serialize(json::object{{"timestamp", ts}, {"jobs", std::move(jobs)}}));
    }
    std::string head_before = before.empty() ? std::string() : before.front();
    std::string head_after = ids.empty() ? std::string() : ids.front();
    if (head_before != head_after) {
      json::object o{{"timestamp", ts}};
      if (!after.empty())
        o["execution"] = device_execution(*after.front(), device_document(jobs_.at(after.front()->job_id), true));
      b.broadcasts.emplace_back(prefix + "notify-next", json::serialize(o));
    }
  }
}

void jobs_service::commit(batch& b, std::function<void(bool)> then) {
  notifications(b);
  store_.submit(std::move(b.ops), [this, replies = std::move(b.replies), broadcasts = std::move(b.broadcasts),
                                   client = std::move(b.client_id), session = b.session,
                                   then = std::move(then)](bool durable) mutable {
    if (durable) {
      if (reply)
        for (auto& [topic, payload] : replies) reply(client, session, std::move(topic), std::move(payload));
      if (publish)
        for (auto& [topic, payload] : broadcasts) publish(std::move(topic), std::move(payload));
    } else {
      FC_LOG_ERROR("jobs.store_failed", "client={:q} replies={} notifications={}", common::untrusted(client),
                   replies.size(), broadcasts.size());
    }
    if (then) then(durable);
  });
}

// --- executions ------------------------------------------------------------------------------

void jobs_service::set_status(execution& e, exec_status to, batch& b, std::optional<std::int64_t> step_min,
                              execution* reached) {
  touch(b, e.thing);
  disarm_timer(e);
  const std::int64_t now = now_ms();
  if (e.status != to) {
    auto& c = counts_[e.job_id];
    --c[index(e.status)];
    ++c[index(to)];
    e.status = to;
  }
  ++e.version;
  e.updated_ms = now;
  if (to == exec_status::in_progress) {
    if (!e.started_ms) {
      e.started_ms = now;
      if (auto minutes = jobs_.at(e.job_id).in_progress_timeout_min) e.timeout_at_ms = now + minutes * k_minute_ms;
    }
    // A step timer replaces the previous one and never outlasts the in-progress timer.
    if (step_min) {
      e.step_timeout_at_ms = now + *step_min * k_minute_ms;
      if (e.timeout_at_ms) e.step_timeout_at_ms = std::min(e.step_timeout_at_ms, e.timeout_at_ms);
    }
  } else if (terminal(to)) {
    e.timeout_at_ms = e.step_timeout_at_ms = 0;
  }
  arm_timer(e);
  store_execution(e, b);
  if (reached) *reached = e;  // before a retry replaces it
  if (terminal(to)) {
    std::string operation(to_string(to));
    std::transform(operation.begin(), operation.end(), operation.begin(), [](unsigned char c) { return std::tolower(c); });
    execution_event(e, operation, b);
    job& j = jobs_.at(e.job_id);
    if (to == exec_status::succeeded || to == exec_status::failed || to == exec_status::rejected || to == exec_status::timed_out) {
      ++j.finished;
      j.failed += to == exec_status::failed;
      j.rejected += to == exec_status::rejected;
      j.timed_out += to == exec_status::timed_out;
      store_job(j, b);
      check_abort(j, b);
    }
    if ((to == exec_status::failed || to == exec_status::timed_out) && retry(e, b)) return;
    maybe_complete(j, b);
  }
}

void jobs_service::check_abort(job& j, batch& b) {
  if (j.status != job_status::in_progress) return;
  for (const auto& c : j.abort) {
    const std::int64_t failures = c.failure_type == "FAILED"      ? j.failed
                                  : c.failure_type == "REJECTED"  ? j.rejected
                                  : c.failure_type == "TIMED_OUT" ? j.timed_out
                                                                  : j.failed + j.rejected + j.timed_out;
    if (j.finished < c.min_executed || static_cast<double>(failures) * 100.0 < c.threshold_percentage * static_cast<double>(j.finished))
      continue;
    FC_LOG_INFO("jobs.aborted", "job={} failure_type={} failures={} finished={}", j.id, c.failure_type, failures, j.finished);
    cancel(j, false, "FAILURE_THRESHOLD_EXCEEDED",
           fmt::format("abortConfig: {} of {} finished executions {} (threshold {}%)", failures, j.finished,
                       c.failure_type == "ALL" ? std::string("failed") : c.failure_type, c.threshold_percentage),
           b);
    return;
  }
}

bool jobs_service::retry(execution& e, batch& b) {
  // jobExecutionsRetryConfig: the execution is queued again, as a new execution (its number + 1),
  // while the job runs and the failure type has retries left.
  const job& j = jobs_.at(e.job_id);
  if (j.status != job_status::in_progress) return false;
  const std::string type(to_string(e.status));
  const retry_criterion* c = nullptr;
  for (const auto& x : j.retry)
    if (x.failure_type == type) c = &x;
  if (!c)
    for (const auto& x : j.retry)
      if (x.failure_type == "ALL") c = &x;
  if (!c) return false;
  std::int64_t& used_of_type = e.status == exec_status::failed ? e.retries_failed : e.retries_timed_out;
  const std::int64_t used = c->failure_type == "ALL" ? e.retry_attempt : used_of_type;
  if (used >= c->retries) return false;
  ++used_of_type;
  ++e.retry_attempt;
  ++e.execution_number;
  auto& counts = counts_[e.job_id];
  --counts[index(e.status)];
  ++counts[index(exec_status::queued)];
  e.status = exec_status::queued;
  e.version = 1;
  e.queued_ms = e.updated_ms = now_ms();
  e.started_ms = 0;
  e.details.clear();
  e.force_canceled = false;
  store_execution(e, b);
  FC_LOG_INFO("jobs.retried", "job={} thing={} attempt={}", e.job_id, e.thing, e.retry_attempt);
  return true;
}

void jobs_service::job_event(const job& j, std::string_view operation, batch& b) {
  // events-jobs.md: `timestamp` in seconds, the job's times in milliseconds.
  if (!dir_.event_enabled || !dir_.event_enabled("JOB")) return;
  std::string status(operation);
  std::transform(status.begin(), status.end(), status.begin(), [](unsigned char c) { return std::toupper(c); });
  json::array targets;
  for (const auto& t : j.targets) targets.emplace_back(t);
  json::object o{{"eventType", "JOB"},
                 {"eventId", common::random_uuid()},
                 {"timestamp", device_time(now_ms())},
                 {"operation", operation},
                 {"jobId", j.id},
                 {"status", status},
                 {"targetSelection", j.continuous ? "CONTINUOUS" : "SNAPSHOT"},
                 {"targets", std::move(targets)},
                 {"description", j.description},
                 {"createdAt", j.created_ms},
                 {"lastUpdatedAt", j.updated_ms}};
  if (operation == "completed") {
    const auto& c = counts_[j.id];
    o["completedAt"] = j.completed_ms;
    o["jobProcessDetails"] = {{"numberOfCanceledThings", c[index(exec_status::canceled)]},
                              {"numberOfRejectedThings", c[index(exec_status::rejected)]},
                              {"numberOfFailedThings", c[index(exec_status::failed)]},
                              {"numberOfRemovedThings", c[index(exec_status::removed)]},
                              {"numberOfSucceededThings", c[index(exec_status::succeeded)]}};
  }
  if (!j.comment.empty()) o["comment"] = j.comment;
  b.broadcasts.emplace_back("$aws/events/job/" + j.id + "/" + std::string(operation), json::serialize(o));
}

void jobs_service::execution_event(const execution& e, std::string_view operation, batch& b) {
  if (!dir_.event_enabled || !dir_.event_enabled("JOB_EXECUTION")) return;
  json::object o{{"eventType", "JOB_EXECUTION"},
                 {"eventId", common::random_uuid()},
                 {"timestamp", device_time(now_ms())},
                 {"operation", operation},
                 {"jobId", e.job_id},
                 {"thingArn", thing_arn(e.thing)},
                 {"status", to_string(e.status)},
                 {"statusDetails", details_json(e.details)}};
  b.broadcasts.emplace_back("$aws/events/jobExecution/" + e.job_id + "/" + std::string(operation), json::serialize(o));
}

void jobs_service::store_execution(const execution& e, batch& b) {
  b.ops.push_back(storage::op::put_document{{std::string(k_execution_kind), execution_key(e.job_id, e.thing), e.serialize()}});
}

void jobs_service::store_job(job& j, batch& b) {
  j.updated_ms = now_ms();
  b.ops.push_back(storage::op::put_document{{std::string(k_job_kind), j.id, j.serialize()}});
}

void jobs_service::erase_execution(std::map<std::string, execution>::iterator it, batch& b) {
  const execution& e = it->second;
  touch(b, e.thing);
  disarm_timer(e);
  --counts_[e.job_id][index(e.status)];
  if (auto t = thing_jobs_.find(e.thing); t != thing_jobs_.end()) {
    t->second.erase(e.job_id);
    if (t->second.empty()) thing_jobs_.erase(t);
  }
  b.ops.push_back(storage::op::delete_document{std::string(k_execution_kind), it->first});
  execution_event(e, "deleted", b);
  executions_.erase(it);
}

void jobs_service::arm_timer(const execution& e) {
  if (auto d = e.deadline_ms(); d && e.status == exec_status::in_progress)
    deadlines_.emplace(d, execution_key(e.job_id, e.thing));
}

void jobs_service::disarm_timer(const execution& e) {
  if (auto d = e.deadline_ms()) deadlines_.erase({d, execution_key(e.job_id, e.thing)});
}

void jobs_service::maybe_complete(job& j, batch& b) {
  // A SNAPSHOT job is done when none of its executions is pending (a CONTINUOUS one never is).
  if (j.continuous || j.status != job_status::in_progress || j.rolling_out()) return;
  const auto& c = counts_[j.id];
  if (c[index(exec_status::queued)] || c[index(exec_status::in_progress)]) return;
  j.status = job_status::completed;
  j.completed_ms = now_ms();
  store_job(j, b);
  job_event(j, "completed", b);
  FC_LOG_INFO("jobs.completed", "job={}", j.id);
}

void jobs_service::tick() {
  boost::asio::post(io_, [this] {
    batch b;
    const std::int64_t now = now_ms();
    while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
      auto key = deadlines_.begin()->second;
      deadlines_.erase(deadlines_.begin());
      auto it = executions_.find(key);
      if (it == executions_.end() || it->second.status != exec_status::in_progress) continue;
      auto& e = it->second;
      timed_out_.inc();
      FC_LOG_INFO("jobs.timed_out", "job={} thing={}", e.job_id, e.thing);
      set_status(e, exec_status::timed_out, b);
    }
    for (auto& [id, j] : jobs_) {
      apply_schedule(j, b);
      if (j.status == job_status::in_progress && j.rolling_out()) rollout_step(j, b);
    }
    if (!b.ops.empty()) commit(b, nullptr);
  });
}

void jobs_service::create_execution(const job& j, const std::string& thing, batch& b) {
  touch(b, thing);
  execution e;
  e.job_id = j.id;
  e.thing = thing;
  e.queued_ms = e.updated_ms = now_ms();
  store_execution(e, b);
  thing_jobs_[thing].insert(j.id);
  ++counts_[j.id][index(exec_status::queued)];
  auto [it, inserted] = executions_.try_emplace(execution_key(j.id, thing), std::move(e));
  FC_CHECK(inserted);  // callers replace an old execution (join) or pass over a thing that has one
}

std::int64_t jobs_service::rollout_rate(const job& j) const {
  const auto& r = j.rollout;
  if (!r.base_per_minute) return r.maximum_per_minute;
  // exponentialRate: ×factor for each `step` things notified (or succeeded) so far, up to the maximum.
  const std::int64_t progress = r.notified_step ? j.rollout_done / r.notified_step
                                                : counts_.at(j.id)[index(exec_status::succeeded)] / r.succeeded_step;
  const double cap = static_cast<double>(r.maximum_per_minute ? r.maximum_per_minute : 1000);
  return static_cast<std::int64_t>(std::min(cap, static_cast<double>(r.base_per_minute) * std::pow(r.factor, static_cast<double>(progress))));
}

void jobs_service::rollout_step(job& j, batch& b) {
  if (j.status != job_status::in_progress || !j.rolling_out()) return;
  const std::int64_t now = now_ms();
  std::int64_t allowed = j.rollout_total - j.rollout_done;
  if (j.rollout.limited()) {
    if (now >= j.window_start_ms + k_minute_ms) {
      j.window_start_ms = now;
      j.window_created = 0;
    }
    allowed = std::min(allowed, std::max<std::int64_t>(0, rollout_rate(j) - j.window_created));
  }
  if (allowed == 0) return;
  const auto& list = targets_.at(j.id);
  std::int64_t created = 0;
  while (created < allowed && j.rollout_done < j.rollout_total) {
    const auto& thing = list[static_cast<std::size_t>(j.rollout_done++)];
    // A thing that got its execution already (a CONTINUOUS job's member that joined, or one added by
    // AssociateTargetsWithJob) or that was deleted since is passed over.
    if (executions_.contains(execution_key(j.id, thing)) || !dir_.thing_exists || !dir_.thing_exists(thing)) continue;
    create_execution(j, thing, b);
    ++created;
  }
  j.window_created += created;
  store_job(j, b);
  if (!j.rolling_out()) {
    targets_.erase(j.id);
    b.ops.push_back(storage::op::delete_document{std::string(k_targets_kind), j.id});
    FC_LOG_INFO("jobs.rolled_out", "job={} things={}", j.id, j.rollout_total);
    maybe_complete(j, b);  // the last things may all have been passed over
  }
}

void jobs_service::apply_schedule(job& j, batch& b) {
  const std::int64_t now = now_ms();
  auto& s = j.schedule;
  if (j.status == job_status::scheduled && now >= s.start_ms) {
    j.status = job_status::in_progress;
    store_job(j, b);
    maybe_complete(j, b);  // a job whose targets had no thing is done at once
    FC_LOG_INFO("jobs.started", "job={} scheduled_at={}", j.id, s.start_time);
  }
  if (!s.end_ms || s.ended || now < s.end_ms || (j.status != job_status::in_progress && j.status != job_status::scheduled))
    return;
  s.ended = true;
  FC_LOG_INFO("jobs.schedule_ended", "job={} end_behavior={}", j.id, s.end_behavior.empty() ? "STOP_ROLLOUT" : s.end_behavior);
  if (s.end_behavior == "CANCEL" || s.end_behavior == "FORCE_CANCEL") {
    cancel(j, s.end_behavior == "FORCE_CANCEL", "", "schedulingConfig endTime " + s.end_time, b);
    return;
  }
  // STOP_ROLLOUT: no more executions; those created run to their end.
  if (j.status == job_status::scheduled) j.status = job_status::in_progress;
  if (j.rolling_out()) {
    j.rollout_stopped = true;
    targets_.erase(j.id);
    b.ops.push_back(storage::op::delete_document{std::string(k_targets_kind), j.id});
  }
  store_job(j, b);
  maybe_complete(j, b);
}

bool jobs_service::reaches(const job& j, const std::string& thing, const std::vector<std::string>& groups) const {
  for (const auto& t : j.targets) {
    if (auto name = registry::aws_arn::name_of(t, "thing"); name && *name == thing) return true;
    if (auto g = registry::aws_arn::name_of(t, "thinggroup"); g && std::binary_search(groups.begin(), groups.end(), *g))
      return true;
  }
  return false;
}

void jobs_service::join(const job& j, const std::string& thing, batch& b) {
  auto it = executions_.find(execution_key(j.id, thing));
  if (it != executions_.end() && it->second.status != exec_status::removed) return;
  // Rejoining after a removal starts over: a new execution, its retries counted from zero.
  const std::int64_t number = it == executions_.end() ? 1 : it->second.execution_number + 1;
  if (it != executions_.end()) {  // the new execution's document replaces the REMOVED one's
    touch(b, thing);                // the pending list before, while the old execution is listed
    --counts_[j.id][index(exec_status::removed)];
    executions_.erase(it);
  }
  create_execution(j, thing, b);
  auto& e = executions_.at(execution_key(j.id, thing));
  e.execution_number = number;
  store_execution(e, b);
  FC_LOG_INFO("jobs.joined", "job={} thing={} execution={}", j.id, thing, number);
}

void jobs_service::thing_groups_changed(std::string thing) {
  boost::asio::post(io_, [this, thing = std::move(thing)] {
    batch b;
    auto groups = dir_.groups_of ? dir_.groups_of(thing) : std::vector<std::string>{};
    std::sort(groups.begin(), groups.end());
    for (auto& [id, j] : jobs_) {
      if (!j.continuous || j.status != job_status::in_progress) continue;
      const bool reached = reaches(j, thing, groups);
      auto it = executions_.find(execution_key(id, thing));
      if (reached) {
        join(j, thing, b);
      } else if (it != executions_.end() && !terminal(it->second.status)) {
        FC_LOG_INFO("jobs.removed", "job={} thing={} reason=left_target_group", id, thing);
        set_status(it->second, exec_status::removed, b);
      }
    }
    if (!b.ops.empty()) commit(b, nullptr);
  });
}

void jobs_service::thing_deleted(std::string thing) {
  boost::asio::post(io_, [this, thing = std::move(thing)] {
    batch b;
    for (const auto* p : pending_of(thing)) {
      auto& e = executions_.at(execution_key(p->job_id, thing));
      FC_LOG_INFO("jobs.removed", "job={} thing={} reason=thing_deleted", e.job_id, thing);
      set_status(e, exec_status::removed, b);
    }
    if (!b.ops.empty()) commit(b, nullptr);
  });
}

void jobs_service::drain() {
  std::promise<void> done;
  boost::asio::post(io_, [this, &done] { store_.submit({}, [&done](bool) { done.set_value(); }); });
  done.get_future().wait();
}

void jobs_service::register_metrics(common::registry& r) const {
  r.add(device_requests_, "fleetcore_jobs_device_requests_total", "", "Jobs requests of devices over MQTT.");
  r.add(device_rejected_, "fleetcore_jobs_device_rejected_total", "", "Device jobs requests answered on /rejected.");
  r.add(api_calls_, "fleetcore_jobs_api_calls_total", "", "Jobs control-plane operations.");
  r.add(timed_out_, "fleetcore_jobs_timed_out_total", "", "Job executions timed out by their timers.");
  r.add(throttled_, "fleetcore_jobs_device_throttled_total", "",
        "Device jobs requests refused with RequestThrottled: the session had max_inflight_per_session in flight.");
}

}  // namespace fleetcore::jobs
