#pragma once
// The seams other layers plug into. Authorization is auth's interface; services that answer
// requests on reserved topics (shadows, later jobs and rules) are message hooks, so that the router
// never calls those modules directly.
#include "auth/access.hpp"
#include "broker/message.hpp"

#include <string_view>

namespace fleetcore::broker {

using access_policy = auth::access_policy;
using allow_all_policy = auth::allow_all_policy;

/// A service listening to published messages. Registered before the broker starts.
class message_hook {
 public:
  virtual ~message_hook() = default;
  /// Topics only the service publishes on (e.g. shadow /accepted): clients are refused (0x87).
  /// Any thread.
  virtual bool is_response_topic(std::string_view topic) const = 0;
  /// Called for every authorized client (or HTTP) publish, on the publisher's worker, before routing;
  /// must only hand the message off (the message is also routed as usual).
  virtual void on_publish(const message_ptr& m) = 0;
};

}  // namespace fleetcore::broker
