#pragma once
// Over-the-air updates as a platform service: streams and their MQTT-based file delivery (a broker
// hook answering each device's session alone), with the control-plane operations that manage them.
#include "objects/links.hpp"
#include "ota/streams.hpp"
#include "platform/service.hpp"

namespace fleetcore::ota {

class module final : public platform::service {
 public:
  /// `objects`: the object store's links (the streams' files); empty when no api listener runs.
  module(platform::core& core, objects::links objects);

  std::string_view name() const override { return "ota"; }
  common::aws_operations operations() override;
  void start() override { streams_.start(); }
  void stop() override { streams_.stop(); }

 private:
  stream_service streams_;
};

}  // namespace fleetcore::ota
