#pragma once
// The operations behind the API's routes, per service: the control plane (the registry) and the data
// plane (shadows, HTTP publish). Each maps its domain's outcome to the HTTP answer AWS gives.
#include "api/api_server.hpp"
#include "broker/broker.hpp"
#include "registry/registry.hpp"
#include "shadow/shadow_service.hpp"

namespace fleetcore::api {

/// Control plane: registry::call, AWS error shapes.
api_server::handler control_plane(registry::registry& r);
/// Data plane: Get/Update/DeleteThingShadow, ListNamedShadowsForThing (shadow service) and Publish
/// (into the broker; QoS 1 answered once stored for persistent subscribers).
api_server::handler data_plane(shadow::shadow_service& shadows, broker::broker& b);

}  // namespace fleetcore::api
