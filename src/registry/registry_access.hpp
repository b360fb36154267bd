#pragma once
// The access policy of clients with a certificate: the policies attached to the certificate and to
// the thing groups (and their ancestors) of the thing the connection is, evaluated with AWS IoT's
// thing and certificate policy variables. Cached decisions last until the registry changes.
#include "auth/arn_access.hpp"
#include "registry/registry.hpp"

namespace fleetcore::registry {

class registry_access final : public auth::arn_access {
 public:
  explicit registry_access(const registry& r);

  bool decide(const auth::connection_info& c, std::string_view client_id, std::string_view action,
              const std::string& resource) const override;

 protected:
  std::uint64_t generation() const override { return registry_.generation(); }

 private:
  const registry& registry_;
};

}  // namespace fleetcore::registry
