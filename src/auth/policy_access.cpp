#include "auth/policy_access.hpp"

namespace fleetcore::auth {

policy_access::policy_access(std::string region, std::string account_id, std::vector<policy_document> policies)
    : arn_access(region, account_id, "plain"),
      policies_(std::make_shared<const std::vector<policy_document>>(std::move(policies))) {}

void policy_access::set_policies(std::vector<policy_document> policies) {
  auto next = std::make_shared<const std::vector<policy_document>>(std::move(policies));
  std::lock_guard lock(mutex_);
  policies_ = std::move(next);
  generation_.fetch_add(1, std::memory_order_release);
}

bool policy_access::decide(const connection_info& c, std::string_view client_id, std::string_view action,
                           const std::string& resource) const {
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

}  // namespace fleetcore::auth
