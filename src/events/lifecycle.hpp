#pragma once
// AWS IoT lifecycle events (life-cycle-events.md), published by fleetcore alone on
//   $aws/events/presence/connected/<clientId>, $aws/events/presence/disconnected/<clientId>,
//   $aws/events/subscriptions/subscribed/<clientId>, $aws/events/subscriptions/unsubscribed/<clientId>
// with AWS's fields. Always on, as on AWS. A broker hook: it only formats and hands the event to the
// broker (QoS 0, routed like any message, so subscribers need iot:Subscribe and iot:Receive).
#include "broker/broker.hpp"
#include "common/clock.hpp"

#include <string>

namespace fleetcore::events {

class lifecycle final : public broker::broker_hook {
 public:
  lifecycle(broker::broker& b, common::clock& clock) : broker_(b), clock_(clock) {}

  void on_connected(const broker::session_info& s) override;
  void on_disconnected(const broker::session_info& s, broker::disconnect_reason why, bool client_initiated) override;
  void on_subscribed(const broker::session_info& s, std::span<const std::string> filters) override;
  void on_unsubscribed(const broker::session_info& s, std::span<const std::string> filters) override;

  /// AWS: "Client IDs that contain # or + do not receive lifecycle events" (nor do ids that cannot
  /// form a topic).
  static bool eligible(std::string_view client_id) noexcept;
  /// The payloads, for tests: JSON objects with AWS's member names.
  std::string presence(const broker::session_info& s, bool connected, broker::disconnect_reason why,
                       bool client_initiated, std::int64_t now_ms) const;
  std::string subscriptions(const broker::session_info& s, bool subscribed, std::span<const std::string> filters,
                            std::int64_t now_ms) const;

 private:
  void publish(std::string topic, std::string payload);

  broker::broker& broker_;
  common::clock& clock_;
};

}  // namespace fleetcore::events
