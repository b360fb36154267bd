#include "registry/registry_access.hpp"

#include "common/log.hpp"

namespace fleetcore::registry {

registry_access::registry_access(const registry& r)
    : registry_(r), arn_prefix_("arn:aws:iot:" + r.config().region + ":" + r.config().account_id + ":") {}

bool registry_access::evaluate(const auth::connection_info& c, std::string_view client_id, std::string_view action,
                               std::string_view resource) const {
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

bool registry_access::allowed(const auth::connection_info& c, std::string_view client_id, std::string_view action,
                              std::string_view kind, std::string_view name) {
  std::string resource = arn_prefix_;
  resource += kind;
  resource += '/';
  resource += name;
  bool hit = false;
  bool allow = auth::cached_decision(c, registry_.generation(), std::string(action) + '\n' + resource,
                                     [&] { return evaluate(c, client_id, action, resource); }, hit);
  (hit ? cache_hits_ : cache_misses_).inc();
  if (!allow && !hit)
    FC_LOG_INFO("auth.denied", "client={} certificate={} action={} resource={}", client_id,
                c.certificate_id.substr(0, 12), action, resource);
  return allow;
}

mqtt::reason_code registry_access::authorize_connect(const auth::connection_info& c, std::string_view client_id) {
  return allowed(c, client_id, "iot:Connect", "client", client_id) ? mqtt::reason_code::success
                                                                    : mqtt::reason_code::not_authorized;
}

mqtt::reason_code registry_access::authorize_publish(const auth::connection_info& c, std::string_view client_id,
                                                     std::string_view topic, bool retain) {
  bool ok = allowed(c, client_id, "iot:Publish", "topic", topic) &&
            (!retain || allowed(c, client_id, "iot:RetainPublish", "topic", topic));
  return ok ? mqtt::reason_code::success : mqtt::reason_code::not_authorized;
}

mqtt::reason_code registry_access::authorize_subscribe(const auth::connection_info& c, std::string_view client_id,
                                                       std::string_view filter) {
  return allowed(c, client_id, "iot:Subscribe", "topicfilter", filter) ? mqtt::reason_code::success
                                                                        : mqtt::reason_code::not_authorized;
}

bool registry_access::authorize_receive(const auth::connection_info& c, std::string_view client_id,
                                        std::string_view topic) {
  return allowed(c, client_id, "iot:Receive", "topic", topic);
}

void registry_access::register_metrics(common::registry& m) const {
  m.add(cache_hits_, "fleetcore_auth_decision_cache_total", "result=\"hit\"", "Policy decisions answered from the connection's cache.");
  m.add(cache_misses_, "fleetcore_auth_decision_cache_total", "result=\"miss\"", "Policy decisions evaluated.");
}

}  // namespace fleetcore::registry
