// The jobs service's job template operations, custom and AWS-managed.
#include "jobs/internal.hpp"

#include "common/aws_paging.hpp"
#include "registry/arn.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>

namespace fleetcore::jobs {

namespace json = boost::json;
using common::aws_response;
using namespace detail;

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
  static_cast<job_configs&>(j) = t;
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
  static_cast<job_configs&>(t) = j;
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
  t.describe(o);
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

}  // namespace fleetcore::jobs
