#include "jobs/jobs_service.hpp"

#include "common/aws_names.hpp"
#include "common/aws_paging.hpp"
#include "common/json_members.hpp"
#include "common/log.hpp"
#include "registry/arn.hpp"
#include "registry/registry.hpp"

#include <boost/asio/post.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <cmath>

namespace fleetcore::jobs {

namespace json = boost::json;
using common::aws_response;

namespace {

constexpr std::size_t k_max_document = 32768;
constexpr std::size_t k_max_description = 2028;
constexpr std::int64_t k_max_timeout_min = 10080;  // 7 days, AWS's limit for both timers
constexpr std::int64_t k_minute_ms = 60'000;

aws_response invalid(std::string_view msg) { return aws_response::error(400, "InvalidRequestException", msg); }
aws_response not_found(std::string_view msg) { return aws_response::error(404, "ResourceNotFoundException", msg); }
aws_response bad_transition(std::string_view msg) {
  return aws_response::error(409, "InvalidStateTransitionException", msg);
}

std::size_t index(exec_status s) { return static_cast<std::size_t>(s); }
/// Device-side times are epoch seconds (the Python v2 SDK reads them with fromtimestamp); the control
/// plane's are seconds with a fraction.
std::int64_t device_time(std::int64_t ms) { return ms / 1000; }
double api_time(std::int64_t ms) { return static_cast<double>(ms) / 1000.0; }

std::string text(const json::object& in, std::string_view key) {
  return std::string(common::text_member(in, key).value_or(""));
}

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
    bool digits = !s.empty() && s.size() <= 18 && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (digits) {
      for (char c : s) n = n * 10 + (c - '0');
      return n;
    }
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

json::object details_json(const status_details& d) {
  json::object o;
  for (const auto& [k, v] : d) o[k] = v;
  return o;
}

/// The pending order: IN_PROGRESS before QUEUED, each oldest first (then by job id).
bool pending_before(const execution* a, const execution* b) {
  if (a->status != b->status) return a->status == exec_status::in_progress;
  if (a->queued_ms != b->queued_ms) return a->queued_ms < b->queued_ms;
  return a->job_id < b->job_id;
}

/// The summary of a pending execution in get replies and notify messages.
json::object device_summary(const execution& e) {
  json::object o{{"jobId", e.job_id}, {"queuedAt", device_time(e.queued_ms)}};
  if (e.started_ms) o["startedAt"] = device_time(e.started_ms);
  o["lastUpdatedAt"] = device_time(e.updated_ms);
  o["versionNumber"] = e.version;
  o["executionNumber"] = e.execution_number;
  return o;
}

json::object execution_state(const execution& e) {
  return {{"status", to_string(e.status)}, {"statusDetails", details_json(e.details)}, {"versionNumber", e.version}};
}

}  // namespace

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
  for (auto& d : store_.load_documents(std::string(k_targets_kind))) {
    auto it = jobs_.find(d.key);
    boost::system::error_code ec;
    auto v = json::parse(d.body, ec);
    if (it == jobs_.end() || ec || !v.is_array()) throw std::runtime_error("jobs: unreadable targets of '" + d.key + "'");
    if (!it->second.rolling_out()) continue;
    auto& list = targets_[d.key];
    for (const auto& t : v.get_array())
      if (t.is_string()) list.emplace_back(t.get_string());
  }
  FC_LOG_INFO("jobs.loaded", "jobs={} executions={} timers={} rollouts={}", jobs_.size(), executions_.size(),
              deadlines_.size(), targets_.size());
}

jobs_service::~jobs_service() { stop(); }

void jobs_service::start() {
  schedule_tick();
  thread_ = std::thread([this] {
    common::metrics_slot = 6;
    io_.run();
  });
}

void jobs_service::stop() {
  if (!thread_.joinable()) return;
  boost::asio::post(io_, [this] { tick_.cancel(); });
  work_.reset();
  thread_.join();
}

void jobs_service::schedule_tick() {
  tick_.expires_after(std::chrono::milliseconds(settings_.timer_tick_ms));
  tick_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    tick();
    schedule_tick();
  });
}

