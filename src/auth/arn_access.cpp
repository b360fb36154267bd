#include "auth/arn_access.hpp"

#include "common/log.hpp"

namespace fleetcore::auth {

namespace {
constexpr std::size_t max_cached_decisions = 1024;
}

arn_access::arn_access(const std::string& region, const std::string& account_id, std::string source)
    : arn_prefix_("arn:aws:iot:" + region + ":" + account_id + ":"), source_(std::move(source)) {}

bool arn_access::allowed(const connection_info& c, std::string_view client_id, std::string_view action,
                         std::string_view kind, std::string_view name) {
  std::string resource = arn_prefix_;
  resource += kind;
  resource += '/';
  resource += name;
  std::string key = std::string(action) + '\n' + resource;
  const std::uint64_t gen = generation();
  if (c.cache_generation != gen) {
    c.decision_cache.clear();
    c.cache_generation = gen;
  }
  if (auto it = c.decision_cache.find(key); it != c.decision_cache.end()) {
    hits_.inc();
    return it->second;
  }
  misses_.inc();
  bool allow = decide(c, client_id, action, resource);
  if (!allow)
    FC_LOG_INFO("auth.denied", "source={} client={} certificate={} action={} resource={}", source_,
                common::untrusted(client_id), c.certificate_id.substr(0, 12), action, common::untrusted(resource));
  if (c.decision_cache.size() >= max_cached_decisions) c.decision_cache.clear();
  c.decision_cache.emplace(std::move(key), allow);
  return allow;
}

mqtt::reason_code arn_access::authorize_connect(const connection_info& c, std::string_view client_id) {
  return allowed(c, client_id, "iot:Connect", "client", client_id) ? mqtt::reason_code::success
                                                                    : mqtt::reason_code::not_authorized;
}

mqtt::reason_code arn_access::authorize_publish(const connection_info& c, std::string_view client_id,
                                                std::string_view topic, bool retain) {
  bool ok = allowed(c, client_id, "iot:Publish", "topic", topic) &&
            (!retain || allowed(c, client_id, "iot:RetainPublish", "topic", topic));
  return ok ? mqtt::reason_code::success : mqtt::reason_code::not_authorized;
}

mqtt::reason_code arn_access::authorize_subscribe(const connection_info& c, std::string_view client_id,
                                                  std::string_view filter) {
  return allowed(c, client_id, "iot:Subscribe", "topicfilter", filter) ? mqtt::reason_code::success
                                                                        : mqtt::reason_code::not_authorized;
}

bool arn_access::authorize_receive(const connection_info& c, std::string_view client_id, std::string_view topic) {
  return allowed(c, client_id, "iot:Receive", "topic", topic);
}

void arn_access::register_metrics(common::registry& m) const {
  m.add(hits_, "fleetcore_auth_decision_cache_total", "source=\"" + source_ + "\",result=\"hit\"",
        "Policy decisions answered from the connection's cache.");
  m.add(misses_, "fleetcore_auth_decision_cache_total", "source=\"" + source_ + "\",result=\"miss\"",
        "Policy decisions evaluated.");
}

}  // namespace fleetcore::auth
