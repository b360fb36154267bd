#pragma once
// The data plane for devices over HTTPS with their client certificate, as AWS IoT serves it on
// port 8443: no SigV4; each request is authorized by the policies of the certificate
// (iot:Publish and iot:RetainPublish on topic/..., iot:GetThingShadow, iot:UpdateThingShadow,
// iot:DeleteThingShadow on thing/<thing>[/<shadow>], iot:ListNamedShadowsForThing on thing/<thing>;
// iot:GetPendingJobExecutions, iot:StartNextPendingJobExecution, iot:DescribeJobExecution,
// iot:UpdateJobExecution on thing/<thing>).
#include "api/operations.hpp"
#include "auth/arn_access.hpp"
#include "common/aws_api.hpp"

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fleetcore::api {

/// Binds a device request to a route of the iot-data or iot-jobs-data API, authorizes it and runs it with the
/// operation its module registered in `operations`. Blocks until the operation completes: call it on
/// the API thread.
common::aws_response device_request(const auth::arn_access& access, operation_table& operations,
                                    std::string_view method, std::string_view target,
                                    const std::vector<std::pair<std::string, std::string>>& headers,
                                    std::string_view body, const auth::connection_info& peer);

}  // namespace fleetcore::api
