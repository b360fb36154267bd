// Certificates and CA certificates: issue, register (with and without a CA), lifecycle, CRL import,
// the TLS client check and just-in-time registration.
#include "registry/detail.hpp"

#include "common/log.hpp"
#include "common/uuid.hpp"

namespace fleetcore::registry {

namespace {

using ops = registry::ops;
using tx = registry::tx;

outcome cert_invalid(std::string message) { return fail("CertificateValidationException", 400, std::move(message)); }
outcome cert_state(std::string message) { return fail("CertificateStateException", 406, std::move(message)); }

json::object validity(const auth::cert_facts& f) {
  return {{"notBefore", timestamp(static_cast<double>(f.not_before))},
          {"notAfter", timestamp(static_cast<double>(f.not_after))}};
}

/// ACTIVE if the input sets `setAsActive`, else INACTIVE.
cert_status set_as_active(const json::object& in) {
  return bool_member(in, "setAsActive").value_or(false) ? cert_status::active : cert_status::inactive;
}

certificate new_certificate(registry& r, X509* x, cert_status status, std::string ca_id) {
  certificate c;
  c.id = auth::certificate_id(x);
  c.pem = auth::to_pem(x);
  c.status = status;
  c.ca_id = std::move(ca_id);
  c.creation_date = c.last_modified = ops::now(r);
  c.generation_id = common::random_uuid();
  c.facts = auth::facts_of(x);
  return c;
}

void put_certificate(tx& x, const certificate& c) {
  x.put(k_certificate, c.id, to_doc(c));
}
void put_ca(tx& x, const ca_certificate& c) {
  x.put(k_ca_certificate, c.id, to_doc(c));
}

/// The registered CA that signed `x`, if any.
const ca_certificate* issuing_ca(const state& s, X509* x) {
  for (const auto& [id, ca] : s.ca_certificates)
    if (ca.x509 && auth::issued_by(x, ca.x509.get())) return &ca;
  return nullptr;
}

json::object created(const registry& r, const certificate& c) {
  return {{"certificateArn", cert_arn(r, c.id)}, {"certificateId", c.id}};
}

outcome create_keys_and_certificate(registry& r, const json::object& in) {
  auto key = auth::generate_ec_key();
  auth::cert_request req{"AWS IoT Certificate", {}, {}, r.config().certificate_days, false, false};
  auto x = auth::make_certificate(req, key.get(), r.ca(), ops::ca_key(r));
  auto c = new_certificate(r, x.get(), set_as_active(in), "");
  tx t;
  put_certificate(t, c);
  if (!ops::commit(r, t)) return internal();
  auto body = created(r, c);
  body["certificatePem"] = c.pem;
  body["keyPair"] = json::object{{"PublicKey", auth::public_key_pem(key.get())},
                                 {"PrivateKey", auth::private_key_pem(key.get())}};
  return ok(std::move(body));
}

/// fleetcore:CreateProvisioningClaim {templateName, validitySeconds}: a temporary claim certificate
/// (CreateProvisioningClaim; the provisioning module checks the template). ACTIVE, not listed,
/// valid for validitySeconds.
outcome create_provisioning_claim(registry& r, const json::object& in) {
  auto name = text(in, "templateName").value_or("");
  auto seconds = int_member(in, "validitySeconds").value_or(300);
  if (name.empty() || seconds <= 0) return invalid("templateName and a positive validitySeconds are required");
  auto key = auth::generate_ec_key();
  auth::cert_request req{"AWS IoT Provisioning Claim", {}, {}, 1, false, false, static_cast<long>(seconds)};
  auto x = auth::make_certificate(req, key.get(), r.ca(), ops::ca_key(r));
  auto c = new_certificate(r, x.get(), cert_status::active, "");
  c.claim_template = std::string(name);
  tx t;
  put_certificate(t, c);
  if (!ops::commit(r, t)) return internal();
  json::object body{{"certificateId", c.id},
                    {"certificatePem", c.pem},
                    {"keyPair", json::object{{"PublicKey", auth::public_key_pem(key.get())},
                                             {"PrivateKey", auth::private_key_pem(key.get())}}},
                    {"expiration", timestamp(static_cast<double>(c.facts.not_after))}};
  return ok(std::move(body));
}

outcome create_certificate_from_csr(registry& r, const json::object& in) {
  auto csr = text(in, "certificateSigningRequest");
  if (!csr) return invalid("certificateSigningRequest is required");
  std::string error;
  auto x = auth::sign_csr(*csr, r.ca(), ops::ca_key(r), r.config().certificate_days, error);
  if (!x) return invalid(error);
  auto c = new_certificate(r, x.get(), set_as_active(in), "");
  tx t;
  put_certificate(t, c);
  if (!ops::commit(r, t)) return internal();
  auto body = created(r, c);
  body["certificatePem"] = c.pem;
  return ok(std::move(body));
}

outcome get_registration_code(registry& r, const json::object&) {
  if (ops::st(r).registration_code.empty()) {
    std::string fresh = auth::certificate_id(r.ca()).substr(0, 8) + common::random_uuid() + common::random_uuid();
    std::erase(fresh, '-');
    fresh.resize(64);
    tx t;
    t.put(k_setting, s_registration_code, json::serialize(json::object{{"value", fresh}}));
    if (!ops::commit(r, t)) return internal();
  }
  return ok({{"registrationCode", ops::st(r).registration_code}});
}

outcome register_ca_certificate(registry& r, const json::object& in) {
  const state& s = ops::st(r);
  auto pem = text(in, "caCertificate");
  if (!pem) return invalid("caCertificate is required");
  auto ca = auth::parse_pem_cert(*pem);
  if (!ca) return cert_invalid("caCertificate is not a PEM X.509 certificate");
  auto facts = auth::facts_of(ca.get());
  if (!facts.is_ca) return cert_invalid("caCertificate is not a CA certificate (basicConstraints CA:TRUE)");
  double now = ops::now(r);
  if (now < static_cast<double>(facts.not_before) || now > static_cast<double>(facts.not_after))
    return cert_invalid("caCertificate is expired or not yet valid");
  std::string mode = text(in, "certificateMode").value_or("DEFAULT");
  if (mode != "DEFAULT" && mode != "SNI_ONLY") return invalid("certificateMode must be DEFAULT or SNI_ONLY");
  if (mode == "DEFAULT") {
    // Proof of possession: a verification certificate signed by the CA whose CN is our code.
    auto vpem = text(in, "verificationCertificate");
    if (!vpem) return invalid("verificationCertificate is required in DEFAULT mode");
    auto v = auth::parse_pem_cert(*vpem);
    if (!v) return cert_invalid("verificationCertificate is not a PEM X.509 certificate");
    if (!auth::issued_by(v.get(), ca.get()))
      return cert_invalid("verificationCertificate is not signed by caCertificate");
    std::string cn;
    for (const auto& [k, val] : auth::facts_of(v.get()).variables)
      if (k == "Subject.CommonName") cn = val;
    const std::string& code = ops::st(r).registration_code;
    if (code.empty() || cn != code)
      return fail("RegistrationCodeValidationException", 400,
                  "the common name of verificationCertificate is not this account's registration code");
  }
  ca_certificate c;
  c.id = auth::certificate_id(ca.get());
  if (s.ca_certificates.contains(c.id))
    return already_exists("CA certificate " + c.id + " is already registered");
  c.pem = auth::to_pem(ca.get());
  c.status = bool_member(in, "setAsActive").value_or(false) ? ca_status::active : ca_status::inactive;
  c.auto_registration = bool_member(in, "allowAutoRegistration").value_or(false) ? "ENABLE" : "DISABLE";
  if (const auto* rc = object_member(in, "registrationConfig")) {
    c.template_body = text(*rc, "templateBody").value_or("");
    c.role_arn = text(*rc, "roleArn").value_or("");
    c.template_name = text(*rc, "templateName").value_or("");
  }
  c.creation_date = c.last_modified = now;
  c.generation_id = common::random_uuid();
  c.facts = std::move(facts);
  c.x509 = std::shared_ptr<X509>(ca.release(), X509_free);
  tx t;
  put_ca(t, c);
  if (!ops::commit(r, t)) return internal();
  return ok({{"certificateArn", r.arn("cacert", c.id)}, {"certificateId", c.id}});
}

outcome register_certificate_common(registry& r, const json::object& in, bool without_ca) {
  const state& s = ops::st(r);
  auto pem = text(in, "certificatePem");
  if (!pem) return invalid("certificatePem is required");
  auto x = auth::parse_pem_cert(*pem);
  if (!x) return cert_invalid("certificatePem is not a PEM X.509 certificate");
  auto facts = auth::facts_of(x.get());
  double now = ops::now(r);
  if (now < static_cast<double>(facts.not_before) || now > static_cast<double>(facts.not_after))
    return cert_invalid("the certificate is expired or not yet valid");
  std::string ca_id;
  if (!without_ca) {
    if (auto ca_pem = text(in, "caCertificatePem")) {
      auto ca = auth::parse_pem_cert(*ca_pem);
      if (!ca) return cert_invalid("caCertificatePem is not a PEM X.509 certificate");
      auto it = s.ca_certificates.find(auth::certificate_id(ca.get()));
      if (it == s.ca_certificates.end()) return not_found("the CA certificate is not registered");
      if (!auth::issued_by(x.get(), ca.get())) return cert_invalid("the certificate is not signed by caCertificatePem");
      ca_id = it->first;
    } else if (const auto* ca = issuing_ca(s, x.get())) {
      ca_id = ca->id;
    } else if (!auth::issued_by(x.get(), r.ca())) {
      return cert_invalid("the certificate is not signed by a registered CA certificate");
    }
    if (!ca_id.empty() && s.ca_certificates.at(ca_id).status != ca_status::active)
      return cert_state("the CA certificate " + ca_id + " is not ACTIVE");
  }
  cert_status status = set_as_active(in);
  if (auto given = text(in, "status"); given && !given->empty()) {
    auto parsed = parse_cert_status(*given);
    if (!parsed) return invalid("status " + *given + " is not a certificate status");
    status = *parsed;
  }
  auto c = new_certificate(r, x.get(), status, ca_id);
  if (without_ca) c.mode = "SNI_ONLY";
  if (s.certificates.contains(c.id)) return already_exists("certificate " + c.id + " is already registered");
  tx t;
  put_certificate(t, c);
  if (!ops::commit(r, t)) return internal();
  return ok(created(r, c));
}

outcome register_certificate(registry& r, const json::object& in) { return register_certificate_common(r, in, false); }
outcome register_certificate_without_ca(registry& r, const json::object& in) {
  return register_certificate_common(r, in, true);
}

outcome update_certificate(registry& r, const json::object& in) {
  const state& s = ops::st(r);
  auto id = text(in, "certificateId").value_or("");
  auto given = text(in, "newStatus").value_or("");
  auto it = s.certificates.find(id);
  if (it == s.certificates.end()) return not_found("certificate " + id + " does not exist");
  auto parsed = parse_cert_status(given);
  if (!parsed) return invalid("newStatus " + given + " is not a certificate status");
  cert_status status = *parsed;
  if (it->second.status == cert_status::revoked && status != cert_status::revoked)
    return cert_state("a revoked certificate cannot change status");
  if (status == cert_status::active && !it->second.ca_id.empty()) {
    auto ca = s.ca_certificates.find(it->second.ca_id);
    if (ca != s.ca_certificates.end() && ca->second.status != ca_status::active)
      return cert_state("the CA certificate of this certificate is not ACTIVE");
  }
  certificate c = it->second;
  c.status = status;
  c.last_modified = ops::now(r);
  ++c.customer_version;
  c.generation_id = common::random_uuid();
  tx t;
  put_certificate(t, c);
  if (!ops::commit(r, t)) return internal();
  FC_LOG_INFO("registry.certificate_status", "certificate={} status={}", id, to_string(status));
  return ok();
}

outcome update_ca_certificate(registry& r, const json::object& in) {
  const state& s = ops::st(r);
  auto id = text(in, "certificateId").value_or("");
  auto it = s.ca_certificates.find(id);
  if (it == s.ca_certificates.end()) return not_found("CA certificate " + id + " does not exist");
  ca_certificate c = it->second;
  if (auto st = text(in, "newStatus")) {
    auto parsed = parse_ca_status(*st);
    if (!parsed) return invalid("newStatus must be ACTIVE or INACTIVE");
    c.status = *parsed;
  }
  if (auto ar = text(in, "newAutoRegistrationStatus")) {
    if (*ar != "ENABLE" && *ar != "DISABLE") return invalid("newAutoRegistrationStatus must be ENABLE or DISABLE");
    c.auto_registration = *ar;
  }
  if (const auto* rc = object_member(in, "registrationConfig")) {
    c.template_body = text(*rc, "templateBody").value_or("");
    c.role_arn = text(*rc, "roleArn").value_or("");
    c.template_name = text(*rc, "templateName").value_or("");
  }
  if (bool_member(in, "removeAutoRegistration").value_or(false))
    c.template_body.clear(), c.role_arn.clear(), c.template_name.clear();
  c.last_modified = ops::now(r);
  ++c.customer_version;
  c.generation_id = common::random_uuid();
  tx t;
  put_ca(t, c);
  if (!ops::commit(r, t)) return internal();
  return ok();
}

outcome delete_certificate(registry& r, const json::object& in) {
  const state& s = ops::st(r);
  auto id = text(in, "certificateId").value_or("");
  auto it = s.certificates.find(id);
  if (it == s.certificates.end()) return not_found("certificate " + id + " does not exist");
  if (it->second.status == cert_status::active)
    return cert_state("certificate " + id + " is ACTIVE; deactivate or revoke it before deleting it");
  std::string principal = cert_arn(r, id);
  if (const auto& things = s.thing_principals.lefts_of(principal); !things.empty())
    return delete_conflict("certificate " + id + " is attached to thing " + *things.begin());
  bool force = bool_member(in, "forceDelete").value_or(false);
  tx t;
  for (const auto& policy : s.policy_targets.lefts_of(principal)) {
    if (!force) return delete_conflict("certificate " + id + " has policy " + policy + " attached");
    t.unlink(k_policy_target, policy, principal);
  }
  t.erase(k_certificate, id);
  if (!ops::commit(r, t)) return internal();
  return ok();
}

outcome delete_ca_certificate(registry& r, const json::object& in) {
  const state& s = ops::st(r);
  auto id = text(in, "certificateId").value_or("");
  auto it = s.ca_certificates.find(id);
  if (it == s.ca_certificates.end()) return not_found("CA certificate " + id + " does not exist");
  if (it->second.status == ca_status::active) return cert_state("CA certificate " + id + " is ACTIVE; deactivate it first");
  for (const auto& [cid, c] : s.certificates)
    if (c.ca_id == id) return delete_conflict("certificate " + cid + " registered with this CA still exists");
  tx t;
  t.erase(k_ca_certificate, id);
  if (!ops::commit(r, t)) return internal();
  return ok();
}

outcome describe_certificate(registry& r, const json::object& in) {
  auto id = text(in, "certificateId").value_or("");
  auto it = ops::st(r).certificates.find(id);
  if (it == ops::st(r).certificates.end()) return not_found("certificate " + id + " does not exist");
  const certificate& c = it->second;
  json::object d{{"certificateArn", cert_arn(r, c.id)},
                 {"certificateId", c.id},
                 {"status", to_string(c.status)},
                 {"certificatePem", c.pem},
                 {"ownedBy", r.config().account_id},
                 {"creationDate", timestamp(c.creation_date)},
                 {"lastModifiedDate", timestamp(c.last_modified)},
                 {"customerVersion", c.customer_version},
                 {"generationId", c.generation_id},
                 {"validity", validity(c.facts)},
                 {"certificateMode", c.mode}};
  if (!c.ca_id.empty()) d["caCertificateId"] = c.ca_id;
  return ok({{"certificateDescription", std::move(d)}});
}

outcome describe_ca_certificate(registry& r, const json::object& in) {
  auto id = text(in, "certificateId").value_or("");
  auto it = ops::st(r).ca_certificates.find(id);
  if (it == ops::st(r).ca_certificates.end()) return not_found("CA certificate " + id + " does not exist");
  const ca_certificate& c = it->second;
  json::object d{{"certificateArn", r.arn("cacert", c.id)},
                 {"certificateId", c.id},
                 {"status", to_string(c.status)},
                 {"certificatePem", c.pem},
                 {"ownedBy", r.config().account_id},
                 {"creationDate", timestamp(c.creation_date)},
                 {"autoRegistrationStatus", c.auto_registration},
                 {"lastModifiedDate", timestamp(c.last_modified)},
                 {"customerVersion", c.customer_version},
                 {"generationId", c.generation_id},
                 {"validity", validity(c.facts)},
                 {"certificateMode", "DEFAULT"}};
  json::object body{{"certificateDescription", std::move(d)}};
  if (!c.template_body.empty() || !c.role_arn.empty() || !c.template_name.empty()) {
    json::object config;
    if (!c.template_body.empty()) config["templateBody"] = c.template_body;
    if (!c.role_arn.empty()) config["roleArn"] = c.role_arn;
    if (!c.template_name.empty()) config["templateName"] = c.template_name;
    body["registrationConfig"] = std::move(config);
  }
  return ok(std::move(body));
}

/// Lists certificates ordered by creation date, paged by marker (the last id returned).
template <class Map, class Pred, class Row>
outcome list_by_date(registry& r, const json::object& in, const Map& items, Pred keep, Row row, const char* field) {
  std::int64_t max = 0;
  if (auto e = page_size(in, "pageSize", 250, max, 25)) return *e;
  bool ascending = bool_member(in, "ascendingOrder").value_or(false);
  std::vector<std::pair<double, std::string>> order;
  for (const auto& [id, c] : items)
    if (keep(c)) order.emplace_back(c.creation_date, id);
  std::sort(order.begin(), order.end());
  if (!ascending) std::reverse(order.begin(), order.end());
  std::size_t start = 0;
  if (auto marker = text(in, "marker")) {
    auto it = std::find_if(order.begin(), order.end(), [&](const auto& p) { return p.second == *marker; });
    if (it == order.end()) return invalid("marker is not valid");
    start = static_cast<std::size_t>(it - order.begin()) + 1;
  }
  json::array out;
  std::size_t i = start;
  for (; i < order.size() && static_cast<std::int64_t>(out.size()) < max; ++i) out.push_back(row(items.at(order[i].second)));
  json::object body{{field, std::move(out)}};
  if (i < order.size()) body["nextMarker"] = order[i - 1].second;
  return ok(std::move(body));
}

json::object cert_row(const registry& r, const certificate& c) {
  return {{"certificateArn", cert_arn(r, c.id)},
          {"certificateId", c.id},
          {"status", to_string(c.status)},
          {"certificateMode", c.mode},
          {"creationDate", timestamp(c.creation_date)}};
}

outcome list_certificates(registry& r, const json::object& in) {
  return list_by_date(
      r, in, ops::st(r).certificates, [](const certificate& c) { return c.claim_template.empty(); },
      [&r](const certificate& c) { return cert_row(r, c); }, "certificates");
}

outcome list_certificates_by_ca(registry& r, const json::object& in) {
  auto ca = text(in, "caCertificateId").value_or("");
  if (!ops::st(r).ca_certificates.contains(ca)) return not_found("CA certificate " + ca + " does not exist");
  return list_by_date(
      r, in, ops::st(r).certificates, [&ca](const certificate& c) { return c.ca_id == ca; },
      [&r](const certificate& c) { return cert_row(r, c); }, "certificates");
}

outcome list_ca_certificates(registry& r, const json::object& in) {
  return list_by_date(
      r, in, ops::st(r).ca_certificates, [](const ca_certificate&) { return true; },
      [&r](const ca_certificate& c) {
        return json::object{{"certificateArn", r.arn("cacert", c.id)},
                            {"certificateId", c.id},
                            {"status", to_string(c.status)},
                            {"creationDate", timestamp(c.creation_date)}};
      },
      "certificates");
}

/// fleetcore's extension (AWS IoT has no CRL import): revokes every registered certificate of the
/// CA whose serial number the CRL lists.
outcome import_crl(registry& r, const json::object& in) {
  const state& s = ops::st(r);
  auto id = text(in, "caCertificateId").value_or("");
  auto it = s.ca_certificates.find(id);
  if (it == s.ca_certificates.end()) return not_found("CA certificate " + id + " does not exist");
  auto pem = text(in, "crl");
  if (!pem) return invalid("crl (a PEM certificate revocation list) is required");
  std::string error;
  auto serials = auth::revoked_serials(*pem, it->second.x509.get(), error);
  if (!serials) return cert_invalid(error);
  std::set<std::string> revoked(serials->begin(), serials->end());
  tx t;
  json::array ids;
  for (const auto& [cid, c] : s.certificates) {
    if (c.ca_id != id || c.status == cert_status::revoked || !revoked.contains(c.facts.serial)) continue;
    certificate next = c;
    next.status = cert_status::revoked;
    next.last_modified = ops::now(r);
    ++next.customer_version;
    put_certificate(t, next);
    ids.push_back(json::value(cid));
  }
  if (!ops::commit(r, t)) return internal();
  return ok({{"revokedCertificateIds", std::move(ids)}});
}

}  // namespace

cert_check registry::check_client_certificate(X509* leaf) {
  std::string id = auth::certificate_id(leaf);
  const double now_s = now();
  std::shared_lock lock(state_mutex_);
  auto refuse = [this](cert_check c) {
    cert_refusals_.inc();
    return c;
  };
  if (auto it = st_.certificates.find(id); it != st_.certificates.end()) {
    const certificate& c = it->second;
    if (c.status != cert_status::active) return refuse(cert_check::inactive);
    if (now_s < static_cast<double>(c.facts.not_before) || now_s > static_cast<double>(c.facts.not_after))
      return refuse(cert_check::expired);
    if (!c.ca_id.empty()) {
      auto ca = st_.ca_certificates.find(c.ca_id);
      if (ca == st_.ca_certificates.end() || ca->second.status != ca_status::active)
        return refuse(cert_check::ca_inactive);
    }
    return cert_check::accepted;
  }
  const ca_certificate* ca = issuing_ca(st_, leaf);
  if (!ca || ca->status != ca_status::active || ca->auto_registration != "ENABLE") return refuse(cert_check::unknown);
  auto facts = auth::facts_of(leaf);
  if (now_s < static_cast<double>(facts.not_before) || now_s > static_cast<double>(facts.not_after))
    return refuse(cert_check::expired);
  {
    std::lock_guard jl(jitr_mutex_);
    if (!jitr_pending_.insert(id).second) return refuse(cert_check::pending_jitr);
  }
  if (defer) defer([this, pem = auth::to_pem(leaf), ca_id = ca->id] { register_pending(pem, ca_id); });
  return refuse(cert_check::pending_jitr);
}

void registry::register_pending(std::string pem, std::string ca_id) {
  std::lock_guard lock(control_mutex_);
  auto x = auth::parse_pem_cert(pem);
  if (!x) return;
  auto c = new_certificate(*this, x.get(), cert_status::pending_activation, ca_id);
  bool fresh = !st_.certificates.contains(c.id);
  if (fresh) {
    tx t;
    put_certificate(t, c);
    if (!commit(t)) {
      std::lock_guard jl(jitr_mutex_);
      jitr_pending_.erase(c.id);
      return;
    }
    jitr_registered_.inc();
    FC_LOG_INFO("registry.jitr", "certificate={} ca={} status=PENDING_ACTIVATION", c.id, ca_id);
    if (publish_event) {
      auto ts = static_cast<std::int64_t>(c.creation_date * 1000);
      json::object event{{"certificateId", c.id},
                         {"caCertificateId", ca_id},
                         {"timestamp", ts},
                         {"certificateStatus", "PENDING_ACTIVATION"},
                         {"awsAccountId", settings_.account_id},
                         {"certificateRegistrationTimestamp", ts}};
      publish_event("$aws/events/certificates/registered/" + ca_id, json::serialize(event));
    }
    // Provisioning runs operations: after this one (the control mutex is held here).
    if (auto_registered && defer) defer([this, id = c.id, ca_id] { auto_registered(id, ca_id); });
  }
  std::lock_guard jl(jitr_mutex_);
  jitr_pending_.erase(c.id);
}

void registry::ops::add_certificate_ops(std::map<std::string, fn, std::less<>>& t) {
  t["CreateKeysAndCertificate"] = create_keys_and_certificate;
  t["fleetcore:CreateProvisioningClaim"] = create_provisioning_claim;
  t["CreateCertificateFromCsr"] = create_certificate_from_csr;
  t["GetRegistrationCode"] = get_registration_code;
  t["RegisterCACertificate"] = register_ca_certificate;
  t["RegisterCertificate"] = register_certificate;
  t["RegisterCertificateWithoutCA"] = register_certificate_without_ca;
  t["UpdateCertificate"] = update_certificate;
  t["UpdateCACertificate"] = update_ca_certificate;
  t["DeleteCertificate"] = delete_certificate;
  t["DeleteCACertificate"] = delete_ca_certificate;
  t["DescribeCertificate"] = describe_certificate;
  t["DescribeCACertificate"] = describe_ca_certificate;
  t["ListCertificates"] = list_certificates;
  t["ListCertificatesByCA"] = list_certificates_by_ca;
  t["ListCACertificates"] = list_ca_certificates;
  t["ImportCACertificateRevocationList"] = import_crl;
}

}  // namespace fleetcore::registry