// --- the device side ---------------------------------------------------------------------------

namespace {
/// A request topic's rest after `$aws/things/<thing>/jobs/`: get, start-next, <jobId>/get, <jobId>/update.
bool is_request(std::string_view rest) {
  if (rest == "get" || rest == "start-next") return true;
  auto slash = rest.find('/');
  if (slash == std::string_view::npos || slash == 0) return false;
  auto op = rest.substr(slash + 1);
  return op == "get" || op == "update";
}
}  // namespace

broker::topic_claim jobs_service::claim(std::string_view topic) const {
  auto t = common::parse_thing_topic(topic);
  if (!t || t->service != "jobs") return broker::topic_claim::none;
  if (topic.ends_with("/accepted") || topic.ends_with("/rejected")) return broker::topic_claim::reserved;
  // Requests are the service's alone (AWS: publish-only topics): no subscriber sees a device's
  // statusDetails, and SUBSCRIBE to them is refused.
  return is_request(t->rest) ? broker::topic_claim::consumed : broker::topic_claim::none;
}

bool jobs_service::on_message(const broker::message_ptr& m, const broker::publish_context& ctx) {
  auto t = common::parse_thing_topic(m->topic);
  if (!t || t->service != "jobs") return false;
  if (t->rest == "notify" || t->rest == "notify-next" || t->rest.ends_with("/accepted") || t->rest.ends_with("/rejected"))
    return false;  // the service's own messages
  const bool request = is_request(t->rest);
  // The reply goes to the session that asked: a request without one (HTTP publish, a rule's
  // republish) has nobody to answer.
  if (m->origin == 0 || ctx.client_id.empty()) {
    FC_LOG_DEBUG("jobs.request_without_session", "topic={:q}", common::untrusted(m->topic));
    return request;
  }
  device_request r{m->topic, std::string(t->thing), std::string(t->rest), m->payload, std::string(ctx.client_id), m->origin};
  boost::asio::post(io_, [this, r = std::move(r)] { handle_device(r); });
  return request;
}

/// A device request's outcome, whichever way it came (MQTT or the iot-jobs-data HTTPS API).
struct jobs_service::device_answer {
  std::string code;  // empty: accepted; else the MQTT rejection code (InvalidRequest, ResourceNotFound...)
  std::string message;
  std::optional<execution> state;  // the executionState of a VersionMismatch / InvalidStateTransition
  json::object body;               // accepted: the response members
};

