#include "api/operations.hpp"

#include "common/log.hpp"

#include <algorithm>
#include <map>
#include <set>

namespace fleetcore::api {

namespace {
/// A handler's name for route `r`: its operation, or `<service>:<operation>` (see operation_table::add).
std::string qualified(const route& r) { return std::string(r.service) + ":" + r.operation; }

/// The operation names that routes of two models share (DescribeJobExecution...), found once.
const std::set<std::string, std::less<>>& shared_names() {
  static const auto names = [] {
    std::map<std::string_view, std::string_view> model_of;
    std::set<std::string, std::less<>> out;
    for (const auto& r : routes())
      if (auto [it, first] = model_of.emplace(r.operation, r.service); !first && it->second != r.service)
        out.emplace(r.operation);
    return out;
  }();
  return names;
}
}  // namespace

void operation_table::add(const common::aws_operations& ops) {
  for (const auto& op : ops) {
    const auto& name = op.first;  // not a structured binding: clang 14 cannot capture one in a lambda
    FC_CHECK(op.second);
    FC_CHECK(std::ranges::any_of(routes(), [&](const route& r) { return name == r.operation || name == qualified(r); }));
    FC_CHECK(handlers_.emplace(name, op.second).second);
  }
}

common::aws_response operation_table::run(const route& r, const boost::json::object& input) {
  auto h = handlers_.find(qualified(r));
  // A plain name is the handler of the model that has that operation alone, or of iot's when two
  // models share the name: another model's route never reaches it.
  if (h == handlers_.end() && (std::string_view(r.service) == "iot" || !shared_names().contains(r.operation)))
    h = handlers_.find(std::string_view(r.operation));
  if (h == handlers_.end()) return unknown("operation " + std::string(r.operation) + " is not supported");
  auto out = h->second(h->first, input);
  if (!out.failed() && out.status == 200) out.status = r.status;
  return out;
}

common::aws_response operation_table::unknown(std::string_view message) {
  unknown_.inc();
  return common::aws_response::error(404, "UnknownOperationException", message);
}

void operation_table::register_metrics(common::registry& m) const {
  m.add(unknown_, "fleetcore_api_unknown_operations_total", "",
        "API requests for an operation fleetcore does not serve: no route, or a route no module owns.");
}

}  // namespace fleetcore::api
