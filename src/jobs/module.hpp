#pragma once
// AWS IoT Jobs as a platform service: the device side on `$aws/things/<thing>/jobs/...` (a broker
// hook; replies to the requesting session alone, notifications published at QoS 1), the control-plane
// operations, and the registry's thing deletions (pending executions become REMOVED).
#include "jobs/jobs_service.hpp"
#include "platform/service.hpp"

namespace fleetcore::jobs {

class module final : public platform::service {
 public:
  /// `objects`: the object store's links, when one serves (documentSource, presigned URLs).
  module(platform::core& core, settings s, object_links objects = {});

  std::string_view name() const override { return "jobs"; }
  common::aws_operations operations() override;
  void start() override { jobs_.start(); }
  void stop() override { jobs_.stop(); }
  /// The service, for the services that create jobs (OTA updates).
  jobs_service& service() { return jobs_; }

 private:
  jobs_service jobs_;
  object_links objects_;
};

}  // namespace fleetcore::jobs
