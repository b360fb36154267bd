#include "provisioning/provisioner.hpp"

#include "common/json_members.hpp"

#include <boost/json/serialize.hpp>

namespace fleetcore::provisioning {

namespace json = boost::json;
using common::aws_response;

namespace {
std::string_view rule_name(on_existing r) {
  switch (r) {
    case on_existing::do_nothing: return "DO_NOTHING";
    case on_existing::fail: return "FAIL";
    case on_existing::merge: return "MERGE";
    case on_existing::replace: break;
  }
  return "REPLACE";
}
}  // namespace

json::object registry_plan(const plan& p) {
  json::object out;
  if (p.thing) {
    json::object t{{"name", p.thing->name},
                   {"attributesRule", rule_name(p.thing->attributes_rule)},
                   {"typeRule", rule_name(p.thing->type_rule)},
                   {"groupsRule", rule_name(p.thing->groups_rule)}};
    if (p.thing->attributes) {
      json::object attrs;
      for (const auto& [k, v] : *p.thing->attributes) attrs[k] = v;
      t["attributes"] = std::move(attrs);
    }
    if (p.thing->type) t["type"] = *p.thing->type;
    if (p.thing->groups) t["groups"] = json::array(p.thing->groups->begin(), p.thing->groups->end());
    out["thing"] = std::move(t);
  }
  if (p.certificate) {
    json::object c{{"status", p.certificate->status}, {"statusRule", rule_name(p.certificate->status_rule)}};
    if (p.certificate->csr) c["csr"] = *p.certificate->csr;
    if (p.certificate->id) c["id"] = *p.certificate->id;
    if (p.certificate->pem) c["pem"] = *p.certificate->pem;
    if (p.certificate->ca_pem) c["caPem"] = *p.certificate->ca_pem;
    out["certificate"] = std::move(c);
  }
  json::array policies;
  for (const auto& pol : p.policies) {
    json::object o{{"name", pol.name}};
    if (pol.document) o["document"] = *pol.document;
    policies.push_back(std::move(o));
  }
  out["policies"] = std::move(policies);
  return out;
}

namespace {

std::optional<provisioned> carry_out(registry::registry& reg, plan p, aws_response& error);

}  // namespace

std::optional<provisioned> provision(registry::registry& reg, const parsed_template& t,
                                     const std::map<std::string, std::string>& parameters, aws_response& error) {
  std::string message;
  auto p = evaluate(t, parameters, message);
  if (!p) {
    error = aws_response::error(400, "InvalidRequestException", message);
    return std::nullopt;
  }
  return carry_out(reg, std::move(*p), error);
}

std::optional<provisioned> provision_certificate(registry::registry& reg, const parsed_template& t,
                                                 std::map<std::string, std::string> parameters,
                                                 const std::string& certificate_id, aws_response& error) {
  parameters["AWS::IoT::Certificate::Id"] = certificate_id;
  std::string message;
  auto p = evaluate(t, parameters, message);
  if (!p) {
    error = aws_response::error(400, "InvalidRequestException", message);
    return std::nullopt;
  }
  if (!p->certificate || p->certificate->id != certificate_id) {
    error = aws_response::error(400, "InvalidRequestException",
                                "the template must provision the device's new certificate: CertificateId {\"Ref\": "
                                "\"AWS::IoT::Certificate::Id\"}");
    return std::nullopt;
  }
  p->certificate->status_rule = on_existing::replace;
  return carry_out(reg, std::move(*p), error);
}

namespace {

std::optional<provisioned> carry_out(registry::registry& reg, plan p, aws_response& error) {
  auto done = reg.call("fleetcore:Provision", registry_plan(p));
  if (done.error) {
    error = aws_response::error(done.error->status, done.error->code, done.error->message);
    return std::nullopt;
  }
  provisioned out;
  const auto& a = done.body;
  if (p.thing) {
    out.thing_name = p.thing->name;
    out.resource_arns[p.thing->logical] = std::string(common::text_member(a, "thingArn").value_or(""));
  }
  if (p.certificate) {
    out.resource_arns[p.certificate->logical] = std::string(common::text_member(a, "certificateArn").value_or(""));
    if (auto pem = common::text_member(a, "certificatePem")) out.certificate_pem = std::string(*pem);
  }
  if (const auto* arns = common::object_member(a, "policyArns"))
    for (const auto& pol : p.policies)
      if (auto arn = common::text_member(*arns, pol.name)) out.resource_arns[pol.logical] = std::string(*arn);
  out.device_configuration = std::move(p.device_configuration);
  return out;
}

}  // namespace

aws_response register_thing(registry::registry& reg, const json::object& in) {
  auto body = common::text_member(in, "templateBody");
  if (!body) return aws_response::error(400, "InvalidRequestException", "templateBody is required");
  std::string message;
  auto t = parse_template(*body, message);
  if (!t) return aws_response::error(400, "InvalidRequestException", "templateBody: " + message);
  std::map<std::string, std::string> parameters;
  if (const auto* ps = common::object_member(in, "parameters"))
    for (const auto& [k, v] : *ps)
      if (v.is_string()) parameters[std::string(k)] = std::string(v.get_string());
  aws_response error;
  auto done = provision(reg, *t, parameters, error);
  if (!done) return error;
  json::object arns;
  for (const auto& [logical, arn] : done->resource_arns) arns[logical] = arn;
  json::object out{{"resourceArns", std::move(arns)}};
  if (done->certificate_pem) out["certificatePem"] = *done->certificate_pem;
  return aws_response::ok(json::serialize(out));
}

}  // namespace fleetcore::provisioning
