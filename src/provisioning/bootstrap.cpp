#include "provisioning/bootstrap.hpp"

#include "auth/pki.hpp"
#include "auth/sigv4.hpp"
#include "common/aws_names.hpp"
#include "common/hex.hpp"
#include "common/json_members.hpp"
#include "common/log.hpp"
#include "provisioning/provisioner.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <algorithm>
#include <set>
#include <stdexcept>

namespace fleetcore::provisioning {

namespace json = boost::json;
using common::aws_response;

namespace {
constexpr std::string_view k_kind = "bootstrap_identity";
constexpr std::size_t k_min_secret = 16;
constexpr std::size_t k_max_batch = 10'000;

std::string digest_of(std::string_view salt, std::string_view secret) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  HMAC(EVP_sha256(), salt.data(), static_cast<int>(salt.size()), reinterpret_cast<const unsigned char*>(secret.data()),
       secret.size(), md, &n);
  return std::string(reinterpret_cast<const char*>(md), n);
}

aws_response unauthorized() {
  return aws_response::error(401, "UnauthorizedException", "unknown device or wrong secret");
}
}  // namespace

std::string bootstrap_service::identity::to_json() const {
  json::object params;
  for (const auto& [k, v] : parameters) params[k] = v;
  return json::serialize(json::object{{"salt", common::hex(salt)},
                                      {"digest", common::hex(digest)},
                                      {"templateName", template_name},
                                      {"status", status},
                                      {"certificateId", certificate_id},
                                      {"parameters", std::move(params)},
                                      {"keyDigest", key_digest},
                                      {"answer", answer},
                                      {"createdMs", created_ms},
                                      {"usedMs", used_ms}});
}

std::optional<bootstrap_service::identity> bootstrap_service::identity::from_json(std::string_view body) {
  boost::system::error_code ec;
  auto v = json::parse(body, ec);
  if (ec || !v.is_object()) return std::nullopt;
  const auto& o = v.get_object();
  identity i;
  auto salt = common::unhex(common::text_member(o, "salt").value_or(""));
  auto digest = common::unhex(common::text_member(o, "digest").value_or(""));
  if (!salt || !digest) return std::nullopt;
  i.salt = std::move(*salt);
  i.digest = std::move(*digest);
  i.template_name = std::string(common::text_member(o, "templateName").value_or(""));
  i.status = std::string(common::text_member(o, "status").value_or("UNUSED"));
  i.certificate_id = std::string(common::text_member(o, "certificateId").value_or(""));
  i.key_digest = std::string(common::text_member(o, "keyDigest").value_or(""));
  i.answer = std::string(common::text_member(o, "answer").value_or(""));
  if (const auto* ps = common::object_member(o, "parameters"))
    for (const auto& [k, pv] : *ps)
      if (pv.is_string()) i.parameters[std::string(k)] = std::string(pv.get_string());
  i.created_ms = common::int_member(o, "createdMs").value_or(0);
  i.used_ms = common::int_member(o, "usedMs").value_or(0);
  return i;
}

bootstrap_service::bootstrap_service(registry::registry& reg, template_service& templates, storage::store& store,
                                     common::clock& clock, bootstrap_settings s)
    : registry_(reg),
      templates_(templates),
      store_(store),
      clock_(clock),
      limiter_(clock, {s.per_address_per_s, s.per_address_burst, s.global_per_s, s.global_burst}) {
  for (const auto& d : store_.load_documents(std::string(k_kind))) {
    auto i = identity::from_json(d.body);
    if (!i) throw std::runtime_error("unreadable bootstrap identity " + d.key);
    identities_[d.key] = std::move(*i);
  }
}

bool bootstrap_service::save(const std::string& id, const identity& i) {
  return store_.submit_and_wait({storage::op::put_document{{std::string(k_kind), id, i.to_json()}}});
}

aws_response bootstrap_service::admin(std::string_view method, std::string_view rest, std::string_view body) {
  if (method == "POST" && rest.empty()) return register_identities(body);
  if (method == "GET" && rest.size() > 1 && rest.front() == '/') return describe(auth::uri_decode(rest.substr(1)));
  return aws_response::error(404, "ResourceNotFoundException", "no such fleetcore bootstrap endpoint");
}

