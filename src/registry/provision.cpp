// One provisioning in one transaction: the thing, certificate and policies a provisioning template's
// plan names (provisioning/template.hpp), created or reconciled with what exists according to its
// OverrideSettings, linked together (policies attached to the certificate, the certificate to the
// thing, the thing in its groups) and committed as one batch: all or nothing. The operation
// `fleetcore:Provision` is internal (no route reaches it); the provisioning module calls it with the
// plan as JSON:
//   {"thing": {"name", "attributes"?, "type"?, "groups"?, "attributesRule", "typeRule", "groupsRule"}?,
//    "certificate": {"csr" | "id" | "pem" (+ "caPem"), "status", "statusRule"}?,
//    "policies": [{"name", "document"?}]}
// Rules are DO_NOTHING, REPLACE, FAIL or MERGE. The answer: thingName/thingArn, certificateId/Arn,
// certificatePem (a certificate signed from a CSR), policyArns (by name).
#include "registry/detail.hpp"

#include "auth/pki.hpp"
#include "common/uuid.hpp"

#include <algorithm>
#include <set>

namespace fleetcore::registry {

namespace {

using ops = registry::ops;
using tx = registry::tx;

outcome conflicts(std::string message) { return fail("ResourceConflictsException", 409, std::move(message)); }

/// A certificate may be ACTIVE only while its CA (if registered with one) is: as UpdateCertificate.
std::optional<outcome> refuse_activation(const state& s, const certificate& c) {
  if (c.status != cert_status::active || c.ca_id.empty()) return std::nullopt;
  auto ca = s.ca_certificates.find(c.ca_id);
  if (ca != s.ca_certificates.end() && ca->second.status != ca_status::active)
    return fail("CertificateStateException", 406, "the CA certificate of certificate " + c.id + " is not ACTIVE");
  return std::nullopt;
}

std::string rule_of(const json::object& o, std::string_view key) { return text(o, key).value_or("REPLACE"); }

std::map<std::string, std::string> string_map(const json::value* v) {
  std::map<std::string, std::string> out;
  if (v && v->is_object())
    for (const auto& [k, x] : v->as_object())
      if (x.is_string()) out[std::string(k)] = std::string(x.as_string());
  return out;
}

std::optional<std::vector<std::string>> string_list(const json::value* v) {
  if (!v || !v->is_array()) return std::nullopt;
  std::vector<std::string> out;
  for (const auto& x : v->as_array())
    if (x.is_string()) out.emplace_back(x.as_string());
  return out;
}

std::string root_group(const state& s, std::string group) {
  for (int depth = 0; depth < 16; ++depth) {
    auto it = s.thing_groups.find(group);
    if (it == s.thing_groups.end() || it->second.parent.empty()) break;
    group = it->second.parent;
  }
  return group;
}

outcome provision(registry& r, const json::object& in) {
  const state& s = ops::st(r);
  tx x;
  json::object answer;
  std::string principal;  // the certificate's ARN, when the plan has one

  // --- the certificate ---
  if (const auto* c = object_member(in, "certificate")) {
    const std::string status_text = text(*c, "status").value_or("ACTIVE");
    const cert_status status = status_text == "INACTIVE" ? cert_status::inactive : cert_status::active;
    const std::string rule = rule_of(*c, "statusRule");
    certificate cert;
    bool store = false;
    if (auto csr = text(*c, "csr")) {
      std::string error;
      auto signed_cert = auth::sign_csr(*csr, r.ca(), ops::ca_key(r), r.config().certificate_days, error);
      if (!signed_cert) return invalid("CertificateSigningRequest: " + error);
      cert.id = auth::certificate_id(signed_cert.get());
      cert.pem = auth::to_pem(signed_cert.get());
      cert.facts = auth::facts_of(signed_cert.get());
      cert.status = status;
      cert.creation_date = cert.last_modified = ops::now(r);
      cert.generation_id = common::random_uuid();
      answer["certificatePem"] = cert.pem;
      store = true;
    } else if (auto id = text(*c, "id")) {
      auto it = s.certificates.find(*id);
      if (it == s.certificates.end()) return not_found("certificate " + *id + " does not exist");
      cert = it->second;
      if (cert.status == cert_status::revoked) return invalid("certificate " + *id + " is REVOKED");
      if (cert.status != status) {
        if (rule == "FAIL") return conflicts("certificate " + *id + " exists with another status");
        if (rule == "REPLACE") {
          cert.status = status;
          cert.last_modified = ops::now(r);
          store = true;
        }
      }
    } else if (auto pem = text(*c, "pem")) {
      auto parsed = auth::parse_pem_cert(*pem);
      if (!parsed) return invalid("CertificatePem is not a PEM certificate");
      const std::string cid = auth::certificate_id(parsed.get());
      if (auto it = s.certificates.find(cid); it != s.certificates.end()) {
        cert = it->second;
        if (cert.status == cert_status::revoked) return invalid("certificate " + cid + " is REVOKED");
        if (cert.status != status && rule == "FAIL") return conflicts("certificate " + cid + " exists with another status");
        if (cert.status != status && rule == "REPLACE" && cert.status != cert_status::revoked) {
          cert.status = status;
          cert.last_modified = ops::now(r);
          store = true;
        }
      } else {
        // A device certificate of a registered CA (the one given with CACertificatePem, if any).
        std::string ca_id;
        for (const auto& [id, ca] : s.ca_certificates)
          if (ca.x509 && auth::issued_by(parsed.get(), ca.x509.get())) ca_id = id;
        if (auto ca_pem = text(*c, "caPem")) {
          auto ca_cert = auth::parse_pem_cert(*ca_pem);
          if (!ca_cert || !s.ca_certificates.contains(auth::certificate_id(ca_cert.get())) ||
              !auth::issued_by(parsed.get(), ca_cert.get()))
            return invalid("CACertificatePem is not the registered CA that signed CertificatePem");
          ca_id = auth::certificate_id(ca_cert.get());
        }
        if (ca_id.empty() && !auth::issued_by(parsed.get(), r.ca()))
          return invalid("CertificatePem was signed by no registered CA certificate");
        cert.facts = auth::facts_of(parsed.get());
        const double now = ops::now(r);
        if (now < static_cast<double>(cert.facts.not_before) || now > static_cast<double>(cert.facts.not_after))
          return fail("CertificateValidationException", 400, "CertificatePem is expired or not yet valid");
        if (!ca_id.empty() && s.ca_certificates.at(ca_id).status != ca_status::active)
          return fail("CertificateStateException", 406, "the CA certificate " + ca_id + " is not ACTIVE");
        cert.id = cid;
        cert.pem = *pem;
        cert.ca_id = ca_id;
        cert.status = status;
        cert.creation_date = cert.last_modified = ops::now(r);
        cert.generation_id = common::random_uuid();
        store = true;
      }
    } else {
      return invalid("the plan's certificate names no certificate");
    }
    if (auto refused = refuse_activation(s, cert)) return *refused;
    if (store) x.put(k_certificate, cert.id, to_doc(cert));
    principal = cert_arn(r, cert.id);
    answer["certificateId"] = cert.id;
    answer["certificateArn"] = principal;
  }

  // --- the policies ---
  json::object policy_arns;
  std::set<std::string> named;  // each policy once, however many resources name it
  if (const auto* list = in.if_contains("policies"); list && list->is_array()) {
    std::size_t attached = principal.empty() ? 0 : s.policy_targets.lefts_of(principal).size();
    for (const auto& pv : list->as_array()) {
      if (!pv.is_object()) return invalid("a plan's policy is an object");
      const auto& p = pv.as_object();
      const std::string name = text(p, "name").value_or("");
      if (!valid_policy_name(name)) return invalid("policy name " + name + " is not valid");
      if (!named.insert(name).second) continue;
      if (auto doc = text(p, "document"); doc && !s.policies.contains(name)) {
        // As CreatePolicy: 2048 characters at most, whitespace not counted.
        if (std::count_if(doc->begin(), doc->end(), [](char ch) { return ch != ' ' && ch != '\n' && ch != '\r' && ch != '\t'; }) > 2048)
          return fail("MalformedPolicyException", 400, "policy " + name + ": the document exceeds 2048 characters");
        std::string error;
        auto parsed = auth::policy_document::parse(*doc, error);
        if (!parsed) return fail("MalformedPolicyException", 400, "policy " + name + ": " + error);
        policy made;
        made.name = name;
        made.creation_date = made.last_modified = ops::now(r);
        made.versions[1] = {*doc, made.creation_date, std::make_shared<const auth::policy_document>(std::move(*parsed))};
        made.generation_id = common::random_uuid();
        x.put(k_policy, name, to_doc(made));
      } else if (!s.policies.contains(name)) {
        return not_found("Policy " + name + " does not exist");
      }
      if (!principal.empty() && !s.policy_targets.contains(name, principal)) {
        if (++attached > 10) return fail("LimitExceededException", 410, "at most 10 policies can be attached to a certificate");
        x.link(k_policy_target, name, principal);
      }
      policy_arns[name] = r.arn("policy", name);
    }
  }
  answer["policyArns"] = std::move(policy_arns);

  // --- the thing ---
  if (const auto* t = object_member(in, "thing")) {
    const std::string name = text(*t, "name").value_or("");
    if (!valid_thing_name(name)) return invalid("ThingName " + name + " must match [a-zA-Z0-9:_-]+ and be 1-128 characters");
    auto existing = s.things.find(name);
    const bool exists = existing != s.things.end();
    thing th = exists ? existing->second : thing{name, ops::new_id(r), "", {}, 1};
    bool changed = !exists;
    if (const auto* a = t->if_contains("attributes")) {
      auto attrs = string_map(a);
      for (const auto& [k, v] : attrs)
        if (!valid_attribute_name(k) || !valid_attribute_value(v)) return invalid("attribute " + k + " is not valid");
      const std::string rule = rule_of(*t, "attributesRule");
      if (!exists || rule == "REPLACE") {
        changed |= th.attributes != attrs;
        th.attributes = std::move(attrs);
      } else if (rule == "MERGE") {
        for (auto& [k, v] : attrs) {
          changed |= th.attributes[k] != v;
          th.attributes[k] = v;
        }
      } else if (rule == "FAIL" && th.attributes != attrs) {
        return conflicts("Thing " + name + " exists with other attributes");
      }
    }
    if (auto type = text(*t, "type")) {
      const std::string rule = rule_of(*t, "typeRule");
      if (*type != th.type) {
        if (exists && rule == "FAIL") return conflicts("Thing " + name + " exists with another thing type");
        if (!exists || rule == "REPLACE") {
          auto tt = s.thing_types.find(*type);
          if (tt == s.thing_types.end()) return not_found("Thing type " + *type + " does not exist");
          if (tt->second.deprecated) return invalid("thing type " + *type + " is deprecated");
          th.type = *type;
          changed = true;
        }
      }
    }
    if (th.attributes.size() > (th.type.empty() ? 3u : 50u))
      return invalid("a thing " + std::string(th.type.empty() ? "without" : "with") + " a thing type can have at most " +
                     (th.type.empty() ? "3" : "50") + " attributes");
    if (changed) {
      if (exists) ++th.version;
      x.put(k_thing, name, to_doc(th));
    }
    if (auto groups = string_list(t->if_contains("groups"))) {
      const std::string rule = rule_of(*t, "groupsRule");
      const auto& current = s.group_members.lefts_of(name);
      std::set<std::string> want(groups->begin(), groups->end());
      std::set<std::string> have(current.begin(), current.end());
      if (exists && rule == "FAIL" && want != have) return conflicts("Thing " + name + " is in other thing groups");
      if (!exists || rule == "REPLACE" || rule == "MERGE") {
        std::set<std::string> result = rule == "MERGE" && exists ? have : std::set<std::string>{};
        for (const auto& g : want) {
          if (!s.thing_groups.contains(g)) return not_found("Thing group " + g + " does not exist");
          result.insert(g);
        }
        if (result.size() > 10) return invalid("a thing can be in at most 10 thing groups");
        std::set<std::string> roots;
        for (const auto& g : result)
          if (!roots.insert(root_group(s, g)).second)
            return invalid("Thing " + name + " cannot be in two groups of the same hierarchy");
        for (const auto& g : have)
          if (!result.contains(g)) x.unlink(k_group_member, g, name);
        for (const auto& g : result)
          if (!have.contains(g))
            x.link(k_group_member, g, name, json::serialize(json::object{{"membershipId", common::random_uuid()}}));
      }
    }
    if (!principal.empty() && !s.thing_principals.contains(name, principal)) x.link(k_thing_principal, name, principal);
    answer["thingName"] = name;
    answer["thingArn"] = r.arn("thing", name);
  }

  if (!x.empty() && !ops::commit(r, x)) return internal();
  return ok(std::move(answer));
}

}  // namespace

void registry::ops::add_provision_ops(std::map<std::string, fn, std::less<>>& t) { t["fleetcore:Provision"] = provision; }

}  // namespace fleetcore::registry
