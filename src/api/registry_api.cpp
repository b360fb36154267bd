#include "api/registry_api.hpp"

#include <string_view>

namespace fleetcore::api {

namespace {

/// The operations the registry implements (its `ops` table), each answered by `registry::call`.
/// Event configurations answer through the registry as soon as it implements them (until then the
/// registry refuses them as not supported). A route missing here answers UnknownOperationException.
constexpr std::string_view registry_owned[] = {
    "CreateThing", "DescribeThing", "UpdateThing", "DeleteThing", "ListThings",
    "CreateThingType", "DescribeThingType", "DeprecateThingType", "DeleteThingType", "ListThingTypes",
    "CreateThingGroup", "DescribeThingGroup", "UpdateThingGroup", "DeleteThingGroup", "ListThingGroups",
    "AddThingToThingGroup", "RemoveThingFromThingGroup", "ListThingsInThingGroup", "ListThingGroupsForThing",
    "CreateKeysAndCertificate", "CreateCertificateFromCsr", "GetRegistrationCode", "RegisterCACertificate",
    "RegisterCertificate", "RegisterCertificateWithoutCA", "UpdateCertificate", "UpdateCACertificate",
    "DeleteCertificate", "DeleteCACertificate", "DescribeCertificate", "DescribeCACertificate",
    "ListCertificates", "ListCertificatesByCA", "ListCACertificates", "ImportCACertificateRevocationList",
    "AttachThingPrincipal", "DetachThingPrincipal", "ListThingPrincipals", "ListPrincipalThings",
    "CreatePolicy", "CreatePolicyVersion", "GetPolicy", "GetPolicyVersion", "ListPolicies", "ListPolicyVersions",
    "DeletePolicy", "DeletePolicyVersion", "SetDefaultPolicyVersion", "AttachPolicy", "DetachPolicy",
    "ListAttachedPolicies", "ListTargetsForPolicy", "GetEffectivePolicies", "DescribeEndpoint",
    "UpdateEventConfigurations", "DescribeEventConfigurations",
};

}  // namespace

common::aws_operations registry_operations(registry::registry& r) {
  auto call = [&r](std::string_view op, const boost::json::object& input) {
    auto out = r.call(op, input);
    if (out.error) return common::aws_response::error(out.error->status, out.error->code, out.error->message);
    return common::aws_response::ok(boost::json::serialize(out.body));
  };
  common::aws_operations ops;
  for (auto op : registry_owned) ops.emplace_back(std::string(op), call);
  return ops;
}

}  // namespace fleetcore::api
