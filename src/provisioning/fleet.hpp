#pragma once
// Fleet provisioning by claim over MQTT (the Guide's fleet-provision-api.md): a device connected with a
// claim certificate asks for a certificate on `$aws/certificates/create/json` (keys made here) or
// `$aws/certificates/create-from-csr/json` (its CSR signed), gets it with a certificate ownership
// token, then registers itself with `$aws/provisioning-templates/<name>/provision/json`
// ({certificateOwnershipToken, parameters}): the template is evaluated with the parameters and
// AWS::IoT::Certificate::Id, and its thing, certificate status and policies are provisioned in one
// transaction (provisioner.hpp); the answer carries the thing's name and the DeviceConfiguration.
// Every answer goes to the requesting session alone: a private key never reaches another client of
// the same claim certificate. Errors as AWS sends them: {statusCode, errorCode, errorMessage}.
//
// Tokens are kept in the store (kind `provisioning_token`) and expire after an hour; a certificate
// whose token expired unused is deleted (at the next fleet provisioning request after the expiry).
// In JSON or CBOR: a CBOR request (…/cbor) is answered in CBOR, with the same members.
//
// A template with a pre-provisioning hook (hooks.hpp) asks it first: the hook's verdict comes on the
// hook thread and the provisioning goes on on the control thread, with the hook's parameterOverrides
// merged and the token checked again; a refusal or no answer within 5 s is 403 AccessDenied.
//
// Threads: requests are admitted on the publisher's worker (a few per session at once) and carried
// out on the registry's control thread (`registry::defer`, the API thread).
#include "broker/hooks.hpp"
#include "common/clock.hpp"
#include "common/inflight_gate.hpp"
#include "common/metrics.hpp"
#include "provisioning/hooks.hpp"
#include "provisioning/templates.hpp"
#include "registry/registry.hpp"
#include "storage/store.hpp"

#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <variant>
#include <unordered_map>

namespace fleetcore::provisioning {

struct fleet_settings {
  std::int64_t token_ttl_ms = 3'600'000;
  std::int64_t claim_ttl_ms = 300'000;
  int max_inflight_per_session = 4;
};

class fleet_service final : public broker::broker_hook {
 public:
  /// Loads the stored tokens. Control thread (before the broker starts). `hooks` calls templates'
  /// pre-provisioning hooks (none: a template with a hook refuses every device).
  fleet_service(registry::registry& reg, template_service& templates, storage::store& store, common::clock& clock,
                fleet_settings s = {}, hooks* hook_calls = nullptr);

  /// Delivers an answer to the session that asked, and to no one else.
  std::function<void(const std::string& client_id, std::uint64_t session, std::string topic, std::string payload)> reply;
  /// Devices' requests in flight per session; the server sets where a release waits (inflight_gate).
  common::inflight_gate& inflight() { return inflight_; }

  broker::topic_claim claim(std::string_view topic) const override;
  bool on_message(const broker::message_ptr& m, const broker::publish_context& ctx) override;

  /// CreateProvisioningClaim (templateName): a temporary claim certificate of a fleet provisioning
  /// template, valid `claim_ttl_ms` (5 minutes), deleted after. Control thread.
  common::aws_response create_claim(const boost::json::object& in);
  /// Deletes the certificates whose token expired unused, and expired claims. Control thread.
  void expire();
  void register_metrics(common::registry& r) const;

 private:
  struct request {
    std::string topic, payload, client_id, claim_certificate;
    std::uint64_t session = 0;
  };
  struct token {
    std::string certificate_id;
    std::int64_t expires_ms = 0;
  };
  /// An answer's members, or a refusal (`code` set, the message in "errorMessage").
  struct result {
    boost::json::object body;
    std::string code;
    int status = 400;
  };
  /// A token and template found good for provisioning.
  struct claim_check {
    std::shared_ptr<const provisioning_template> tmpl;
    parsed_template parsed;
    std::string certificate_id;
  };
  static result refusal(std::string code, std::string message, int status = 400);
  /// Carries out a request on the control thread; answers it now or, after a hook, later.
  void handle(const request& r);
  /// Sends the answer to the session that asked, and ends the request. Control thread.
  void answer(const request& r, result out);
  /// Makes the certificate and its token; answers once the token is durable.
  void create_certificate(const request& r, const boost::json::object& in, bool from_csr);
  void register_thing(const request& r, const boost::json::object& in, std::string_view template_name);
  std::variant<claim_check, result> check_claim(const std::string& token, std::string_view template_name);
  result provision_claimed(const request& r, const std::string& token, const claim_check& claim,
                           std::map<std::string, std::string> parameters);

  registry::registry& registry_;
  template_service& templates_;
  storage::store& store_;
  common::clock& clock_;
  fleet_settings settings_;
  hooks* hooks_;
  std::map<std::string, token> tokens_;  // control thread only
  std::set<std::string> busy_tokens_;    // waiting for a hook's verdict (control thread)
  std::set<std::pair<std::int64_t, std::string>> token_expiry_;  // (expiry, token), control thread
  std::set<std::pair<std::int64_t, std::string>> claim_expiry_;  // (expiry, claim certificate id)

  common::inflight_gate inflight_{settings_.max_inflight_per_session};  // devices' requests in flight
  common::counter certificates_, provisioned_, rejected_, expired_, hooks_denied_, claims_made_;
};

}  // namespace fleetcore::provisioning
