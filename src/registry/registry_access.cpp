#include "registry/registry_access.hpp"

namespace fleetcore::registry {

registry_access::registry_access(const registry& r)
    : arn_access(r.config().region, r.config().account_id, "certificate"), registry_(r) {}

bool registry_access::decide(const auth::connection_info& c, std::string_view client_id, std::string_view action,
                             const std::string& resource) const {
  if (c.certificate_id.empty()) return false;
  principal_view view = registry_.principal_for(c.certificate_id, client_id);
  constexpr std::string_view thing_prefix = "iot:Connection.Thing.";
  constexpr std::string_view cert_prefix = "iot:Certificate.";
  auth::variable_resolver vars = [&](std::string_view var) -> std::optional<std::string> {
    if (var == "iot:ClientId") return std::string(client_id);
    if (var.starts_with(thing_prefix)) {
      if (!view.connection_thing) return var == "iot:Connection.Thing.IsAttached" ? std::optional<std::string>("false")
                                                                                   : std::nullopt;
      const thing& t = *view.connection_thing;
      auto field = var.substr(thing_prefix.size());
      if (field == "ThingName") return t.name;
      if (field == "IsAttached") return std::string("true");
      if (field == "ThingTypeName") return t.type.empty() ? std::nullopt : std::optional<std::string>(t.type);
      if (field.starts_with("Attributes[") && field.ends_with("]")) {
        auto it = t.attributes.find(std::string(field.substr(11, field.size() - 12)));
        if (it != t.attributes.end()) return it->second;
      }
      return std::nullopt;
    }
    if (var.starts_with(cert_prefix)) {
      auto field = var.substr(cert_prefix.size());
      for (const auto& [k, v] : view.cert_variables)
        if (k == field) return v;
    }
    return std::nullopt;
  };
  std::vector<const auth::policy_document*> ps;
  ps.reserve(view.policies.size());
  for (const auto& p : view.policies) ps.push_back(p.get());
  return auth::evaluate(ps, action, resource, vars) == auth::decision::allow;
}

}  // namespace fleetcore::registry