aws_response bootstrap_service::register_identities(std::string_view body) {
  boost::system::error_code ec;
  auto v = json::parse(body, ec);
  if (ec || !v.is_object()) return aws_response::invalid("the body must be a JSON object");
  const auto& in = v.get_object();
  const std::string template_name(common::text_member(in, "templateName").value_or(""));
  auto t = templates_.find(template_name);
  if (!t || t->type != "FLEET_PROVISIONING")
    return aws_response::not_found("there is no fleet provisioning template " + template_name);
  const auto* list = in.if_contains("identities");
  if (!list || !list->is_array() || list->get_array().empty() || list->get_array().size() > k_max_batch)
    return aws_response::invalid("identities must be a list of 1 to 10000 {deviceId, secret, parameters?}");
  // All of the batch or none of it.
  std::vector<std::pair<std::string, identity>> batch;
  std::vector<storage::operation> ops;
  std::set<std::string> seen;
  const auto now = clock_.wall_ms();
  for (const auto& item : list->get_array()) {
    const auto* o = item.if_object();
    auto id = o ? common::text_member(*o, "deviceId") : std::nullopt;
    auto secret = o ? common::text_member(*o, "secret") : std::nullopt;
    if (!id || id->empty() || id->size() > 128 || !common::valid_thing_name(*id))
      return aws_response::invalid("each identity needs a deviceId of 1-128 characters [a-zA-Z0-9:_-]");
    if (!secret || secret->size() < k_min_secret)
      return aws_response::invalid("the secret of " + std::string(*id) + " must have at least 16 characters (random)");
    if (identities_.contains(*id) || !seen.insert(std::string(*id)).second)
      return aws_response::error(409, "ResourceAlreadyExistsException", "device " + std::string(*id) + " is already registered");
    identity i;
    unsigned char salt[16];
    if (RAND_bytes(salt, sizeof salt) != 1) return aws_response::error(500, "InternalFailureException", "no random bytes");
    i.salt.assign(reinterpret_cast<const char*>(salt), sizeof salt);
    i.digest = digest_of(i.salt, *secret);
    i.template_name = template_name;
    i.created_ms = now;
    if (const auto* ps = common::object_member(*o, "parameters"))
      for (const auto& [k, pv] : *ps) {
        if (!pv.is_string()) return aws_response::invalid("parameters of " + std::string(*id) + " must be strings");
        i.parameters[std::string(k)] = std::string(pv.get_string());
      }
    ops.push_back(storage::op::put_document{{std::string(k_kind), std::string(*id), i.to_json()}});
    batch.emplace_back(std::string(*id), std::move(i));
  }
  if (!store_.submit_and_wait(std::move(ops)))
    return aws_response::error(500, "InternalFailureException", "the identities could not be stored");
  for (auto& [id, i] : batch) identities_[id] = std::move(i);
  FC_LOG_INFO("provisioning.bootstrap_registered", "template={} identities={}", template_name, batch.size());
  return aws_response::ok(json::serialize(json::object{{"registered", batch.size()}}));
}

aws_response bootstrap_service::describe(const std::string& id) const {
  auto it = identities_.find(id);
  if (it == identities_.end()) return aws_response::not_found("device " + id + " is not registered for bootstrap");
  const identity& i = it->second;
  json::object out{{"deviceId", id},
                   {"templateName", i.template_name},
                   {"status", i.status},
                   {"creationDate", common::api_time(i.created_ms)}};
  if (!i.certificate_id.empty()) out["certificateId"] = i.certificate_id;
  if (i.used_ms) out["usedDate"] = common::api_time(i.used_ms);
  return aws_response::ok(json::serialize(out));
}

