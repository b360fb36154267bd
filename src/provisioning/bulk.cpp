#include "provisioning/bulk.hpp"

#include "common/aws_paging.hpp"
#include "common/json_members.hpp"
#include "common/log.hpp"
#include "common/uuid.hpp"
#include "provisioning/provisioner.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <fmt/format.h>

#include <algorithm>

namespace fleetcore::provisioning {

namespace json = boost::json;
using common::aws_response;

namespace {
constexpr std::string_view k_task_kind = "thing_registration_task";
constexpr std::string_view k_report_kind = "thing_registration_report";
constexpr std::string_view k_statuses[] = {"InProgress", "Completed", "Failed", "Cancelled", "Cancelling"};

std::string report_key(const std::string& task_id, std::string_view type) {
  return "ThingRegistrationTask/" + task_id + "/" + std::string(type);
}
}  // namespace

std::string bulk_registration::task::to_json() const {
  return json::serialize(json::object{{"taskId", id},
                                      {"templateBody", template_body},
                                      {"inputFileBucket", bucket},
                                      {"inputFileKey", key},
                                      {"roleArn", role_arn},
                                      {"status", status},
                                      {"message", message},
                                      {"createdMs", created_ms},
                                      {"modifiedMs", modified_ms},
                                      {"successCount", success},
                                      {"failureCount", failure},
                                      {"nextLine", next_line},
                                      {"totalLines", total_lines},
                                      {"steps", steps}});
}

std::optional<bulk_registration::task> bulk_registration::task::from_json(std::string_view body) {
  boost::system::error_code ec;
  auto v = json::parse(body, ec);
  if (ec || !v.is_object()) return std::nullopt;
  const auto& o = v.get_object();
  task t;
  auto text = [&](std::string_view k) { return std::string(common::text_member(o, k).value_or("")); };
  auto num = [&](std::string_view k) { return common::int_member(o, k).value_or(0); };
  t.id = text("taskId");
  t.template_body = text("templateBody");
  t.bucket = text("inputFileBucket");
  t.key = text("inputFileKey");
  t.role_arn = text("roleArn");
  t.status = text("status");
  t.message = text("message");
  t.created_ms = num("createdMs");
  t.modified_ms = num("modifiedMs");
  t.success = num("successCount");
  t.failure = num("failureCount");
  t.next_line = static_cast<std::size_t>(num("nextLine"));
  t.total_lines = static_cast<std::size_t>(num("totalLines"));
  t.steps = static_cast<std::size_t>(num("steps"));
  if (t.id.empty()) return std::nullopt;
  return t;
}

bulk_registration::bulk_registration(registry::registry& reg, storage::store& store, common::clock& clock,
                                     objects::links links, bulk_settings s)
    : registry_(reg), store_(store), clock_(clock), links_(std::move(links)), settings_(s) {
  for (const auto& d : store_.load_documents(std::string(k_task_kind))) {
    auto t = task::from_json(d.body);
    if (!t) throw std::runtime_error("unreadable thing registration task " + d.key);
    tasks_[t->id] = std::move(*t);
  }
}

std::vector<std::string_view> bulk_registration::operations() {
  return {"StartThingRegistrationTask", "DescribeThingRegistrationTask", "ListThingRegistrationTasks",
          "StopThingRegistrationTask", "ListThingRegistrationTaskReports"};
}

aws_response bulk_registration::call(std::string_view op, const json::object& in) {
  if (op == "StartThingRegistrationTask") return start(in);
  if (op == "DescribeThingRegistrationTask") return describe(in);
  if (op == "ListThingRegistrationTasks") return list(in);
  if (op == "StopThingRegistrationTask") return stop(in);
  return reports(in);
}

bool bulk_registration::save(const task& t, std::vector<storage::operation> more) {
  more.push_back(storage::op::put_document{{std::string(k_task_kind), t.id, t.to_json()}});
  return store_.submit_and_wait(std::move(more));
}

bool bulk_registration::load_input(task& t) {
  std::string error;
  auto content = links_.read ? links_.read("s3://" + t.bucket + "/" + t.key, settings_.max_input_bytes, error)
                             : std::nullopt;
  if (!content) {
    if (!links_.read) error = "no object store serves (the api listener is off)";
    t.message = "the input file s3://" + t.bucket + "/" + t.key + " cannot be read: " + error;
    return false;
  }
  t.lines.clear();
  std::string_view rest(*content);
  while (!rest.empty()) {
    auto nl = rest.find('\n');
    auto line = rest.substr(0, nl);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    // Blank lines (a trailing newline) are not devices.
    if (line.find_first_not_of(" \t") != std::string_view::npos) t.lines.emplace_back(line);
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
  }
  t.total_lines = t.lines.size();
  return true;
}

aws_response bulk_registration::start(const json::object& in) {
  auto text = [&](std::string_view k) { return std::string(common::text_member(in, k).value_or("")); };
  task t;
  t.template_body = text("templateBody");
  t.bucket = text("inputFileBucket");
  t.key = text("inputFileKey");
  t.role_arn = text("roleArn");
  if (t.template_body.empty() || t.bucket.empty() || t.key.empty() || t.role_arn.empty())
    return aws_response::invalid("templateBody, inputFileBucket, inputFileKey and roleArn are required");
  if (t.role_arn.size() < 20) return aws_response::invalid("roleArn must be an ARN (at least 20 characters)");
  std::string message;
  if (!parse_template(t.template_body, message)) return aws_response::invalid("templateBody: " + message);
  for (const auto& [id, other] : tasks_)
    if (other.status == "InProgress" || other.status == "Cancelling")
      // Not ThrottlingException, which SDKs retry quietly: the caller must know now.
      return aws_response::invalid("one bulk registration task runs at a time; task " + id + " is " + other.status);
  if (!load_input(t)) return aws_response::invalid(t.message);
  t.id = common::random_uuid();
  t.created_ms = t.modified_ms = clock_.wall_ms();
  if (!save(t)) return aws_response::error(500, "InternalFailureException", "the task could not be stored");
  FC_LOG_INFO("provisioning.bulk_started", "task={} lines={} input={:q}", t.id, t.total_lines,
              common::untrusted(t.bucket + "/" + t.key));
  auto id = t.id;
  tasks_[id] = std::move(t);
  registry_.defer([this, id] { step(id); });
  return aws_response::ok(json::serialize(json::object{{"taskId", id}}));
}

void bulk_registration::resume() {
  for (auto& [id, t] : tasks_) {
    if (t.status != "InProgress" && t.status != "Cancelling") continue;
    if (t.status == "InProgress" && !load_input(t)) {
      finish(t, "Failed", t.message);
      continue;
    }
    FC_LOG_INFO("provisioning.bulk_resumed", "task={} line={} of={}", id, t.next_line, t.total_lines);
    registry_.defer([this, id = id] { step(id); });
  }
}

void bulk_registration::step(const std::string& id) {
  auto it = tasks_.find(id);
  if (it == tasks_.end()) return;
  task& t = it->second;
  if (t.status == "Cancelling") return finish(t, "Cancelled");
  if (t.status != "InProgress") return;
  std::string message;
  auto parsed = parse_template(t.template_body, message);
  if (!parsed) return finish(t, "Failed", "templateBody: " + message);  // checked at start: not expected
  std::string results, errors;
  const std::size_t end = std::min(t.lines.size(), t.next_line + settings_.chunk);
  for (std::size_t i = t.next_line; i < end; ++i) {
    const std::string reference = std::to_string(i);
    auto refuse = [&](std::string_view code, std::string_view why) {
      errors += json::serialize(json::object{{"referenceId", reference}, {"errorCode", code}, {"errorMessage", why}});
      errors += '\n';
      ++t.failure;
      lines_failed_.inc();
    };
    boost::system::error_code ec;
    auto line = json::parse(t.lines[i], ec);
    if (ec || !line.is_object()) {
      refuse("InvalidRequestException", "the line is not a JSON object of parameters");
      continue;
    }
    std::map<std::string, std::string> parameters;
    for (const auto& [k, v] : line.get_object())
      parameters[std::string(k)] = v.is_string() ? std::string(v.get_string()) : json::serialize(v);
    aws_response error;
    auto done = provision(registry_, *parsed, parameters, error);
    if (!done) {
      boost::system::error_code pe;
      auto body = json::parse(error.body, pe);
      refuse(error.error_type, !pe && body.is_object()
                                   ? std::string(common::text_member(body.get_object(), "message").value_or(""))
                                   : error.body);
      continue;
    }
    json::object arns;
    for (const auto& [logical, arn] : done->resource_arns) arns[logical] = arn;
    json::object response{{"ResourceArns", std::move(arns)}};
    if (done->certificate_pem) response["CertificatePem"] = *done->certificate_pem;
    results += json::serialize(json::object{{"referenceId", reference}, {"response", std::move(response)}});
    results += '\n';
    ++t.success;
    lines_ok_.inc();
  }
  t.next_line = end;
  t.modified_ms = clock_.wall_ms();
  const std::string report = fmt::format("{}/{:08}", t.id, t.steps++);
  if (!save(t, {storage::op::put_document{{std::string(k_report_kind), report,
                                           json::serialize(json::object{{"results", results}, {"errors", errors}})}}}))
    FC_LOG_ERROR("provisioning.bulk_progress_not_stored", "task={} line={}", t.id, end);
  if (t.next_line >= t.lines.size()) return finish(t, "Completed");
  registry_.defer([this, id] { step(id); });
}

void bulk_registration::finish(task& t, std::string status, std::string message) {
  // The reports: every stored step's lines, in order, as two objects beside the input.
  std::string results, errors;
  std::vector<storage::operation> drop;
  auto steps = store_.load_documents(std::string(k_report_kind));
  std::sort(steps.begin(), steps.end(), [](const auto& a, const auto& b) { return a.key < b.key; });
  for (const auto& d : steps) {
    if (!d.key.starts_with(t.id + "/")) continue;
    boost::system::error_code ec;
    auto v = json::parse(d.body, ec);
    if (!ec && v.is_object()) {
      results += common::text_member(v.get_object(), "results").value_or("");
      errors += common::text_member(v.get_object(), "errors").value_or("");
    }
    drop.push_back(storage::op::delete_document{std::string(k_report_kind), d.key});
  }
  std::string error;
  for (auto [type, content] : {std::pair<std::string_view, const std::string&>{"RESULTS", results}, {"ERRORS", errors}})
    if (!links_.put || !links_.put(t.bucket, report_key(t.id, type), content, "application/json", error)) {
      status = "Failed";
      message = "the " + std::string(type) + " report could not be written: " + (links_.put ? error : "no object store");
    }
  t.status = std::move(status);
  t.message = std::move(message);
  t.modified_ms = clock_.wall_ms();
  t.lines.clear();
  t.lines.shrink_to_fit();
  if (!save(t, std::move(drop))) FC_LOG_ERROR("provisioning.bulk_not_stored", "task={}", t.id);
  FC_LOG_INFO("provisioning.bulk_finished", "task={} status={} succeeded={} failed={} message={:q}", t.id, t.status,
              t.success, t.failure, common::untrusted(t.message));
}

aws_response bulk_registration::describe(const json::object& in) const {
  const std::string id(common::text_member(in, "taskId").value_or(""));
  auto it = tasks_.find(id);
  if (it == tasks_.end()) return aws_response::not_found("thing registration task " + id + " does not exist");
  const task& t = it->second;
  const auto progress = t.total_lines == 0 ? (t.status == "InProgress" ? 0 : 100)
                                           : static_cast<std::int64_t>(t.next_line * 100 / t.total_lines);
  json::object out{{"taskId", t.id},
                   {"creationDate", common::api_time(t.created_ms)},
                   {"lastModifiedDate", common::api_time(t.modified_ms)},
                   {"templateBody", t.template_body},
                   {"inputFileBucket", t.bucket},
                   {"inputFileKey", t.key},
                   {"roleArn", t.role_arn},
                   {"status", t.status},
                   {"successCount", t.success},
                   {"failureCount", t.failure},
                   {"percentageProgress", progress}};
  if (!t.message.empty()) out["message"] = t.message;
  return aws_response::ok(json::serialize(out));
}

aws_response bulk_registration::list(const json::object& in) const {
  std::int64_t max = 0;
  if (auto e = common::page_size(in, "maxResults", 250, 250, max)) return aws_response::from(*e);
  auto status = common::text_member(in, "status");
  if (status && std::find(std::begin(k_statuses), std::end(k_statuses), *status) == std::end(k_statuses))
    return aws_response::invalid("status must be InProgress, Completed, Failed, Cancelled or Cancelling");
  std::vector<std::string> ids;
  for (const auto& [id, t] : tasks_)
    if (!status || t.status == *status) ids.push_back(id);
  std::optional<std::string> token, next;
  if (auto n = common::text_member(in, "nextToken")) token = std::string(*n);
  json::array page;
  for (auto& id : common::page_after(ids, token, max, next)) page.emplace_back(id);
  json::object out{{"taskIds", std::move(page)}};
  if (next) out["nextToken"] = *next;
  return aws_response::ok(json::serialize(out));
}

aws_response bulk_registration::stop(const json::object& in) {
  const std::string id(common::text_member(in, "taskId").value_or(""));
  auto it = tasks_.find(id);
  if (it == tasks_.end()) return aws_response::not_found("thing registration task " + id + " does not exist");
  task& t = it->second;
  if (t.status != "InProgress" && t.status != "Cancelling")
    return aws_response::invalid("thing registration task " + id + " is " + t.status + ": there is nothing to stop");
  t.status = "Cancelling";
  t.modified_ms = clock_.wall_ms();
  if (!save(t)) return aws_response::error(500, "InternalFailureException", "the task could not be stored");
  return aws_response::ok("{}");  // the next step writes the reports of what was done and ends it Cancelled
}

aws_response bulk_registration::reports(const json::object& in) const {
  const std::string id(common::text_member(in, "taskId").value_or(""));
  const std::string type(common::text_member(in, "reportType").value_or(""));
  if (type != "RESULTS" && type != "ERRORS") return aws_response::invalid("reportType must be RESULTS or ERRORS");
  auto it = tasks_.find(id);
  if (it == tasks_.end()) return aws_response::invalid("thing registration task " + id + " does not exist");
  json::array links;
  const task& t = it->second;
  // The reports exist once the task is over.
  if (t.status == "Completed" || t.status == "Cancelled")
    if (links_.presign)
      if (auto url = links_.presign("s3://" + t.bucket + "/" + report_key(t.id, type), 3600)) links.emplace_back(*url);
  return aws_response::ok(json::serialize(json::object{{"resourceLinks", std::move(links)}, {"reportType", type}}));
}

void bulk_registration::register_metrics(common::registry& r) const {
  r.add(lines_ok_, "fleetcore_provisioning_bulk_lines_total", "result=\"succeeded\"",
        "Lines of bulk registration tasks provisioned (succeeded) or refused (failed).");
  r.add(lines_failed_, "fleetcore_provisioning_bulk_lines_total", "result=\"failed\"",
        "Lines of bulk registration tasks provisioned (succeeded) or refused (failed).");
}

}  // namespace fleetcore::provisioning
