#pragma once
// The common part of every policy-backed access_policy: MQTT operations become the AWS IoT actions
// and ARNs that policies name (iot:Connect on client/{clientId}, iot:Publish and iot:RetainPublish on
// topic/{topic}, iot:Subscribe on topicfilter/{filter}, iot:Receive on topic/{topic}), decisions are
// cached per connection until the policy source's generation moves on, and denials are logged and
// counted. Subclasses say where policies come from (`decide`) and when they change (`generation`).
#include "auth/access.hpp"
#include "common/metrics.hpp"

#include <cstdint>
#include <string>

namespace fleetcore::auth {

class arn_access : public access_policy {
 public:
  /// `source` labels this policy's metrics and logs ("plain", "certificate").
  arn_access(const std::string& region, const std::string& account_id, std::string source);

  mqtt::reason_code authorize_connect(const connection_info& c, std::string_view client_id) final;
  mqtt::reason_code authorize_publish(const connection_info& c, std::string_view client_id, std::string_view topic,
                                      bool retain) final;
  mqtt::reason_code authorize_subscribe(const connection_info& c, std::string_view client_id,
                                        std::string_view filter) final;
  bool authorize_receive(const connection_info& c, std::string_view client_id, std::string_view topic) final;

  /// Evaluates `action` on `resource` (a full ARN) without the cache; any thread.
  virtual bool decide(const connection_info& c, std::string_view client_id, std::string_view action,
                      const std::string& resource) const = 0;

  const std::string& arn_prefix() const noexcept { return arn_prefix_; }
  void register_metrics(common::registry& m) const;

 protected:
  /// Changes whenever a decision may change; cached decisions of older generations are dropped.
  virtual std::uint64_t generation() const = 0;

 private:
  bool allowed(const connection_info& c, std::string_view client_id, std::string_view action, std::string_view kind,
               std::string_view name);

  std::string arn_prefix_;
  std::string source_;
  common::counter hits_, misses_;
};

}  // namespace fleetcore::auth
