#pragma once
// Fleet provisioning as a platform service: provisioning templates and their versions (the control
// plane), RegisterThing (a template and its parameters, provisioned in one transaction), and the
// device side, fleet provisioning by claim ($aws/certificates/create..., $aws/provisioning-templates/
// .../provision) with its pre-provisioning hooks, and just-in-time provisioning by a CA's
// registrationConfig, bulk registration tasks over input files in the object store, and the bootstrap
// flow (fleetcore's extension: an identifier and a secret from manufacturing for a certificate).
#include "platform/service.hpp"
#include "objects/links.hpp"
#include "provisioning/bootstrap.hpp"
#include "provisioning/bulk.hpp"
#include "provisioning/fleet.hpp"
#include "provisioning/hook_caller.hpp"
#include "provisioning/jitp.hpp"
#include "provisioning/templates.hpp"

namespace fleetcore::provisioning {

struct settings {
  hook_settings hooks;
  bootstrap_settings bootstrap;
};

class module final : public platform::service {
 public:
  module(platform::core& core, settings s, objects::links objects);

  std::string_view name() const override { return "provisioning"; }
  common::aws_operations operations() override;
  /// Resumes a bulk registration task a restart interrupted.
  void start() override;
  /// Stops the hook caller's thread (no verdict arrives once the API thread is gone).
  void stop() override;
  template_service& templates() { return templates_; }
  /// fleetcore's bootstrap endpoints, which the server serves on the api listener.
  bootstrap_service& bootstrap() { return bootstrap_; }

 private:
  registry::registry& registry_;
  template_service templates_;
  hook_caller hooks_;
  fleet_service fleet_;
  jitp_service jitp_;
  bulk_registration bulk_;
  bootstrap_service bootstrap_;
};

}  // namespace fleetcore::provisioning
