#pragma once
// Over-the-air updates as a platform service: streams and their MQTT-based file delivery (a broker
// hook answering each device's session alone), code signing (signer), and OTA updates, which make a
// stream, sign the files and create the AFR_OTA job; with the control-plane operations of all three.
#include "jobs/jobs_service.hpp"
#include "objects/links.hpp"
#include "ota/ota_updates.hpp"
#include "ota/streams.hpp"
#include "platform/service.hpp"
#include "signer/signer_service.hpp"

namespace fleetcore::ota {

class module final : public platform::service {
 public:
  /// `objects`: the object store's links (files, signed objects); empty when no api listener runs.
  /// `jobs`: the service OTA updates create their job with. `defer`: runs a function later on the API
  /// thread (an OTA update is built after CreateOTAUpdate has answered).
  module(platform::core& core, objects::links objects, jobs::jobs_service& jobs,
         std::function<void(std::function<void()>)> defer);

  std::string_view name() const override { return "ota"; }
  common::aws_operations operations() override;
  void start() override { streams_.start(); }
  void stop() override { streams_.stop(); }

 private:
  stream_service streams_;
  signer::signer_service signer_;
  ota_service updates_;
};

}  // namespace fleetcore::ota
