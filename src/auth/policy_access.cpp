#include "auth/policy_access.hpp"

namespace fleetcore::auth {

policy_access::policy_access(std::string region, std::string account_id, std::vector<policy_document> policies)
    : arn_prefix_("arn:aws:iot:" + region + ":" + account_id + ":"),
      policies_(std::make_shared<const std::vector<policy_document>>(std::move(policies))) {}

void policy_access::set_policies(std::vector<policy_document> policies) {
  auto next = std::make_shared<const std::vector<policy_document>>(std::move(policies));
  std::lock_guard lock(mutex_);
  policies_ = std::move(next);
  generation_.fetch_add(1, std::memory_order_release);
}

bool policy_access::decide(const connection_info& c, std::string_view client_id, std::string_view action,
                           const std::string& resource) {
  std::shared_ptr<const std::vector<policy_document>> policies;
  {
    std::lock_guard lock(mutex_);
    policies = policies_;
  }
  variable_resolver vars = [&](std::string_view var) -> std::optional<std::string> {
    if (var == "iot:ClientId") return std::string(client_id);
    if (var == "iot:Certificate.Subject.CommonName" && !c.cert_common_name.empty()) return c.cert_common_name;
    return std::nullopt;
  };
  std::vector<const policy_document*> ps;
  ps.reserve(policies->size());
  for (const auto& p : *policies) ps.push_back(&p);
  return evaluate(ps, action, resource, vars) == decision::allow;
}

bool policy_access::allowed(const connection_info& c, std::string_view client_id, std::string_view action,
                            std::string_view kind, std::string_view name) {
  std::string resource = arn_prefix_;
  resource += kind;
  resource += '/';
  resource += name;
  bool hit = false;
  return cached_decision(c, generation_.load(std::memory_order_acquire), std::string(action) + '\n' + resource,
                         [&] { return decide(c, client_id, action, resource); }, hit);
}

mqtt::reason_code policy_access::authorize_connect(const connection_info& c, std::string_view client_id) {
  return allowed(c, client_id, "iot:Connect", "client", client_id) ? mqtt::reason_code::success
                                                                    : mqtt::reason_code::not_authorized;
}

mqtt::reason_code policy_access::authorize_publish(const connection_info& c, std::string_view client_id,
                                                   std::string_view topic, bool retain) {
  bool ok = allowed(c, client_id, "iot:Publish", "topic", topic) &&
            (!retain || allowed(c, client_id, "iot:RetainPublish", "topic", topic));
  return ok ? mqtt::reason_code::success : mqtt::reason_code::not_authorized;
}

mqtt::reason_code policy_access::authorize_subscribe(const connection_info& c, std::string_view client_id,
                                                     std::string_view filter) {
  return allowed(c, client_id, "iot:Subscribe", "topicfilter", filter) ? mqtt::reason_code::success
                                                                        : mqtt::reason_code::not_authorized;
}

bool policy_access::authorize_receive(const connection_info& c, std::string_view client_id, std::string_view topic) {
  return allowed(c, client_id, "iot:Receive", "topic", topic);
}

}  // namespace fleetcore::auth
