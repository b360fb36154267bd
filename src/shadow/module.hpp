#pragma once
// The shadow service as a platform service: answers `$aws/things/<thing>/shadow/...` over MQTT (a
// broker hook) and the iot-data shadow operations over HTTP; responses are published at QoS 1.
#include "platform/service.hpp"
#include "shadow/shadow_service.hpp"

namespace fleetcore::shadow {

class module final : public platform::service {
 public:
  module(platform::core& core, limits lim);

  std::string_view name() const override { return "shadow"; }
  common::aws_operations operations() override;
  void start() override { shadows_.start(); }
  void stop() override { shadows_.stop(); }

  /// The shadows, for services that read them (the rules engine's get_thing_shadow).
  shadow_service& shadows() noexcept { return shadows_; }

 private:
  shadow_service shadows_;
};

}  // namespace fleetcore::shadow
