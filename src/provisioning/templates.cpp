#include "provisioning/templates.hpp"

#include "common/aws_paging.hpp"
#include "common/json_members.hpp"
#include "common/log.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <stdexcept>

namespace fleetcore::provisioning {

namespace json = boost::json;
using common::aws_response;

namespace {
constexpr std::string_view k_kind = "provisioning_template";
constexpr std::size_t k_max_versions = 5;

std::string text(const json::object& o, std::string_view key) { return std::string(common::text_member(o, key).value_or("")); }

bool valid_name(std::string_view n) {
  return !n.empty() && n.size() <= 36 && std::all_of(n.begin(), n.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

/// A template body checked by parsing it; an InvalidRequestException saying why otherwise.
std::optional<aws_response> check_body(const json::object& in, std::string& body) {
  auto b = common::text_member(in, "templateBody");
  if (!b) return aws_response::invalid("templateBody is required");
  std::string error;
  if (!parse_template(*b, error)) return aws_response::invalid("templateBody: " + error);
  body = std::string(*b);
  return std::nullopt;
}

/// preProvisioningHook's members into `t`; an error if malformed.
std::optional<aws_response> read_hook(const json::object& in, provisioning_template& t) {
  const auto* hook = common::object_member(in, "preProvisioningHook");
  if (!hook) return std::nullopt;
  auto target = text(*hook, "targetArn");
  if (target.empty() || target.size() > 2048 || !(target.starts_with("arn:") || target.starts_with("https://")))
    return aws_response::invalid("preProvisioningHook.targetArn must be a Lambda ARN (mapped to a URL in the configuration) or an https:// URL");
  auto version = text(*hook, "payloadVersion");
  if (!version.empty() && version != "2020-04-01") return aws_response::invalid("preProvisioningHook.payloadVersion must be 2020-04-01");
  if (t.type == "JITP") return aws_response::invalid("a pre-provisioning hook serves fleet provisioning templates only");
  t.hook_target = target;
  return std::nullopt;
}
}  // namespace

const template_version* provisioning_template::version(std::int64_t id) const {
  for (const auto& v : versions)
    if (v.id == id) return &v;
  return nullptr;
}

std::string provisioning_template::to_json() const {
  json::array vs;
  for (const auto& v : versions) vs.push_back(json::object{{"id", v.id}, {"body", v.body}, {"createdMs", v.created_ms}});
  json::object o{{"name", name},
                 {"description", description},
                 {"roleArn", role_arn},
                 {"type", type},
                 {"enabled", enabled},
                 {"hookPayloadVersion", hook_payload_version},
                 {"defaultVersion", default_version},
                 {"nextVersion", next_version},
                 {"versions", std::move(vs)},
                 {"createdMs", created_ms},
                 {"modifiedMs", modified_ms}};
  if (hook_target) o["hookTarget"] = *hook_target;
  return json::serialize(o);
}

std::optional<provisioning_template> provisioning_template::from_json(std::string_view body) {
  boost::system::error_code ec;
  auto v = json::parse(body, ec);
  if (ec || !v.is_object()) return std::nullopt;
  const auto& o = v.as_object();
  provisioning_template t;
  t.name = text(o, "name");
  t.description = text(o, "description");
  t.role_arn = text(o, "roleArn");
  t.type = text(o, "type");
  t.enabled = common::bool_member(o, "enabled").value_or(false);
  if (auto h = common::text_member(o, "hookTarget")) t.hook_target = std::string(*h);
  t.hook_payload_version = text(o, "hookPayloadVersion");
  t.default_version = common::int_member(o, "defaultVersion").value_or(1);
  t.next_version = common::int_member(o, "nextVersion").value_or(2);
  t.created_ms = common::int_member(o, "createdMs").value_or(0);
  t.modified_ms = common::int_member(o, "modifiedMs").value_or(0);
  const auto* vs = o.if_contains("versions");
  if (!valid_name(t.name) || !vs || !vs->is_array()) return std::nullopt;
  for (const auto& x : vs->as_array()) {
    if (!x.is_object()) return std::nullopt;
    t.versions.push_back({common::int_member(x.as_object(), "id").value_or(0), text(x.as_object(), "body"),
                          common::int_member(x.as_object(), "createdMs").value_or(0)});
  }
  return t;
}

template_service::template_service(storage::store& store, common::clock& clock, std::string arn_prefix)
    : store_(store), clock_(clock), arn_prefix_(std::move(arn_prefix)) {
  for (const auto& d : store_.load_documents(std::string(k_kind))) {
    auto t = provisioning_template::from_json(d.body);
    if (!t || t->name != d.key) throw std::runtime_error("unreadable provisioning template " + d.key);
    std::string name = t->name;
    templates_.emplace(std::move(name), std::make_shared<const provisioning_template>(std::move(*t)));
  }
}

std::vector<std::string_view> template_service::operations() {
  return {"CreateProvisioningTemplate",        "DescribeProvisioningTemplate",        "ListProvisioningTemplates",
          "UpdateProvisioningTemplate",        "DeleteProvisioningTemplate",          "CreateProvisioningTemplateVersion",
          "DescribeProvisioningTemplateVersion", "ListProvisioningTemplateVersions", "DeleteProvisioningTemplateVersion"};
}

aws_response template_service::call(std::string_view op, const json::object& in) {
  if (op == "CreateProvisioningTemplate") return create(in);
  if (op == "DescribeProvisioningTemplate") return describe(in);
  if (op == "ListProvisioningTemplates") return list(in);
  if (op == "UpdateProvisioningTemplate") return update(in);
  if (op == "DeleteProvisioningTemplate") return remove(in);
  if (op == "CreateProvisioningTemplateVersion") return create_version(in);
  if (op == "DescribeProvisioningTemplateVersion") return describe_version(in);
  if (op == "ListProvisioningTemplateVersions") return list_versions(in);
  if (op == "DeleteProvisioningTemplateVersion") return delete_version(in);
  return aws_response::invalid("unknown operation");
}

std::shared_ptr<const provisioning_template> template_service::find(std::string_view name) const {
  std::shared_lock lock(mutex_);
  auto it = templates_.find(name);
  return it == templates_.end() ? nullptr : it->second;
}

bool template_service::save(provisioning_template t) {
  if (!store_.submit_and_wait({storage::op::put_document{{std::string(k_kind), t.name, t.to_json()}}})) return false;
  std::unique_lock lock(mutex_);
  std::string name = t.name;
  templates_[std::move(name)] = std::make_shared<const provisioning_template>(std::move(t));
  return true;
}

aws_response template_service::create(const json::object& in) {
  provisioning_template t;
  t.name = text(in, "templateName");
  if (!valid_name(t.name)) return aws_response::invalid("templateName must match [0-9A-Za-z_-]{1,36}");
  if (find(t.name)) return aws_response::already_exists("Template " + t.name + " already exists", t.name, arn(t.name));
  t.description = text(in, "description");
  if (t.description.size() > 500) return aws_response::invalid("description is longer than 500 characters");
  t.role_arn = text(in, "provisioningRoleArn");
  if (t.role_arn.size() < 20 || t.role_arn.size() > 2048) return aws_response::invalid("provisioningRoleArn must be an ARN of 20-2048 characters");
  t.enabled = common::bool_member(in, "enabled").value_or(false);
  if (auto type = common::text_member(in, "type")) {
    if (*type != "FLEET_PROVISIONING" && *type != "JITP") return aws_response::invalid("type must be FLEET_PROVISIONING or JITP");
    t.type = std::string(*type);
  }
  if (auto e = read_hook(in, t)) return *e;
  std::string body;
  if (auto e = check_body(in, body)) return *e;
  t.created_ms = t.modified_ms = clock_.wall_ms();
  t.versions.push_back({1, std::move(body), t.created_ms});
  const std::string name = t.name;
  if (!save(std::move(t))) return aws_response::error(500, "InternalFailureException", "the template could not be stored");
  FC_LOG_INFO("provisioning.template_created", "template={}", name);
  return aws_response::ok(
      json::serialize(json::object{{"templateArn", arn(name)}, {"templateName", name}, {"defaultVersionId", 1}}));
}

aws_response template_service::describe(const json::object& in) const {
  auto t = find(text(in, "templateName"));
  if (!t) return aws_response::not_found("Template " + text(in, "templateName") + " does not exist");
  json::object o{{"templateArn", arn(t->name)},
                 {"templateName", t->name},
                 {"description", t->description},
                 {"creationDate", common::api_time(t->created_ms)},
                 {"lastModifiedDate", common::api_time(t->modified_ms)},
                 {"defaultVersionId", t->default_version},
                 {"templateBody", t->version(t->default_version) ? t->version(t->default_version)->body : ""},
                 {"enabled", t->enabled},
                 {"provisioningRoleArn", t->role_arn},
                 {"type", t->type}};
  if (t->hook_target)
    o["preProvisioningHook"] = json::object{{"targetArn", *t->hook_target}, {"payloadVersion", t->hook_payload_version}};
  return aws_response::ok(json::serialize(o));
}

aws_response template_service::list(const json::object& in) const {
  std::int64_t max = 0;
  if (auto e = common::page_size(in, "maxResults", 250, 250, max)) return aws_response::from(*e);
  std::vector<std::string> names;
  std::map<std::string, std::shared_ptr<const provisioning_template>> all;
  {
    std::shared_lock lock(mutex_);
    for (const auto& [name, t] : templates_) {
      names.push_back(name);
      all[name] = t;
    }
  }
  std::optional<std::string> next;
  auto token = common::text_member(in, "nextToken");
  json::array out;
  for (const auto& name : common::page_after(names, token ? std::optional<std::string>(*token) : std::nullopt, max, next)) {
    const auto& t = *all.at(name);
    out.push_back(json::object{{"templateArn", arn(name)},
                               {"templateName", name},
                               {"description", t.description},
                               {"creationDate", common::api_time(t.created_ms)},
                               {"lastModifiedDate", common::api_time(t.modified_ms)},
                               {"enabled", t.enabled},
                               {"type", t.type}});
  }
  json::object o{{"templates", std::move(out)}};
  if (next) o["nextToken"] = *next;
  return aws_response::ok(json::serialize(o));
}

aws_response template_service::update(const json::object& in) {
  auto old = find(text(in, "templateName"));
  if (!old) return aws_response::not_found("Template " + text(in, "templateName") + " does not exist");
  provisioning_template t = *old;
  if (auto d = common::text_member(in, "description")) {
    if (d->size() > 500) return aws_response::invalid("description is longer than 500 characters");
    t.description = std::string(*d);
  }
  if (auto e = common::bool_member(in, "enabled")) t.enabled = *e;
  if (auto role = common::text_member(in, "provisioningRoleArn")) {
    if (role->size() < 20 || role->size() > 2048) return aws_response::invalid("provisioningRoleArn must be an ARN of 20-2048 characters");
    t.role_arn = std::string(*role);
  }
  if (auto v = common::int_member(in, "defaultVersionId")) {
    if (!t.version(*v)) return aws_response::not_found("Template " + t.name + " has no version " + std::to_string(*v));
    t.default_version = *v;
  }
  if (common::bool_member(in, "removePreProvisioningHook").value_or(false)) {
    if (in.contains("preProvisioningHook")) return aws_response::invalid("preProvisioningHook and removePreProvisioningHook cannot both be given");
    t.hook_target.reset();
  }
  if (auto e = read_hook(in, t)) return *e;
  t.modified_ms = clock_.wall_ms();
  if (!save(std::move(t))) return aws_response::error(500, "InternalFailureException", "the template could not be stored");
  return aws_response::ok("{}");
}

aws_response template_service::remove(const json::object& in) {
  const std::string name = text(in, "templateName");
  if (!find(name)) return aws_response::not_found("Template " + name + " does not exist");
  if (!store_.submit_and_wait({storage::op::delete_document{std::string(k_kind), name}}))
    return aws_response::error(500, "InternalFailureException", "the template could not be deleted");
  std::unique_lock lock(mutex_);
  templates_.erase(name);
  return aws_response::ok("{}");
}

aws_response template_service::create_version(const json::object& in) {
  auto old = find(text(in, "templateName"));
  if (!old) return aws_response::not_found("Template " + text(in, "templateName") + " does not exist");
  if (old->versions.size() >= k_max_versions)
    return aws_response::error(409, "VersionsLimitExceededException",
                               "Template " + old->name + " has 5 versions: delete one first");
  std::string body;
  if (auto e = check_body(in, body)) return *e;
  provisioning_template t = *old;
  const std::int64_t id = t.next_version++;
  t.modified_ms = clock_.wall_ms();
  t.versions.push_back({id, std::move(body), t.modified_ms});
  const bool as_default = common::bool_member(in, "setAsDefault").value_or(false);
  if (as_default) t.default_version = id;
  const std::string name = t.name;
  if (!save(std::move(t))) return aws_response::error(500, "InternalFailureException", "the template could not be stored");
  return aws_response::ok(json::serialize(
      json::object{{"templateArn", arn(name)}, {"templateName", name}, {"versionId", id}, {"isDefaultVersion", as_default}}));
}

aws_response template_service::describe_version(const json::object& in) const {
  auto t = find(text(in, "templateName"));
  if (!t) return aws_response::not_found("Template " + text(in, "templateName") + " does not exist");
  const auto id = common::int_member(in, "versionId").value_or(0);
  const auto* v = t->version(id);
  if (!v) return aws_response::not_found("Template " + t->name + " has no version " + std::to_string(id));
  return aws_response::ok(json::serialize(json::object{{"versionId", v->id},
                                                       {"creationDate", common::api_time(v->created_ms)},
                                                       {"templateBody", v->body},
                                                       {"isDefaultVersion", v->id == t->default_version}}));
}

aws_response template_service::list_versions(const json::object& in) const {
  auto t = find(text(in, "templateName"));
  if (!t) return aws_response::not_found("Template " + text(in, "templateName") + " does not exist");
  std::int64_t max = 0;
  if (auto e = common::page_size(in, "maxResults", 250, 250, max)) return aws_response::from(*e);
  std::size_t from = 0;
  if (auto token = common::text_member(in, "nextToken"); token && !token->empty()) {
    auto it = std::find_if(t->versions.begin(), t->versions.end(),
                           [&](const auto& v) { return std::to_string(v.id) == *token; });
    if (it == t->versions.end()) return aws_response::invalid("nextToken is not one ListProvisioningTemplateVersions gave");
    from = std::size_t(it - t->versions.begin()) + 1;
  }
  json::array out;
  std::size_t i = from;
  for (; i < t->versions.size() && out.size() < std::size_t(max); ++i)
    out.push_back(json::object{{"versionId", t->versions[i].id},
                               {"creationDate", common::api_time(t->versions[i].created_ms)},
                               {"isDefaultVersion", t->versions[i].id == t->default_version}});
  json::object o{{"versions", std::move(out)}};
  if (i < t->versions.size()) o["nextToken"] = std::to_string(t->versions[i - 1].id);
  return aws_response::ok(json::serialize(o));
}

aws_response template_service::delete_version(const json::object& in) {
  auto old = find(text(in, "templateName"));
  if (!old) return aws_response::not_found("Template " + text(in, "templateName") + " does not exist");
  const auto id = common::int_member(in, "versionId").value_or(0);
  if (!old->version(id)) return aws_response::not_found("Template " + old->name + " has no version " + std::to_string(id));
  if (id == old->default_version)
    return aws_response::error(409, "DeleteConflictException",
                               "version " + std::to_string(id) + " is the default version: make another the default first");
  provisioning_template t = *old;
  t.versions.erase(std::find_if(t.versions.begin(), t.versions.end(), [id](const auto& v) { return v.id == id; }));
  t.modified_ms = clock_.wall_ms();
  if (!save(std::move(t))) return aws_response::error(500, "InternalFailureException", "the template could not be stored");
  return aws_response::ok("{}");
}

}  // namespace fleetcore::provisioning