jobs_service::device_answer jobs_service::device_call(device_op op, const std::string& thing, const std::string& job_id,
                                                      const json::object& in, bool mqtt, batch& b) {
  const std::int64_t now = now_ms();
  device_answer a;
  auto reject = [&](std::string_view code, std::string message) {
    a.code = code;
    a.message = std::move(message);
    return std::move(a);
  };
  // Over MQTT the job document is a JSON object; over HTTP a string (JobDocument).
  auto document_of = [&](const execution& e) -> json::value {
    const job& j = jobs_.at(e.job_id);
    return mqtt ? j.document_json : json::value(j.document);
  };
  auto device_execution = [&](const execution& e, bool with_document) {
    json::object o{{"jobId", e.job_id}, {"thingName", e.thing}};
    if (with_document) o["jobDocument"] = document_of(e);
    o["status"] = to_string(e.status);
    if (!e.details.empty()) o["statusDetails"] = details_json(e.details);
    o["queuedAt"] = device_time(e.queued_ms);
    if (e.started_ms) o["startedAt"] = device_time(e.started_ms);
    o["lastUpdatedAt"] = device_time(e.updated_ms);
    o["versionNumber"] = e.version;
    o["executionNumber"] = e.execution_number;
    if (auto d = e.deadline_ms()) o["approximateSecondsBeforeTimedOut"] = std::max<std::int64_t>(0, (d - now) / 1000);
    return o;
  };
  std::string err;
  std::optional<std::int64_t> step;
  auto read_step = [&] {
    step = lenient_int(in, "stepTimeoutInMinutes", err);
    if (err.empty() && step && (*step < 1 || *step > k_max_timeout_min)) err = "stepTimeoutInMinutes must be between 1 and 10080";
    return err.empty();
  };
  status_details details;
  bool has_details = false;
  auto read_status_details = [&] {
    const auto* d = in.if_contains("statusDetails");
    if (!d) return true;
    has_details = true;
    if (auto e = read_details(*d, details, 1000)) {
      err = *e;
      return false;
    }
    return true;
  };
  const auto pending = pending_of(thing);

  switch (op) {
    case device_op::get_pending: {
      json::array in_progress, queued;
      std::size_t listed = 0;
      for (const auto* e : pending) {
        if (listed++ == settings_.max_listed) break;
        (e->status == exec_status::in_progress ? in_progress : queued).push_back(device_summary(*e));
      }
      a.body = {{"inProgressJobs", std::move(in_progress)}, {"queuedJobs", std::move(queued)}};
      return a;
    }
    case device_op::start_next: {
      if (!read_step() || !read_status_details()) return reject("InvalidRequest", err);
      if (pending.empty()) return a;  // nothing pending: no execution member at all
      auto& e = executions_.at(execution_key(pending.front()->job_id, thing));
      if (e.status == exec_status::queued) {
        if (has_details) e.details = std::move(details);
        set_status(e, exec_status::in_progress, b, step);
      }
      a.body = {{"execution", device_execution(e, true)}};
      return a;
    }
    case device_op::describe: {
      auto number = lenient_int(in, "executionNumber", err);
      if (!err.empty()) return reject("InvalidRequest", err);
      bool with_document = common::bool_member(in, "includeJobDocument").value_or(true);
      const execution* e = nullptr;
      if (job_id == "$next") {
        if (pending.empty()) return a;
        e = pending.front();
      } else if (auto it = executions_.find(execution_key(job_id, thing)); it != executions_.end()) {
        e = &it->second;
      }
      if (!e || (number && *number != e->execution_number))
        return reject("ResourceNotFound", "No job execution of job " + job_id + " for thing " + thing);
      a.body = {{"execution", device_execution(*e, with_document)}};
      return a;
    }
    case device_op::update: {
      if (!valid_job_id(job_id)) return reject("InvalidRequest", "jobId must match [a-zA-Z0-9_-]{1,64}");
      auto status = parse_exec_status(text(in, "status"));
      if (!status || (*status != exec_status::in_progress && *status != exec_status::succeeded &&
                      *status != exec_status::failed && *status != exec_status::rejected))
        return reject("InvalidRequest", "status must be one of IN_PROGRESS, SUCCEEDED, FAILED, REJECTED");
      auto expected = lenient_int(in, "expectedVersion", err);
      auto number = err.empty() ? lenient_int(in, "executionNumber", err) : std::nullopt;
      if (!err.empty() || !read_step() || !read_status_details()) return reject("InvalidRequest", err);
      auto it = executions_.find(execution_key(job_id, thing));
      if (it == executions_.end() || (number && *number != it->second.execution_number))
        return reject("ResourceNotFound", "No job execution of job " + job_id + " for thing " + thing);
      auto& e = it->second;
      if (expected && *expected != e.version) {
        a.state = e;
        return reject("VersionMismatch",
                      "expectedVersion " + std::to_string(*expected) + " is not the current version " + std::to_string(e.version));
      }
      if (terminal(e.status)) {
        a.state = e;
        return reject("InvalidStateTransition", "the job execution is already " + std::string(to_string(e.status)));
      }
      if (has_details) e.details = std::move(details);
      set_status(e, *status, b, step);
      if (common::bool_member(in, "includeJobExecutionState").value_or(false)) a.body["executionState"] = execution_state(e);
      if (common::bool_member(in, "includeJobDocument").value_or(false)) a.body["jobDocument"] = document_of(e);
      return a;
    }
  }
  return a;
}

