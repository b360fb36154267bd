#pragma once
// Which module answers which AWS operation: handlers keyed by operation name, registered by the
// modules that own them (through `server`), looked up after a request is bound to its route. A route
// that no module owns answers UnknownOperationException, as an operation AWS does not have would.
#include "api/routes.hpp"
#include "common/aws_api.hpp"
#include "common/metrics.hpp"

#include <map>
#include <string>
#include <string_view>

namespace fleetcore::api {

class operation_table {
 public:
  /// Registers the operations a module owns. Each must be an operation of the route table and owned
  /// by one module only (checked: a wiring bug aborts). Before the API starts. A name may be qualified
  /// by its model, `<service>:<operation>` (`iot-jobs-data:DescribeJobExecution`), for an operation
  /// whose name another API also uses; the qualified handler wins for that model's routes.
  void add(const common::aws_operations& ops);
  bool owns(std::string_view operation) const { return handlers_.contains(operation); }

  /// Runs the operation bound to `r` (API thread). A success is sent with the route's status.
  common::aws_response run(const route& r, const boost::json::object& input);
  /// The answer to a request no route or no module serves, counted.
  common::aws_response unknown(std::string_view message);

  void register_metrics(common::registry& m) const;

 private:
  std::map<std::string, common::aws_operation, std::less<>> handlers_;
  common::counter unknown_;
};

}  // namespace fleetcore::api
