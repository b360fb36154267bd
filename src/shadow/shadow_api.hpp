#pragma once
// The Device Shadow REST API (iot-data): GetThingShadow, UpdateThingShadow, DeleteThingShadow and
// ListNamedShadowsForThing, answered by the shadow service with AWS's statuses and error types; the
// body of an answer is the shadow's own response or error document.
#include "common/aws_api.hpp"
#include "shadow/shadow_service.hpp"

namespace fleetcore::shadow {

/// The operations, for the API to route to. Each blocks its caller (the API thread) until the shadow
/// thread has answered, after the change is durable. `shadows` must outlive the API.
common::aws_operations api_operations(shadow_service& shadows);

}  // namespace fleetcore::shadow
