#pragma once
// AWS IoT events as a platform service: lifecycle events (a broker hook) and the registry's events
// (published at QoS 1 as AWS delivers event messages at least once, iot-events.md), both under
// `$aws/events/`, which only fleetcore publishes on.
#include "events/lifecycle.hpp"
#include "platform/service.hpp"

namespace fleetcore::events {

class module final : public platform::service {
 public:
  explicit module(platform::core& core);
  std::string_view name() const override { return "events"; }

 private:
  lifecycle lifecycle_;
};

}  // namespace fleetcore::events