void jobs_service::handle_device(const device_request& r) {
  device_requests_.inc();
  batch b;
  b.client_id = r.client_id;
  b.session = r.session;
  const std::int64_t now = now_ms();
  json::object in;
  std::string client_token;
  device_answer a;
  [&] {
    // The request: a JSON object (an empty payload reads as {}).
    if (!r.payload.empty()) {
      boost::system::error_code ec;
      auto v = json::parse(r.payload, ec);
      if (ec || !v.is_object()) {
        a.code = "InvalidJson";
        a.message = "the payload must be a JSON object";
        return;
      }
      in = std::move(v.get_object());
    }
    if (const auto* ct = in.if_contains("clientToken")) {
      if (!ct->is_string() || ct->get_string().size() > 64) {
        a.code = "InvalidRequest";
        a.message = "clientToken must be a string of at most 64 bytes";
        return;
      }
      client_token = ct->get_string();
    }
    auto slash = r.rest.find('/');
    std::string job_id = r.rest.substr(0, slash);
    std::string op = slash == std::string::npos ? std::string() : r.rest.substr(slash + 1);
    if (r.rest == "get") a = device_call(device_op::get_pending, r.thing, {}, in, true, b);
    else if (r.rest == "start-next") a = device_call(device_op::start_next, r.thing, {}, in, true, b);
    else if (op == "get") a = device_call(device_op::describe, r.thing, job_id, in, true, b);
    else if (op == "update") a = device_call(device_op::update, r.thing, job_id, in, true, b);
    else {
      a.code = "InvalidTopic";
      a.message = "no jobs operation is published on this topic";
    }
  }();
  if (a.code.empty()) {
    a.body["timestamp"] = device_time(now);
    if (!client_token.empty()) a.body["clientToken"] = client_token;
    b.replies.emplace_back(r.topic + "/accepted", json::serialize(a.body));
  } else {
    device_rejected_.inc();
    json::object o{{"code", a.code}, {"message", a.message}, {"timestamp", device_time(now)}};
    if (!client_token.empty()) o["clientToken"] = client_token;
    if (a.state) o["executionState"] = execution_state(*a.state);
    b.replies.emplace_back(r.topic + "/rejected", json::serialize(o));
    FC_LOG_DEBUG("jobs.device_rejected", "thing={} topic={:q} code={} message={:q}", r.thing, common::untrusted(r.topic),
                 a.code, common::untrusted(a.message));
  }
  commit(b, nullptr);
}

