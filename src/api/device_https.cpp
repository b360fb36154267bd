#include "api/device_https.hpp"

#include "common/log.hpp"

#include <boost/beast/core/string.hpp>

namespace fleetcore::api {

namespace json = boost::json;

namespace {

api_server::response forbidden() {
  return {403, R"({"message":"Forbidden"})", "ForbiddenException"};
}

std::string member(const json::object& in, std::string_view key) {
  auto* v = in.if_contains(key);
  return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

}  // namespace

api_server::response device_request(const auth::arn_access& access, const api_server::handler& data_plane,
                                    std::string_view method, std::string_view target,
                                    const std::vector<std::pair<std::string, std::string>>& headers,
                                    std::string_view body, const auth::connection_info& peer) {
  auto header = [&](std::string_view lower) -> std::optional<std::string> {
    for (const auto& [k, v] : headers)
      if (boost::beast::iequals(k, lower)) return v;
    return std::nullopt;
  };
  auto bound = bind_request(method, target, header, body);
  if (auto* e = std::get_if<bind_error>(&bound)) return {e->status, json::serialize(json::object{{"message", e->message}}), e->code};
  auto& req = std::get<bound_request>(bound);
  if (std::string_view(req.op->service) != "iotdata")
    return {404, R"({"message":"not a device operation"})", "UnknownOperationException"};
  std::string_view op = req.op->operation;
  const std::string& arn_prefix = access.arn_prefix();
  std::vector<std::pair<std::string, std::string>> checks;  // (action, resource)
  if (op == "Publish") {
    std::string topic = member(req.input, "topic");
    checks.emplace_back("iot:Publish", arn_prefix + "topic/" + topic);
    if (auto* r = req.input.if_contains("retain"); r && r->is_bool() && r->as_bool())
      checks.emplace_back("iot:RetainPublish", arn_prefix + "topic/" + topic);
  } else {
    std::string resource = arn_prefix + "thing/" + member(req.input, "thingName");
    if (auto name = member(req.input, "shadowName"); !name.empty() && op != "ListNamedShadowsForThing")
      resource += "/" + name;
    checks.emplace_back("iot:" + std::string(op), resource);
  }
  for (const auto& [action, resource] : checks) {
    if (!access.decide(peer, "", action, resource)) {
      FC_LOG_INFO("auth.denied", "listener=https certificate={} action={} resource={}", peer.certificate_id.substr(0, 12),
                  action, common::untrusted(resource));
      return forbidden();
    }
  }
  return data_plane(*req.op, req.input);
}

}  // namespace fleetcore::api
