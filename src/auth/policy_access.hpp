#pragma once
// The access policy of a fixed set of AWS IoT policy documents (the plain listener's), replaced as a
// whole when the configured policy changes.
#include "auth/arn_access.hpp"
#include "auth/policy.hpp"

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

namespace fleetcore::auth {

class policy_access final : public arn_access {
 public:
  policy_access(std::string region, std::string account_id, std::vector<policy_document> policies);

  /// Replaces the policies (any thread); every connection's cached decisions become stale.
  void set_policies(std::vector<policy_document> policies);

  /// ${iot:ClientId} and ${iot:Certificate.Subject.CommonName} resolve.
  bool decide(const connection_info& c, std::string_view client_id, std::string_view action,
              const std::string& resource) const override;

 protected:
  std::uint64_t generation() const override { return generation_.load(std::memory_order_acquire); }

 private:
  mutable std::mutex mutex_;  // guards policies_; taken only on a cache miss
  std::shared_ptr<const std::vector<policy_document>> policies_;
  std::atomic<std::uint64_t> generation_{1};
};

/// Routes each connection to the policy of its listener; listeners without one use `fallback`.
class listener_access final : public access_policy {
 public:
  explicit listener_access(access_policy& fallback) : fallback_(fallback) {}
  void set(std::string listener, access_policy& p) { by_listener_[std::move(listener)] = &p; }

  mqtt::reason_code authorize_connect(const connection_info& c, std::string_view id) override {
    return pick(c).authorize_connect(c, id);
  }
  mqtt::reason_code authorize_publish(const connection_info& c, std::string_view id, std::string_view topic,
                                      bool retain) override {
    return pick(c).authorize_publish(c, id, topic, retain);
  }
  mqtt::reason_code authorize_subscribe(const connection_info& c, std::string_view id, std::string_view filter) override {
    return pick(c).authorize_subscribe(c, id, filter);
  }
  bool authorize_receive(const connection_info& c, std::string_view id, std::string_view topic) override {
    return pick(c).authorize_receive(c, id, topic);
  }

 private:
  access_policy& pick(const connection_info& c) {
    auto it = by_listener_.find(c.listener);
    return it == by_listener_.end() ? fallback_ : *it->second;
  }
  access_policy& fallback_;
  std::map<std::string, access_policy*, std::less<>> by_listener_;  // fixed after start-up
};

}  // namespace fleetcore::auth