aws_response jobs_service::data_plane(device_op op, const json::object& in, batch& b) {
  // iot-jobs-data over HTTPS: the same requests, AWS's HTTP errors (a version mismatch is an
  // InvalidStateTransitionException there: the API has no VersionConflict).
  auto a = device_call(op, text(in, "thingName"), text(in, "jobId"), in, false, b);
  if (a.code.empty()) return aws_response::ok(json::serialize(a.body));
  device_rejected_.inc();
  if (a.code == "ResourceNotFound") return not_found(a.message);
  if (a.code == "VersionMismatch" || a.code == "InvalidStateTransition") return bad_transition(a.message);
  return invalid(a.message);
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

void jobs_service::touch(batch& b, const std::string& thing) {
  if (b.before.contains(thing)) return;
  std::vector<std::string> ids;
  for (const auto* e : pending_of(thing)) ids.push_back(e->job_id);
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
    for (const auto* e : after) ids.push_back(e->job_id);
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
      if (!after.empty()) {
        const auto& e = *after.front();
        json::object x{{"jobId", e.job_id},
                       {"thingName", e.thing},
                       {"jobDocument", jobs_.at(e.job_id).document_json},
                       {"status", to_string(e.status)}};
        if (!e.details.empty()) x["statusDetails"] = details_json(e.details);
        x["queuedAt"] = device_time(e.queued_ms);
        if (e.started_ms) x["startedAt"] = device_time(e.started_ms);
        x["lastUpdatedAt"] = device_time(e.updated_ms);
        x["versionNumber"] = e.version;
        x["executionNumber"] = e.execution_number;
        o["execution"] = std::move(x);
      }
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

void jobs_service::set_status(execution& e, exec_status to, batch& b, std::optional<std::int64_t> step_min) {
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
                 {"eventId", registry::random_id()},
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
                 {"eventId", registry::random_id()},
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
      auto& e = executions_.at(key);
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
  executions_.insert_or_assign(execution_key(j.id, thing), std::move(e));
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
  for (std::int64_t i = 0; i < allowed; ++i) create_execution(j, list[static_cast<std::size_t>(j.rollout_done + i)], b);
  j.rollout_done += allowed;
  j.window_created += allowed;
  if (!j.rolling_out()) {
    targets_.erase(j.id);
    b.ops.push_back(storage::op::delete_document{std::string(k_targets_kind), j.id});
    FC_LOG_INFO("jobs.rolled_out", "job={} things={}", j.id, j.rollout_total);
  }
  store_job(j, b);
}

void jobs_service::apply_schedule(job& j, batch& b) {
  const std::int64_t now = now_ms();
  auto& s = j.schedule;
  if (j.status == job_status::scheduled && now >= s.start_ms) {
    j.status = job_status::in_progress;
    store_job(j, b);
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
  if (it != executions_.end()) --counts_[j.id][index(exec_status::removed)];
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

namespace {
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
  return std::nullopt;
}

/// Members of CreateJob / UpdateJob this version does not implement yet: refused, not ignored.
std::optional<aws_response> refuse_unimplemented(const json::object& in) {
  for (std::string_view key : {"documentSource", "presignedUrlConfig", "destinationPackageVersions"})
    if (in.contains(key)) return invalid(std::string(key) + " is not supported by fleetcore yet");
  if (auto ns = common::text_member(in, "namespaceId"); ns && !ns->empty())
    return invalid("namespaceId is not supported by fleetcore yet");
  return std::nullopt;
}
}  // namespace

aws_response jobs_service::create_job(const json::object& in, batch& b) {
  const std::string id = text(in, "jobId");
  if (!valid_job_id(id)) return invalid("jobId must match [a-zA-Z0-9_-]{1,64}");
  if (auto e = refuse_unimplemented(in)) return *e;
  if (jobs_.contains(id))
    return {409,
            json::serialize(json::object{{"__type", "ResourceAlreadyExistsException"},
                                         {"message", "Job " + id + " already exists"},
                                         {"resourceId", id},
                                         {"resourceArn", job_arn(id)}}),
            "ResourceAlreadyExistsException"};
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
  if (j.document.empty()) return invalid("document is required (or a jobTemplateArn that has one)");
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

  // The targets, resolved now (SNAPSHOT): things, and the things of groups and their descendants.
  const auto* targets = in.if_contains("targets");
  if (!targets || !targets->is_array() || targets->get_array().empty()) return invalid("targets must list at least one ARN");
  std::set<std::string> things;
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
    j.targets.emplace_back(arn);
  }

  j.created_ms = now;
  j.rollout_total = static_cast<std::int64_t>(things.size());
  counts_[id] = {};
  auto& stored = jobs_.emplace(id, std::move(j)).first->second;
  if (stored.rollout.limited() || stored.status == job_status::scheduled) {
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
  json::object out{{"jobArn", job_arn(id)}, {"jobId", id}};
  if (!stored.description.empty()) out["description"] = stored.description;
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
  if (j.in_progress_timeout_min) o["timeoutConfig"] = {{"inProgressTimeoutInMinutes", j.in_progress_timeout_min}};
  if (!j.retry.empty()) o["jobExecutionsRetryConfig"] = retry_json(j.retry);
  if (!j.abort.empty()) o["abortConfig"] = abort_json(j.abort);
  if (j.rollout.limited()) o["jobExecutionsRolloutConfig"] = rollout_json(j.rollout);
  if (!j.template_arn.empty()) o["jobTemplateArn"] = j.template_arn;
  if (!j.document_parameters.empty()) o["documentParameters"] = parameters_json(j.document_parameters);
  if (!j.schedule.start_time.empty() || !j.schedule.end_time.empty()) o["schedulingConfig"] = scheduling_json(j.schedule);
  if (j.rolling_out()) {
    json::array processing;
    for (const auto& t : j.targets) processing.emplace_back(t);
    o["jobProcessDetails"].as_object()["processingTargets"] = std::move(processing);
  }
  return aws_response::ok(json::serialize(json::object{{"job", std::move(o)}}));
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
  if (auto d = common::text_member(in, "description")) {
    if (d->size() > k_max_description) return invalid("description is longer than 2028 characters");
    j.description = *d;
  }
  // A new timeout applies to the executions that go IN_PROGRESS from now on.
  job changed = j;
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
  json::object out{{"jobArn", job_arn(id)}, {"jobId", id}};
  if (!j.description.empty()) out["description"] = j.description;
  return aws_response::ok(json::serialize(out));
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
  if (targets_.erase(id)) b.ops.push_back(storage::op::delete_document{std::string(k_targets_kind), id});
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
  const auto* targets = in.if_contains("targets");
  if (!targets || !targets->is_array() || targets->get_array().empty()) return invalid("targets must list at least one ARN");
  auto comment = text(in, "comment");
  if (comment.size() > k_max_description) return invalid("comment is longer than 2028 characters");
  std::set<std::string> things;
  std::vector<std::string> added;
  for (const auto& t : targets->get_array()) {
    if (!t.is_string()) return invalid("targets must be ARNs");
    std::string arn(t.get_string());
    if (auto thing = registry::aws_arn::name_of(arn, "thing")) {
      if (!dir_.thing_exists || !dir_.thing_exists(*thing)) return not_found("Thing " + *thing + " does not exist");
      things.insert(*thing);
    } else if (auto group = registry::aws_arn::name_of(arn, "thinggroup")) {
      auto members = dir_.group_things ? dir_.group_things(*group) : std::nullopt;
      if (!members) return not_found("Thing group " + *group + " does not exist");
      things.insert(members->begin(), members->end());
    } else {
      return invalid("target " + arn + " is neither a thing nor a thing group ARN");
    }
    if (std::find(j.targets.begin(), j.targets.end(), arn) == j.targets.end()) added.push_back(std::move(arn));
  }
  if (j.targets.size() + added.size() > 100) return aws_response::error(410, "LimitExceededException", "a job has at most 100 targets");
  j.targets.insert(j.targets.end(), added.begin(), added.end());
  if (!comment.empty()) j.comment = comment;
  for (const auto& thing : things) join(j, thing, b);
  store_job(j, b);
  json::object out{{"jobArn", job_arn(id)}, {"jobId", id}};
  if (!j.description.empty()) out["description"] = j.description;
  return aws_response::ok(json::serialize(out));
}

std::optional<aws_response> jobs_service::apply_template(const json::object& in, job& j) {
  const auto* params = in.if_contains("documentParameters");
  auto arn_text = common::text_member(in, "jobTemplateArn");
  if (!arn_text) {
    if (params) return invalid("documentParameters is only valid with a managed template's jobTemplateArn");
    return std::nullopt;
  }
  auto arn = registry::aws_arn::parse(*arn_text);
  if (!arn || arn->type != "jobtemplate") return invalid("jobTemplateArn is not a job template ARN");
  j.template_arn = *arn_text;
  if (arn->account.empty()) {  // AWS's managed templates: arn:aws:iot:<region>::jobtemplate/<name>:<version>
    auto colon = arn->name.find(':');
    const auto* t = find_managed(arn->name.substr(0, colon));
    if (!t || (colon != std::string::npos && arn->name.substr(colon + 1) != "1.0"))
      return not_found("Managed job template " + arn->name + " does not exist");
    if (params && !params->is_object()) return invalid("documentParameters must be an object of strings");
    if (params)
      for (const auto& [k, v] : params->get_object()) {
        if (!v.is_string() || v.get_string().empty() || v.get_string().size() > 512)
          return invalid("documentParameters values must be strings of 1 to 512 characters");
        j.document_parameters[std::string(k)] = std::string(v.get_string());
      }
    if (auto e = substitute(*t, j.document_parameters, j.document)) return invalid(*e);
    j.description = std::string(t->description);
    return std::nullopt;
  }
  if (params) return invalid("documentParameters is only valid with a managed template's jobTemplateArn");
  auto it = templates_.find(arn->name);
  if (it == templates_.end()) return not_found("Job template " + arn->name + " does not exist");
  const job_template& t = it->second;
  j.document = t.document;
  j.description = t.description;
  j.in_progress_timeout_min = t.in_progress_timeout_min;
  j.retry = t.retry;
  j.abort = t.abort;
  j.rollout = t.rollout;
  return std::nullopt;
}

aws_response jobs_service::create_template(const json::object& in, batch& b) {
  auto id = text(in, "jobTemplateId");
  if (!valid_template_id(id)) return invalid("jobTemplateId must match [a-zA-Z0-9_-]{1,64}");
  if (auto e = refuse_unimplemented(in)) return *e;
  for (std::string_view key : {"maintenanceWindows", "destinationPackageVersions"})
    if (in.contains(key)) return invalid(std::string(key) + " is not supported by fleetcore yet");
  if (templates_.contains(id)) return aws_response::error(409, "ConflictException", "Job template " + id + " already exists");
  job_template t;
  t.id = id;
  t.description = text(in, "description");
  if (t.description.empty() || t.description.size() > k_max_description)
    return invalid("description is required (at most 2028 characters)");
  // From a job (its document and configurations), or from a document; the request's members override.
  job j;
  if (auto job_arn = common::text_member(in, "jobArn")) {
    auto job_id = registry::aws_arn::name_of(*job_arn, "job");
    auto it = job_id ? jobs_.find(*job_id) : jobs_.end();
    if (it == jobs_.end()) return not_found("Job " + std::string(*job_arn) + " does not exist");
    j = it->second;
  }
  if (auto d = common::text_member(in, "document")) j.document = *d;
  if (j.document.empty()) return invalid("document or jobArn is required");
  boost::system::error_code ec;
  auto doc = json::parse(j.document, ec);
  if (ec || !doc.is_object() || j.document.size() > k_max_document) return invalid("document must be a JSON object of at most 32768 bytes");
  if (auto e = read_timeout(in, j.in_progress_timeout_min)) return *e;
  if (auto e = read_configs(in, j)) return *e;
  t.document = j.document;
  t.in_progress_timeout_min = j.in_progress_timeout_min;
  t.retry = j.retry;
  t.abort = j.abort;
  t.rollout = j.rollout;
  t.created_ms = now_ms();
  b.ops.push_back(storage::op::put_document{{std::string(k_template_kind), id, t.serialize()}});
  templates_.emplace(id, std::move(t));
  return aws_response::ok(json::serialize(json::object{{"jobTemplateArn", arn_prefix_ + "jobtemplate/" + id}, {"jobTemplateId", id}}));
}

aws_response jobs_service::describe_template(const json::object& in) {
  auto id = text(in, "jobTemplateId");
  auto it = templates_.find(id);
  if (it == templates_.end()) return not_found("Job template " + id + " does not exist");
  const auto& t = it->second;
  json::object o{{"jobTemplateArn", arn_prefix_ + "jobtemplate/" + id},
                 {"jobTemplateId", id},
                 {"description", t.description},
                 {"document", t.document},
                 {"createdAt", api_time(t.created_ms)}};
  if (t.in_progress_timeout_min) o["timeoutConfig"] = {{"inProgressTimeoutInMinutes", t.in_progress_timeout_min}};
  if (!t.retry.empty()) o["jobExecutionsRetryConfig"] = retry_json(t.retry);
  if (!t.abort.empty()) o["abortConfig"] = abort_json(t.abort);
  if (t.rollout.limited()) o["jobExecutionsRolloutConfig"] = rollout_json(t.rollout);
  return aws_response::ok(json::serialize(o));
}

aws_response jobs_service::list_templates(const json::object& in) {
  std::int64_t max = 0;
  if (auto e = common::page_size(in, "maxResults", 250, 50, max)) return aws_response::from(*e);
  std::vector<std::string> ids;
  for (const auto& [id, t] : templates_) ids.push_back(id);
  std::optional<std::string> token, next;
  if (auto t = common::text_member(in, "nextToken")) token = std::string(*t);
  json::array out;
  for (const auto& id : common::page_after(ids, token, max, next)) {
    const auto& t = templates_.at(id);
    out.push_back(json::object{{"jobTemplateArn", arn_prefix_ + "jobtemplate/" + id},
                               {"jobTemplateId", id},
                               {"description", t.description},
                               {"createdAt", api_time(t.created_ms)}});
  }
  json::object body{{"jobTemplates", std::move(out)}};
  if (next) body["nextToken"] = *next;
  return aws_response::ok(json::serialize(body));
}

aws_response jobs_service::delete_template(const json::object& in, batch& b) {
  auto id = text(in, "jobTemplateId");
  if (!templates_.erase(id)) return not_found("Job template " + id + " does not exist");
  b.ops.push_back(storage::op::delete_document{std::string(k_template_kind), id});
  return aws_response::ok("{}");
}

namespace {
std::string managed_arn(const std::string& arn_prefix, const managed_template& t) {
  // arn:aws:iot:<region>::jobtemplate/<name>:<version> (no account: AWS owns it).
  auto region_end = arn_prefix.rfind(':', arn_prefix.size() - 2);
  return arn_prefix.substr(0, region_end) + "::jobtemplate/" + std::string(t.name) + ":1.0";
}
}  // namespace

aws_response jobs_service::describe_managed(const json::object& in) {
  auto name = text(in, "templateName");
  const auto* t = find_managed(name);
  auto version = common::text_member(in, "templateVersion");
  if (!t || (version && *version != "1.0")) return not_found("Managed job template " + name + " does not exist");
  json::array environments{"LINUX"};
  json::array parameters;
  for (const auto& p : t->parameters)
    parameters.push_back(json::object{{"key", p.key},
                                      {"description", p.description},
                                      {"regex", p.regex},
                                      {"example", p.example},
                                      {"optional", p.optional}});
  return aws_response::ok(json::serialize(json::object{{"templateName", t->name},
                                                       {"templateArn", managed_arn(arn_prefix_, *t)},
                                                       {"description", t->description},
                                                       {"templateVersion", "1.0"},
                                                       {"environments", std::move(environments)},
                                                       {"documentParameters", std::move(parameters)},
                                                       {"document", t->document()}}));
}

aws_response jobs_service::list_managed(const json::object& in) {
  std::int64_t max = 0;
  if (auto e = common::page_size(in, "maxResults", 250, 50, max)) return aws_response::from(*e);
  auto only = common::text_member(in, "templateName");
  std::vector<std::string> names;
  for (const auto& t : managed_templates())
    if (!only || t.name == *only) names.emplace_back(t.name);
  std::sort(names.begin(), names.end());
  std::optional<std::string> token, next;
  if (auto t = common::text_member(in, "nextToken")) token = std::string(*t);
  json::array out;
  for (const auto& name : common::page_after(names, token, max, next)) {
    const auto& t = *find_managed(name);
    out.push_back(json::object{{"templateArn", managed_arn(arn_prefix_, t)},
                               {"templateName", t.name},
                               {"description", t.description},
                               {"environments", json::array{"LINUX"}},
                               {"templateVersion", "1.0"}});
  }
  json::object body{{"managedJobTemplates", std::move(out)}};
  if (next) body["nextToken"] = *next;
  return aws_response::ok(json::serialize(body));
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

void jobs_service::register_metrics(common::registry& r) const {
  r.add(device_requests_, "fleetcore_jobs_device_requests_total", "", "Jobs requests of devices over MQTT.");
  r.add(device_rejected_, "fleetcore_jobs_device_rejected_total", "", "Device jobs requests answered on /rejected.");
  r.add(api_calls_, "fleetcore_jobs_api_calls_total", "", "Jobs control-plane operations.");
  r.add(timed_out_, "fleetcore_jobs_timed_out_total", "", "Job executions timed out by their timers.");
}

}  // namespace fleetcore::jobs