aws_response bootstrap_service::device(std::string_view method, std::string_view body, std::string_view peer) {
  if (method != "POST") return aws_response::error(405, "InvalidRequestException", "POST the device's request");
  if (limiter_.admit(peer) != common::rate_limiter::verdict::admitted) {
    throttled_.inc();
    FC_LOG_INFO("provisioning.bootstrap_throttled", "peer={}", common::untrusted(peer));
    return aws_response::error(429, "ThrottlingException", "too many bootstrap attempts: wait and retry");
  }
  auto refuse = [&](aws_response r, std::string_view device, std::string_view why) {
    refused_.inc();
    FC_LOG_INFO("provisioning.bootstrap_refused", "peer={} device={:q} reason={:q}", common::untrusted(peer),
                common::untrusted(device), common::untrusted(why));
    return r;
  };
  boost::system::error_code ec;
  auto v = json::parse(body, ec);
  if (ec || !v.is_object())
    return refuse(aws_response::invalid("the body must be {deviceId, secret, certificateSigningRequest}"), "", "not JSON");
  const auto& in = v.get_object();
  const std::string id(common::text_member(in, "deviceId").value_or(""));
  const std::string secret(common::text_member(in, "secret").value_or(""));
  const auto csr = common::text_member(in, "certificateSigningRequest");
  auto it = identities_.find(id);
  // The same work whether the device exists or not: nothing tells an unknown id from a wrong secret.
  const std::string salt = it != identities_.end() ? it->second.salt : std::string(16, '\0');
  const std::string digest = digest_of(salt, secret);
  if (it == identities_.end() || digest.size() != it->second.digest.size() ||
      CRYPTO_memcmp(digest.data(), it->second.digest.data(), digest.size()) != 0)
    return refuse(unauthorized(), id, "unknown device or wrong secret");
  identity& i = it->second;
  if (!csr) return refuse(aws_response::invalid("certificateSigningRequest is required"), id, "no CSR");
  const std::string key_digest = auth::public_key_digest(*csr);
  if (i.status == "USED" && !i.certificate_id.empty()) {
    // Its answer again for the same key (the first one may never have arrived); nothing for another.
    if (!key_digest.empty() && key_digest == i.key_digest && !i.answer.empty()) {
      FC_LOG_INFO("provisioning.bootstrap_repeated", "device={:q}", common::untrusted(id));
      return aws_response::ok(i.answer);
    }
    return refuse(aws_response::error(403, "AccessDeniedException",
                                      "device " + id + " has already obtained its certificate (a bootstrap secret is used once)"),
                  id, "used");
  }
  // USED without a certificate: a crash between the two writes below; nothing was provisioned.
  auto t = templates_.find(i.template_name);
  const auto* version = t && t->enabled ? t->version(t->default_version) : nullptr;
  if (!version)
    return refuse(aws_response::not_found("the device's provisioning template " + i.template_name + " is missing or disabled"),
                  id, "template");
  if (t->hook_target)
    return refuse(aws_response::error(403, "AccessDeniedException",
                                      "template " + t->name + " has a pre-provisioning hook; bootstrap does not call hooks"),
                  id, "hooked template");
  std::string message;
  auto parsed = parse_template(version->body, message);
  if (!parsed) return refuse(aws_response::invalid("template " + t->name + ": " + message), id, message);

  // Used from here on, durably, before anything exists.
  i.status = "USED";
  i.used_ms = clock_.wall_ms();
  auto release = [&] {
    i.status = "UNUSED";
    i.used_ms = 0;
    save(id, i);
  };
  if (!save(id, i)) {
    i.status = "UNUSED";
    return refuse(aws_response::error(500, "InternalFailureException", "the identity could not be stored"), id, "store");
  }
  auto made = registry_.call("CreateCertificateFromCsr", json::object{{"certificateSigningRequest", *csr}, {"setAsActive", false}});
  if (made.error) {
    release();
    return refuse(aws_response::invalid(made.error->message), id, made.error->message);
  }
  const std::string certificate_id(common::text_member(made.body, "certificateId").value_or(""));
  auto parameters = i.parameters;
  parameters["DeviceId"] = id;
  aws_response error;
  auto done = provision_certificate(registry_, *parsed, std::move(parameters), certificate_id, error);
  if (!done) {
    registry_.call("DeleteCertificate", json::object{{"certificateId", certificate_id}});
    release();
    return refuse(error, id, error.body);
  }
  json::object configuration;
  for (const auto& [k, val] : done->device_configuration) configuration[k] = val;
  i.certificate_id = certificate_id;
  i.key_digest = key_digest;
  i.answer = json::serialize(json::object{{"certificateId", certificate_id},
                                          {"certificatePem", made.body.at("certificatePem")},
                                          {"thingName", done->thing_name},
                                          {"deviceConfiguration", std::move(configuration)}});
  save(id, i);
  issued_.inc();
  FC_LOG_INFO("provisioning.bootstrap", "device={:q} thing={:q} certificate={}", common::untrusted(id),
              common::untrusted(done->thing_name), certificate_id.substr(0, 12));
  return aws_response::ok(i.answer);
}

void bootstrap_service::register_metrics(common::registry& r) const {
  r.add(issued_, "fleetcore_provisioning_bootstrap_total", "result=\"issued\"",
        "Bootstrap requests (fleetcore's extension) by result.");
  r.add(refused_, "fleetcore_provisioning_bootstrap_total", "result=\"refused\"",
        "Bootstrap requests (fleetcore's extension) by result.");
  r.add(throttled_, "fleetcore_provisioning_bootstrap_total", "result=\"throttled\"",
        "Bootstrap requests (fleetcore's extension) by result.");
}

}  // namespace fleetcore::provisioning
