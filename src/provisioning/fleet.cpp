#include "provisioning/fleet.hpp"

#include "common/hex.hpp"
#include "common/json_members.hpp"
#include "common/log.hpp"
#include "provisioning/cbor_json.hpp"
#include "provisioning/provisioner.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <openssl/rand.h>

#include <stdexcept>

namespace fleetcore::provisioning {

namespace json = boost::json;

namespace {
constexpr std::string_view k_kind = "provisioning_token";
constexpr std::string_view k_claim_kind = "provisioning_claim";
constexpr std::string_view k_create = "$aws/certificates/create/";
constexpr std::string_view k_create_csr = "$aws/certificates/create-from-csr/";
constexpr std::string_view k_templates = "$aws/provisioning-templates/";

/// The template name of `$aws/provisioning-templates/<name>/provision/<format>[/...]`, or empty.
std::string_view template_of(std::string_view topic) {
  if (!topic.starts_with(k_templates)) return {};
  topic.remove_prefix(k_templates.size());
  auto slash = topic.find('/');
  if (slash == std::string_view::npos || !topic.substr(slash + 1).starts_with("provision/")) return {};
  return topic.substr(0, slash);
}

/// The request's format: what follows the operation ("json", "cbor", or anything a client wrote).
std::string_view format_of(std::string_view topic) {
  auto slash = topic.rfind('/');
  return slash == std::string_view::npos ? std::string_view() : topic.substr(slash + 1);
}
}  // namespace

fleet_service::fleet_service(registry::registry& reg, template_service& templates, storage::store& store,
                             common::clock& clock, fleet_settings s, hooks* hook_calls)
    : registry_(reg), templates_(templates), store_(store), clock_(clock), settings_(s), hooks_(hook_calls) {
  for (const auto& d : store_.load_documents(std::string(k_kind))) {
    boost::system::error_code ec;
    auto v = json::parse(d.body, ec);
    if (ec || !v.is_object()) throw std::runtime_error("unreadable provisioning token " + d.key.substr(0, 8));
    token t{std::string(common::text_member(v.as_object(), "certificateId").value_or("")),
            common::int_member(v.as_object(), "expiresMs").value_or(0)};
    token_expiry_.emplace(t.expires_ms, d.key);
    tokens_[d.key] = std::move(t);
  }
  for (const auto& d : store_.load_documents(std::string(k_claim_kind)))
    claim_expiry_.emplace(std::strtoll(d.body.c_str(), nullptr, 10), d.key);
}

namespace {
/// What follows a request's prefix: `<format>` for a request, `<format>/accepted|rejected` for an answer.
std::string_view request_rest(std::string_view topic) {
  if (topic.starts_with(k_create)) return topic.substr(k_create.size());
  if (topic.starts_with(k_create_csr)) return topic.substr(k_create_csr.size());
  auto name = template_of(topic);
  if (name.empty()) return {};
  return topic.substr(k_templates.size() + name.size() + std::string_view("/provision/").size());
}
}  // namespace

broker::topic_claim fleet_service::claim(std::string_view topic) const {
  auto rest = request_rest(topic);
  if (rest.empty()) return broker::topic_claim::none;
  auto slash = rest.find('/');
  if (slash == std::string_view::npos) return broker::topic_claim::consumed;  // a request (in any format)
  auto after = rest.substr(slash + 1);
  // The answers are the service's; a filter such as .../json/+ is a device's subscription to them.
  return after == "accepted" || after == "rejected" ? broker::topic_claim::reserved : broker::topic_claim::none;
}

bool fleet_service::on_message(const broker::message_ptr& m, const broker::publish_context& ctx) {
  if (claim(m->topic) != broker::topic_claim::consumed) return false;
  if (m->origin == 0 || ctx.client_id.empty()) return true;  // nobody to answer (HTTP publish, a rule)
  const bool admitted = inflight_.admit(m->origin);
  request r{m->topic, m->payload, std::string(ctx.client_id), ctx.connection ? ctx.connection->certificate_id : "",
            m->origin};
  if (!admitted) {
    rejected_.inc();
    if (reply)
      reply(r.client_id, r.session, r.topic + "/rejected",
            json::serialize(json::object{{"statusCode", 429}, {"errorCode", "Throttled"},
                                         {"errorMessage", "too many provisioning requests in flight on this connection"}}));
    return true;
  }
  registry_.defer([this, r = std::move(r)] { handle(r); });
  return true;
}

void fleet_service::handle(const request& r) {
  expire();
  // The claim must still be good now, not only at its handshake: a temporary claim's five minutes
  // may have run out on a live connection, or the operator deactivated it.
  if (!r.claim_certificate.empty()) {
    auto claim = registry_.call("DescribeCertificate", json::object{{"certificateId", r.claim_certificate}});
    const auto* d = common::object_member(claim.body, "certificateDescription");
    const auto* validity = d ? common::object_member(*d, "validity") : nullptr;
    const auto* not_after = validity ? validity->if_contains("notAfter") : nullptr;
    const bool good = !claim.error && d && common::text_member(*d, "status").value_or("") == "ACTIVE" && not_after &&
                      not_after->is_number() &&
                      not_after->to_number<double>() * 1000 > static_cast<double>(clock_.wall_ms());
    if (!good)
      return answer(r, refusal("AccessDenied", "the claim certificate is no longer valid (expired, not ACTIVE, or gone)", 403));
  }
  const std::string_view format = format_of(r.topic);
  const bool cbor = format == "cbor";
  std::optional<json::value> body;
  if (r.payload.empty()) body = json::object();  // CreateKeysAndCertificate has no payload
  else if (cbor) body = cbor_to_json(r.payload);
  else if (format == "json") {
    boost::system::error_code ec;
    body = json::parse(r.payload, ec);
    if (ec) body.reset();
  }
  if (format != "json" && !cbor)
    return answer(r, refusal("InvalidTopic", "the topic is not a fleet provisioning request: use .../json or .../cbor"));
  if (!body || !body->is_object())
    return answer(r, refusal(cbor ? "InvalidCbor" : "InvalidJson",
                             std::string("the request is not a ") + (cbor ? "CBOR map" : "JSON object")));
  if (r.topic.starts_with(k_create)) return create_certificate(r, body->get_object(), false);
  if (r.topic.starts_with(k_create_csr)) return create_certificate(r, body->get_object(), true);
  register_thing(r, body->get_object(), template_of(r.topic));
}

fleet_service::result fleet_service::refusal(std::string code, std::string message, int status) {
  return result{json::object{{"errorMessage", std::move(message)}}, std::move(code), status};
}

void fleet_service::answer(const request& r, result out) {
  if (!reply) return inflight_.release(r.client_id, r.session);
  const std::string_view format = format_of(r.topic);
  const bool cbor = format == "cbor";
  // An unknown format is answered in JSON on the JSON topic.
  std::string base = r.topic;
  if (format != "json" && !cbor) base = base.substr(0, base.rfind('/') + 1) + "json";
  json::object body = std::move(out.body);
  if (!out.code.empty()) {
    rejected_.inc();
    const std::string message(common::text_member(body, "errorMessage").value_or(""));
    FC_LOG_INFO("provisioning.rejected", "client={:q} topic={:q} code={} message={:q}", common::untrusted(r.client_id),
                common::untrusted(r.topic), out.code, common::untrusted(message));
    body = json::object{{"statusCode", out.status}, {"errorCode", out.code}, {"errorMessage", message}};
  }
  reply(r.client_id, r.session, base + (out.code.empty() ? "/accepted" : "/rejected"),
        cbor ? json_to_cbor(body) : json::serialize(body));
  inflight_.release(r.client_id, r.session);  // behind its answer
}

void fleet_service::create_certificate(const request& r, const json::object& req, bool from_csr) {
  json::object in{{"setAsActive", false}};
  if (from_csr) {
    auto csr = common::text_member(req, "certificateSigningRequest");
    if (!csr) return answer(r, refusal("InvalidRequest", "the request must be {\"certificateSigningRequest\": \"<PEM CSR>\"}"));
    in["certificateSigningRequest"] = *csr;
  }
  auto made = registry_.call(from_csr ? "CreateCertificateFromCsr" : "CreateKeysAndCertificate", in);
  if (made.error)
    return answer(r, refusal(made.error->status >= 500 ? "InternalFailure" : "InvalidRequest", made.error->message,
                             static_cast<int>(made.error->status)));
  const std::string certificate_id(common::text_member(made.body, "certificateId").value_or(""));
  unsigned char raw[32];
  if (RAND_bytes(raw, sizeof raw) != 1) {
    registry_.call("DeleteCertificate", json::object{{"certificateId", certificate_id}});
    return answer(r, refusal("InternalFailure", "no random bytes for the certificate ownership token", 500));
  }
  const std::string token_text = common::hex(raw, sizeof raw);
  token t{certificate_id, clock_.wall_ms() + settings_.token_ttl_ms};
  json::object out{{"certificateId", certificate_id},
                   {"certificatePem", made.body.at("certificatePem")},
                   {"certificateOwnershipToken", token_text}};
  if (const auto* keys = common::object_member(made.body, "keyPair")) out["privateKey"] = keys->at("PrivateKey");
  // Known at once (nobody has the token before the answer), answered once durable: the control thread
  // goes on with other devices meanwhile, and their tokens share a commit.
  token_expiry_.emplace(t.expires_ms, token_text);
  tokens_[token_text] = t;
  store_.submit({storage::op::put_document{
                    {std::string(k_kind), token_text,
                     json::serialize(json::object{{"certificateId", t.certificate_id}, {"expiresMs", t.expires_ms}})}}},
                [this, r, token_text, t, out = std::move(out)](bool durable) mutable {
                  registry_.defer([this, r = std::move(r), token_text = std::move(token_text), t,
                                   out = std::move(out), durable]() mutable {
                    if (durable) {
                      certificates_.inc();
                      return answer(r, result{std::move(out), {}, 200});
                    }
                    token_expiry_.erase({t.expires_ms, token_text});
                    tokens_.erase(token_text);
                    registry_.call("DeleteCertificate", json::object{{"certificateId", t.certificate_id}});  // no owner
                    answer(r, refusal("InternalFailure", "the certificate ownership token could not be stored", 500));
                  });
                });
}

std::variant<fleet_service::claim_check, fleet_service::result> fleet_service::check_claim(
    const std::string& token_text, std::string_view template_name) {
  if (token_text.empty()) return refusal("InvalidCertificateOwnershipToken", "Certificate ownership token cannot be empty.");
  auto token = tokens_.find(token_text);
  if (token == tokens_.end() || token->second.expires_ms <= clock_.wall_ms() || busy_tokens_.contains(token_text))
    return refusal("InvalidCertificateOwnershipToken",
                   "the certificate ownership token is not valid (unknown, used, in use, or older than an hour)");
  auto t = templates_.find(template_name);
  if (!t || !t->enabled || t->type != "FLEET_PROVISIONING")
    return refusal("ResourceNotFound", "there is no enabled fleet provisioning template " + std::string(template_name), 404);
  // The certificate must still be the new one this token was given with (not yet anybody's).
  auto owners = registry_.call("ListPrincipalThings",
                               json::object{{"principal", registry_.arn("cert", token->second.certificate_id)}});
  const auto* things = owners.body.if_contains("things");
  if (owners.error || (things && things->is_array() && !things->as_array().empty()))
    return refusal("InvalidCertificateOwnershipToken", "the token's certificate is gone or already registered");
  std::string message;
  const auto* version = t->version(t->default_version);
  auto parsed = version ? parse_template(version->body, message) : std::nullopt;
  if (!parsed) return refusal("InvalidRequest", "template " + t->name + ": " + message);
  return claim_check{std::move(t), std::move(*parsed), token->second.certificate_id};
}

void fleet_service::register_thing(const request& r, const json::object& in, std::string_view template_name) {
  const std::string token_text(common::text_member(in, "certificateOwnershipToken").value_or(""));
  auto checked = check_claim(token_text, template_name);
  if (auto* refused = std::get_if<result>(&checked)) return answer(r, std::move(*refused));
  auto& claim = std::get<claim_check>(checked);
  std::map<std::string, std::string> parameters;
  if (const auto* ps = common::object_member(in, "parameters"))
    for (const auto& [k, pv] : *ps)
      if (pv.is_string() && !std::string_view(k).starts_with("AWS::"))  // pseudo parameters are the server's
        parameters[std::string(k)] = std::string(pv.get_string());
  if (!claim.tmpl->hook_target) return answer(r, provision_claimed(r, token_text, claim, std::move(parameters)));

  // The hook decides, on its own thread; the token is held meanwhile, and the claim checked again after.
  auto url = hooks_ ? hooks_->url_of(*claim.tmpl->hook_target) : std::nullopt;
  if (!url)
    return answer(r, refusal("AccessDenied",
                             "template " + claim.tmpl->name + "'s pre-provisioning hook " + *claim.tmpl->hook_target +
                                 " is neither an https:// URL nor mapped to one in [provisioning.hooks]",
                             403));
  auto described = registry_.call("DescribeCertificate", json::object{{"certificateId", claim.certificate_id}});
  json::object given;
  for (const auto& [k, v] : parameters) given[k] = v;
  std::string pem;
  if (const auto* d = common::object_member(described.body, "certificateDescription"))
    pem = common::text_member(*d, "certificatePem").value_or("");
  json::object input;
  input["claimCertificateId"] = r.claim_certificate;
  input["certificateId"] = claim.certificate_id;
  input["certificatePem"] = pem;
  input["templateArn"] = templates_.arn(claim.tmpl->name);
  input["clientId"] = r.client_id;
  input["parameters"] = std::move(given);
  busy_tokens_.insert(token_text);
  hooks_->call(*url, json::serialize(input), [this, r, token_text, template_name = claim.tmpl->name,
                                              parameters = std::move(parameters)](hook_verdict v) mutable {
    registry_.defer([this, r = std::move(r), token_text = std::move(token_text), template_name = std::move(template_name),
                     parameters = std::move(parameters), v = std::move(v)]() mutable {
      busy_tokens_.erase(token_text);
      if (!v.allowed) {
        hooks_denied_.inc();
        return answer(r, refusal("AccessDenied", v.reason, 403));
      }
      auto again = check_claim(token_text, template_name);
      if (auto* refused = std::get_if<result>(&again)) return answer(r, std::move(*refused));
      for (auto& [k, val] : v.overrides)
        if (!std::string_view(k).starts_with("AWS::")) parameters[k] = std::move(val);
      answer(r, provision_claimed(r, token_text, std::get<claim_check>(again), std::move(parameters)));
    });
  });
}

fleet_service::result fleet_service::provision_claimed(const request& r, const std::string& token_text,
                                                       const claim_check& claim,
                                                       std::map<std::string, std::string> parameters) {
  const auto& t = *claim.tmpl;
  // A fleet template provisions the token's certificate and no other.
  common::aws_response error;
  auto done = provision_certificate(registry_, claim.parsed, std::move(parameters), claim.certificate_id, error);
  if (!done) {
    boost::system::error_code pe;
    auto body = json::parse(error.body, pe);
    std::string c = error.error_type.ends_with("Exception") ? error.error_type.substr(0, error.error_type.size() - 9)
                                                            : error.error_type;
    return refusal(std::move(c),
                   !pe && body.is_object() ? std::string(common::text_member(body.as_object(), "message").value_or(""))
                                           : error.error_type,
                   static_cast<int>(error.status));
  }
  // The token is used: it names no certificate any more. Not waited for: a token whose deletion a
  // crash lost names a registered certificate, which check_claim refuses and expiry keeps.
  store_.submit({storage::op::delete_document{std::string(k_kind), token_text}}, nullptr);
  if (auto used = tokens_.find(token_text); used != tokens_.end()) {
    token_expiry_.erase({used->second.expires_ms, token_text});
    tokens_.erase(used);
  }
  provisioned_.inc();
  FC_LOG_INFO("provisioning.provisioned", "template={} thing={} client={:q}", t.name, done->thing_name,
              common::untrusted(r.client_id));
  json::object configuration;
  for (const auto& [k, val] : done->device_configuration) configuration[k] = val;
  return result{json::object{{"deviceConfiguration", std::move(configuration)}, {"thingName", done->thing_name}}, {}, 200};
}

common::aws_response fleet_service::create_claim(const json::object& in) {
  expire();
  const std::string name(common::text_member(in, "templateName").value_or(""));
  auto t = templates_.find(name);
  if (!t) return common::aws_response::not_found("provisioning template " + name + " does not exist");
  if (t->type != "FLEET_PROVISIONING")
    return common::aws_response::invalid("provisioning claims are for fleet provisioning templates; " + name + " is " + t->type);
  auto made = registry_.call("fleetcore:CreateProvisioningClaim",
                             json::object{{"templateName", name}, {"validitySeconds", settings_.claim_ttl_ms / 1000}});
  if (made.error) return common::aws_response::invalid(made.error->message);
  const std::string id(common::text_member(made.body, "certificateId").value_or(""));
  const auto expires = clock_.wall_ms() + settings_.claim_ttl_ms;
  if (!store_.submit_and_wait({storage::op::put_document{{std::string(k_claim_kind), id, std::to_string(expires)}}})) {
    registry_.call("UpdateCertificate", json::object{{"certificateId", id}, {"newStatus", "INACTIVE"}});
    registry_.call("DeleteCertificate", json::object{{"certificateId", id}});
    return common::aws_response::error(500, "InternalFailureException", "the provisioning claim could not be stored");
  }
  claim_expiry_.emplace(expires, id);
  claims_made_.inc();
  FC_LOG_INFO("provisioning.claim", "template={} certificate={}", name, id.substr(0, 12));
  return common::aws_response::ok(json::serialize(made.body));
}

void fleet_service::expire() {
  const auto now = clock_.wall_ms();
  // Both in expiry order: only what expired is looked at.
  while (!claim_expiry_.empty() && claim_expiry_.begin()->first <= now) {
    const std::string id = claim_expiry_.begin()->second;
    claim_expiry_.erase(claim_expiry_.begin());
    // A claim is temporary: it goes after its five minutes, used or not.
    registry_.call("UpdateCertificate", json::object{{"certificateId", id}, {"newStatus", "INACTIVE"}});
    registry_.call("DeleteCertificate", json::object{{"certificateId", id}});
    store_.submit_and_wait({storage::op::delete_document{std::string(k_claim_kind), id}});
  }
  while (!token_expiry_.empty() && token_expiry_.begin()->first <= now) {
    const std::string text = token_expiry_.begin()->second;
    token_expiry_.erase(token_expiry_.begin());
    auto it = tokens_.find(text);
    if (it == tokens_.end()) continue;
    // Never registered: the certificate goes (it is INACTIVE and attached to nothing).
    auto deleted = registry_.call("DeleteCertificate", json::object{{"certificateId", it->second.certificate_id}});
    if (deleted.error && deleted.error->code != "ResourceNotFoundException")
      FC_LOG_WARN("provisioning.expired_certificate_kept", "certificate={} reason={:q}", it->second.certificate_id.substr(0, 12),
                  common::untrusted(deleted.error->message));
    store_.submit_and_wait({storage::op::delete_document{std::string(k_kind), text}});
    expired_.inc();
    tokens_.erase(it);
  }
}

void fleet_service::register_metrics(common::registry& r) const {
  r.add(certificates_, "fleetcore_provisioning_certificates_total", "", "Certificates made for claim devices (create, create-from-csr).");
  r.add(provisioned_, "fleetcore_provisioning_provisioned_total", "", "Devices provisioned by a fleet provisioning template.");
  r.add(rejected_, "fleetcore_provisioning_rejected_total", "", "Fleet provisioning requests answered on /rejected.");
  r.add(hooks_denied_, "fleetcore_provisioning_hook_denied_total", "",
        "Fleet provisioning requests a pre-provisioning hook refused (or did not answer in time).");
  r.add(claims_made_, "fleetcore_provisioning_claims_total", "", "Temporary provisioning claims made (CreateProvisioningClaim).");
  r.add(expired_, "fleetcore_provisioning_tokens_expired_total", "",
        "Certificate ownership tokens that expired unused (their certificates deleted).");
}

}  // namespace fleetcore::provisioning
