#pragma once
// The registry's AWS operations (things, types, groups, certificates, CAs, policies, principals,
// event configurations), answered by `registry::call` with AWS's error shapes.
//
// TODO(issue 10): this binding belongs to the registry module (registry/registry_api.cpp), as
// shadow/shadow_api.cpp does for shadows, listing its operations from its own `ops` table; it sits
// here, with its own list, until the registry's files are free.
#include "common/aws_api.hpp"
#include "registry/registry.hpp"

namespace fleetcore::api {

/// `r` must outlive the API.
common::aws_operations registry_operations(registry::registry& r);

}  // namespace fleetcore::api
