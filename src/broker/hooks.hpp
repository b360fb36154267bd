#pragma once
// The seams other layers plug into. Authorization is auth's interface; message hooks for shadows,
// jobs and rules will be declared here, so that the router never calls those modules directly.
#include "auth/access.hpp"

namespace fleetcore::broker {

using access_policy = auth::access_policy;
using allow_all_policy = auth::allow_all_policy;

}  // namespace fleetcore::broker
