#pragma once
// The bootstrap flow (the IoT Lens' provisioning: a device known at manufacturing obtains its
// identity in the field), a fleetcore extension beside AWS's APIs. The manufacturer registers each
// device in bulk by an identifier and a random secret burned into it, with the fleet provisioning
// template that provisions it and that device's template parameters; in the field the device, which
// has no certificate at all, POSTs its identifier, its secret and a CSR over HTTPS and gets its
// certificate, its thing provisioned by the template (as fleet provisioning does), in one answer.
//
//   admin (SigV4-signed, like any operation):
//     POST /fleetcore/bootstrap-identities  {"templateName", "identities": [{"deviceId", "secret",
//                                            "parameters"?: {k: v}}]}  -> {"registered": n}
//     GET  /fleetcore/bootstrap-identities/<deviceId>  -> {"deviceId", "templateName", "status":
//                                            UNUSED|USED, "certificateId"?, "creationDate", "usedDate"?}
//   device (unsigned, over the api listener's TLS):
//     POST /fleetcore/bootstrap/certificate {"deviceId", "secret", "certificateSigningRequest"}
//       -> {"certificateId", "certificatePem", "thingName", "deviceConfiguration"}
//
// Single use: an identity is marked USED (durably) before anything is provisioned, and back to
// UNUSED only if the provisioning fails; a second request, even with the right secret, is refused —
// unless it carries a CSR of the same key, which gets the same answer again (a device whose answer
// was lost retries without being locked out, and learns nothing new). An identity left USED without
// a certificate by a crash is taken as unused.
// Rate limited: token buckets per source address (an IPv6 address by its /64) and for the whole
// listener, on the steady clock; every attempt counts, a throttled one gets 429 ThrottlingException. Secrets are kept as salted HMAC-SHA-256 digests
// (they must be random, at least 16 characters: a manufacturing secret, not a password), compared in
// constant time; an unknown identifier and a wrong secret get the same 401.
//
// Threads: the API thread.
#include "common/aws_api.hpp"
#include "common/clock.hpp"
#include "common/metrics.hpp"
#include "common/rate_limiter.hpp"
#include "provisioning/templates.hpp"
#include "registry/registry.hpp"
#include "storage/store.hpp"

#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>

namespace fleetcore::provisioning {

struct bootstrap_settings {
  double per_address_per_s = 1;   // refill of one source address's bucket
  double per_address_burst = 10;
  double global_per_s = 200;      // refill of the listener's bucket
  double global_burst = 400;
};

class bootstrap_service {
 public:
  /// Loads the stored identities; throws std::runtime_error if one is unreadable.
  bootstrap_service(registry::registry& reg, template_service& templates, storage::store& store, common::clock& clock,
                    bootstrap_settings s = {});

  /// The admin's endpoints (rest: "" or "/<deviceId>"). API thread.
  common::aws_response admin(std::string_view method, std::string_view rest, std::string_view body);
  /// The device's endpoint. API thread.
  common::aws_response device(std::string_view method, std::string_view body, std::string_view peer);
  void register_metrics(common::registry& r) const;

 private:
  struct identity {
    std::string salt, digest, template_name, status = "UNUSED", certificate_id;
    std::string key_digest, answer;  // once USED: the CSR's public key, and what the device was answered
    std::map<std::string, std::string> parameters;
    std::int64_t created_ms = 0, used_ms = 0;
    std::string to_json() const;
    static std::optional<identity> from_json(std::string_view body);
  };
  common::aws_response register_identities(std::string_view body);
  common::aws_response describe(const std::string& id) const;
  bool save(const std::string& id, const identity& i);

  registry::registry& registry_;
  template_service& templates_;
  storage::store& store_;
  common::clock& clock_;
  std::map<std::string, identity, std::less<>> identities_;
  common::rate_limiter limiter_;
  common::counter issued_, refused_, throttled_;
};

}  // namespace fleetcore::provisioning
