#pragma once
// AWS IoT provisioning templates (the Guide's provision-template.md): a template body is parsed once
// (`parse_template`: Parameters, Resources, Mappings, DeviceConfiguration, each resource's type,
// properties and OverrideSettings checked for shape) and evaluated with a provisioning's parameters
// (`evaluate`: Ref, Fn::Join, Fn::Select, Fn::FindInMap, Fn::Split, Fn::Sub resolved) into a `plan`:
// the thing, certificate and policies to create or reuse, and the device configuration. What the
// Guide does not document (Conditions, Fn::If, other resource types, nested DeviceConfiguration) is
// refused with a message saying so, never ignored.
//
// Pure functions over Boost.JSON, no I/O: unit-tested and fuzzed (fuzz/provisioning_template.cpp).
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fleetcore::provisioning {

/// What to do when a resource the template declares already exists (OverrideSettings).
enum class on_existing : std::uint8_t { do_nothing, replace, fail, merge };

struct thing_resource {
  std::string logical;
  std::string name;
  std::optional<std::map<std::string, std::string>> attributes;  // AttributePayload
  std::optional<std::string> type;                               // ThingTypeName
  std::optional<std::vector<std::string>> groups;                // ThingGroups
  std::optional<std::string> billing_group;                      // BillingGroup (kept, not modelled)
  on_existing attributes_rule = on_existing::replace, type_rule = on_existing::replace,
              groups_rule = on_existing::replace;
};

struct certificate_resource {
  std::string logical;
  // Exactly one way to name it.
  std::optional<std::string> csr, id, pem;
  std::optional<std::string> ca_pem;  // with `pem`
  std::string status = "ACTIVE";      // ACTIVE or INACTIVE
  on_existing status_rule = on_existing::replace;
};

struct policy_resource {
  std::string logical;
  std::string name;                     // given, or the hash of the document
  std::optional<std::string> document;  // JSON text, when the template declares the policy
};

/// What one provisioning creates or reuses.
struct plan {
  std::optional<thing_resource> thing;
  std::optional<certificate_resource> certificate;
  std::vector<policy_resource> policies;
  std::map<std::string, std::string> device_configuration;
};

/// A parsed template: its sections, checked for shape.
struct parsed_template {
  boost::json::object parameters;  // name -> {Type, Default?}
  boost::json::object mappings;
  boost::json::object resources;
  boost::json::object device_configuration;
};

/// Parses and checks a template body (at most 10,240 bytes); nullopt with `error` set.
std::optional<parsed_template> parse_template(std::string_view body, std::string& error);

/// Evaluates `t` with `parameters` (their Defaults fill the missing ones; pseudo parameters such as
/// AWS::IoT::Certificate::Id are passed in the same map); nullopt with `error` set.
std::optional<plan> evaluate(const parsed_template& t, const std::map<std::string, std::string>& parameters,
                             std::string& error);

/// The names of the parameters `t` declares, for checking what a request passes.
std::vector<std::string> declared_parameters(const parsed_template& t);

}  // namespace fleetcore::provisioning
