#pragma once
// access_policy for clients with a certificate: the policies attached to the certificate and to the
// thing groups (and their ancestors) of the thing the connection is, evaluated with AWS IoT's policy
// variables. Decisions are cached per connection until the registry changes.
#include "auth/access.hpp"
#include "registry/registry.hpp"

namespace fleetcore::registry {

class registry_access final : public auth::access_policy {
 public:
  explicit registry_access(const registry& r);

  mqtt::reason_code authorize_connect(const auth::connection_info& c, std::string_view client_id) override;
  mqtt::reason_code authorize_publish(const auth::connection_info& c, std::string_view client_id,
                                      std::string_view topic, bool retain) override;
  mqtt::reason_code authorize_subscribe(const auth::connection_info& c, std::string_view client_id,
                                        std::string_view filter) override;
  bool authorize_receive(const auth::connection_info& c, std::string_view client_id, std::string_view topic) override;

  /// Evaluates one request without the cache (benchmarks, diagnostics).
  bool evaluate(const auth::connection_info& c, std::string_view client_id, std::string_view action,
                std::string_view resource) const;

  void register_metrics(common::registry& m) const;

 private:
  bool allowed(const auth::connection_info& c, std::string_view client_id, std::string_view action,
               std::string_view kind, std::string_view name);

  const registry& registry_;
  std::string arn_prefix_;
  common::counter cache_hits_, cache_misses_;
};

}  // namespace fleetcore::registry
