#pragma once
// The data plane for devices over HTTPS with their client certificate, as AWS IoT serves it on
// port 8443: no SigV4; each request is authorized by the policies of the certificate
// (iot:Publish and iot:RetainPublish on topic/..., iot:GetThingShadow, iot:UpdateThingShadow,
// iot:DeleteThingShadow on thing/<thing>[/<shadow>], iot:ListNamedShadowsForThing on thing/<thing>).
#include "api/api_server.hpp"
#include "auth/arn_access.hpp"

namespace fleetcore::api {

/// Binds a device request to a data-plane route, authorizes it and runs it with `data_plane`.
/// Blocks until the operation completes: call it off the MQTT workers.
api_server::response device_request(const auth::arn_access& access, const api_server::handler& data_plane,
                                    std::string_view method, std::string_view target,
                                    const std::vector<std::pair<std::string, std::string>>& headers,
                                    std::string_view body, const auth::connection_info& peer);

}  // namespace fleetcore::api
