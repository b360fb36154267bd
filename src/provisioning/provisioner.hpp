#pragma once
// Carries out a provisioning: a template evaluated with its parameters (template.hpp) becomes one
// registry transaction (the registry's internal fleetcore:Provision: thing, certificate, policies and
// their links, all or nothing). Shared by RegisterThing and, next, fleet provisioning by claim, JITP
// and bulk registration.
//
// Threads: the registry's control thread (the API thread).
#include "common/aws_api.hpp"
#include "provisioning/template.hpp"
#include "registry/registry.hpp"

#include <map>
#include <optional>
#include <string>

namespace fleetcore::provisioning {

struct provisioned {
  std::map<std::string, std::string> resource_arns;  // by the template's logical names
  std::optional<std::string> certificate_pem;        // a certificate signed from the template's CSR
  std::string thing_name;
  std::map<std::string, std::string> device_configuration;
};

/// The plan as fleetcore:Provision reads it.
boost::json::object registry_plan(const plan& p);

/// Evaluates `t` with `parameters` and provisions what it names; an AWS error (InvalidRequestException
/// for the template, the registry's errors for the resources) or what was provisioned.
std::optional<provisioned> provision(registry::registry& reg, const parsed_template& t,
                                     const std::map<std::string, std::string>& parameters, common::aws_response& error);

/// Provisions `t` for certificate `certificate_id`, one made for this provisioning (fleet
/// provisioning's token, JITP's auto-registered certificate, a bootstrap's CSR): it is passed as
/// AWS::IoT::Certificate::Id, the template must provision it and no other certificate, and the
/// template's Status applies to it whatever its OverrideSettings say.
std::optional<provisioned> provision_certificate(registry::registry& reg, const parsed_template& t,
                                                 std::map<std::string, std::string> parameters,
                                                 const std::string& certificate_id, common::aws_response& error);

/// RegisterThing (templateBody, parameters): {certificatePem?, resourceArns}.
common::aws_response register_thing(registry::registry& reg, const boost::json::object& in);

}  // namespace fleetcore::provisioning
