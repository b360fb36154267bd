#pragma once
// The seams other layers plug into: authorization (issue: identity and policies) and message hooks
// (shadows, jobs, rules). The router never calls those modules directly.
#include "broker/client_connection.hpp"
#include "mqtt/errors.hpp"

#include <string_view>

namespace fleetcore::broker {

/// Authorization decisions for one connection. Called on the connection's worker thread; an
/// implementation caches per connection. Return `success` to allow, or the reason code to refuse with.
class access_policy {
 public:
  virtual ~access_policy() = default;
  virtual mqtt::reason_code authorize_connect(const connection_info& c, std::string_view client_id) = 0;
  virtual mqtt::reason_code authorize_publish(const connection_info& c, std::string_view client_id,
                                              std::string_view topic, bool retain) = 0;
  virtual mqtt::reason_code authorize_subscribe(const connection_info& c, std::string_view client_id,
                                                std::string_view filter) = 0;
};

/// The development default for the plain TCP listener: everything is allowed.
class allow_all_policy final : public access_policy {
 public:
  mqtt::reason_code authorize_connect(const connection_info&, std::string_view) override {
    return mqtt::reason_code::success;
  }
  mqtt::reason_code authorize_publish(const connection_info&, std::string_view, std::string_view,
                                      bool) override {
    return mqtt::reason_code::success;
  }
  mqtt::reason_code authorize_subscribe(const connection_info&, std::string_view, std::string_view) override {
    return mqtt::reason_code::success;
  }
};

}  // namespace fleetcore::broker
