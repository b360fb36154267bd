#include "api/registry_api.hpp"

namespace fleetcore::api {

common::aws_operations registry_operations(registry::registry& r) {
  auto call = [&r](std::string_view op, const boost::json::object& input) {
    auto out = r.call(op, input);
    if (out.error) return common::aws_response::error(out.error->status, out.error->code, out.error->message);
    return common::aws_response::ok(boost::json::serialize(out.body));
  };
  common::aws_operations ops;
  // The registry's own table names what it owns: no second list to keep in step.
  for (auto op : registry::registry::operations()) ops.emplace_back(std::string(op), call);
  return ops;
}

}  // namespace fleetcore::api
