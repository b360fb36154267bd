// The jobs service's device side: requests on $aws/things/<thing>/jobs/... over MQTT, and the
// iot-jobs-data API over HTTPS, answered by one core.
#include "jobs/internal.hpp"

#include "common/aws_names.hpp"
#include "common/log.hpp"

#include <boost/asio/post.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>

namespace fleetcore::jobs {

namespace json = boost::json;
using common::aws_response;
using namespace detail;

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
  // Admitted here, on the publisher's worker: a flood is answered at once and queues nothing.
  if (!inflight_.admit(m->origin)) {
    throttled_.inc();
    device_rejected_.inc();
    if (reply)
      reply(std::string(ctx.client_id), m->origin, m->topic + "/rejected",
            json::serialize(json::object{{"code", "RequestThrottled"},
                                         {"message", "too many jobs requests in flight on this connection"},
                                         {"timestamp", device_time(now_ms())}}));
    return request;
  }
  device_request r{m->topic, std::string(t->thing), std::string(t->rest), m->payload, std::string(ctx.client_id), m->origin};
  boost::asio::post(io_, [this, r = std::move(r)] { handle_device(r); });
  return request;
}


json::value jobs_service::device_document(const job& j, bool mqtt) const {
  // Over MQTT the job document is a JSON object; over HTTP a string (JobDocument).
  constexpr std::string_view placeholder = "${aws:iot:s3-presigned-url:";
  if (!objects.presign || j.document.find(placeholder) == std::string::npos)
    return mqtt ? j.document_json : json::value(j.document);
  // `${aws:iot:s3-presigned-url:<S3 URL>}` becomes a URL of the object, valid for presignedUrlConfig's
  // time. URLs are made of characters a JSON string holds as they are.
  std::string text;
  std::size_t from = 0;
  while (true) {
    auto at = j.document.find(placeholder, from);
    auto end = at == std::string::npos ? at : j.document.find('}', at);
    if (end == std::string::npos) break;
    text.append(j.document, from, at - from);
    const std::string_view url = std::string_view(j.document).substr(at + placeholder.size(), end - at - placeholder.size());
    if (auto signed_url = objects.presign(url, j.presigned_expires_s ? j.presigned_expires_s : 3600))
      text += *signed_url;
    else
      text.append(j.document, at, end + 1 - at);  // not an object URL: left as written
    from = end + 1;
  }
  text.append(j.document, from);
  if (!mqtt) return json::value(text);
  boost::system::error_code ec;
  auto v = json::parse(text, ec);
  return ec ? j.document_json : v;
}

json::object jobs_service::device_execution(const execution& e, json::value document) const {
  json::object o{{"jobId", e.job_id}, {"thingName", e.thing}};
  if (!document.is_null()) o["jobDocument"] = std::move(document);
  o["status"] = to_string(e.status);
  if (!e.details.empty()) o["statusDetails"] = details_json(e.details);
  o["queuedAt"] = device_time(e.queued_ms);
  if (e.started_ms) o["startedAt"] = device_time(e.started_ms);
  o["lastUpdatedAt"] = device_time(e.updated_ms);
  o["versionNumber"] = e.version;
  o["executionNumber"] = e.execution_number;
  if (auto d = e.deadline_ms()) o["approximateSecondsBeforeTimedOut"] = std::max<std::int64_t>(0, (d - now_ms()) / 1000);
  return o;
}

jobs_service::device_answer jobs_service::device_call(device_op op, const std::string& thing, const std::string& job_id,
                                                      const json::object& in, bool mqtt, batch& b) {
  device_answer a;
  auto reject = [&](std::string_view code, std::string message) {
    a.code = code;
    a.message = std::move(message);
    return std::move(a);
  };
  auto document_of = [&](const execution& e) { return device_document(jobs_.at(e.job_id), mqtt); };
  auto device_execution = [&](const execution& e, bool with_document) {
    return this->device_execution(e, with_document ? device_document(jobs_.at(e.job_id), mqtt) : json::value());
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
    if (auto e = read_details(*d, details, k_max_details)) {
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
      execution reached;
      set_status(e, *status, b, step, &reached);
      // The state this update reached (FAILED, even when a retry queued a new execution since).
      if (common::bool_member(in, "includeJobExecutionState").value_or(false)) a.body["executionState"] = execution_state(reached);
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
  commit(b, [this, client = r.client_id, session = r.session](bool) { inflight_.release(client, session); });
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

}  // namespace fleetcore::jobs
