#pragma once
// Fleet provisioning as a platform service: provisioning templates and their versions (the control
// plane), and RegisterThing (a template and its parameters, provisioned in one transaction). The device side ($aws/certificates/create..., $aws/provisioning-templates/.../provision),
// RegisterThing, JITP and bulk registration build on the templates next (issue 14).
#include "platform/service.hpp"
#include "provisioning/fleet.hpp"
#include "provisioning/templates.hpp"

namespace fleetcore::provisioning {

class module final : public platform::service {
 public:
  explicit module(platform::core& core);

  std::string_view name() const override { return "provisioning"; }
  common::aws_operations operations() override;
  template_service& templates() { return templates_; }

 private:
  registry::registry& registry_;
  template_service templates_;
  fleet_service fleet_;
};

}  // namespace fleetcore::provisioning
