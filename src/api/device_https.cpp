#include "api/device_https.hpp"

#include "common/json_members.hpp"
#include "common/log.hpp"

#include <boost/beast/core/string.hpp>

namespace fleetcore::api {

namespace {

/// The APIs a device's request may reach: it carries no signature, so the port decides (AWS serves the
/// device data plane on 8443). Their paths are disjoint: iot-data's /topics and /things/{t}/shadow,
/// iot-jobs-data's /things/{t}/jobs.
constexpr std::string_view device_apis[] = {"iotdata", "iot-jobs-data"};

std::string text(const boost::json::object& in, std::string_view key) {
  return std::string(common::text_member(in, key).value_or(""));
}

}  // namespace

common::aws_response device_request(const auth::arn_access& access, operation_table& operations,
                                    std::string_view method, std::string_view target,
                                    const std::vector<std::pair<std::string, std::string>>& headers,
                                    std::string_view body, const auth::connection_info& peer) {
  auto header = [&](std::string_view lower) -> std::optional<std::string> {
    for (const auto& [k, v] : headers)
      if (boost::beast::iequals(k, lower)) return v;
    return std::nullopt;
  };
  auto bound = bind_request(device_apis[0], method, target, header, body);
  if (auto* e = std::get_if<bind_error>(&bound); e && e->status == 404)
    bound = bind_request(device_apis[1], method, target, header, body);
  if (auto* e = std::get_if<bind_error>(&bound))
    return e->status == 404 ? operations.unknown(e->message) : common::aws_response::from(*e);
  auto& req = std::get<bound_request>(bound);
  std::string_view op = req.op->operation;
  const std::string& arn_prefix = access.arn_prefix();
  std::vector<std::pair<std::string, std::string>> checks;  // (action, resource)
  if (op == "Publish") {
    std::string topic = text(req.input, "topic");
    checks.emplace_back("iot:Publish", arn_prefix + "topic/" + topic);
    if (common::bool_member(req.input, "retain").value_or(false))
      checks.emplace_back("iot:RetainPublish", arn_prefix + "topic/" + topic);
  } else {
    // The resource is the thing the operation acts on: a named shadow's for the three shadow
    // operations, the thing's for the others (a jobs request that carries a `shadowName` in its body
    // must not be checked against another resource than the one it changes).
    std::string resource = arn_prefix + "thing/" + text(req.input, "thingName");
    const bool shadow = op == "GetThingShadow" || op == "UpdateThingShadow" || op == "DeleteThingShadow";
    if (auto name = text(req.input, "shadowName"); shadow && !name.empty()) resource += "/" + name;
    checks.emplace_back("iot:" + std::string(op), resource);
  }
  for (const auto& [action, resource] : checks) {
    if (!access.decide(peer, "", action, resource)) {
      FC_LOG_INFO("auth.denied", "listener=https certificate={} action={} resource={}", peer.certificate_id.substr(0, 12),
                  action, common::untrusted(resource));
      return common::aws_response::error(403, "ForbiddenException", "Forbidden");
    }
  }
  return operations.run(*req.op, req.input);
}

}  // namespace fleetcore::api
