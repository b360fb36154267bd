// Policies and their versions, policy attachments to certificates and thing groups, and the
// attachment of principals (certificates) to things.
#include "registry/detail.hpp"
#include "common/uuid.hpp"

namespace fleetcore::registry {

namespace {

using ops = registry::ops;
using tx = registry::tx;

constexpr std::size_t max_policy_versions = 5;
constexpr std::size_t max_policies_per_target = 10;
constexpr std::size_t max_policy_bytes = 2048;

outcome malformed(std::string message) { return fail("MalformedPolicyException", 400, std::move(message)); }

/// Parses a policy document as CreatePolicy receives it.
std::optional<outcome> check_document(const std::optional<std::string>& doc,
                                      std::shared_ptr<const auth::policy_document>& parsed) {
  if (!doc) return invalid("policyDocument is required");
  std::string compact;
  for (char c : *doc)
    if (c != ' ' && c != '\n' && c != '\r' && c != '\t') compact += c;
  if (compact.size() > max_policy_bytes)
    return malformed("the policy document exceeds " + std::to_string(max_policy_bytes) + " characters");
  std::string error;
  auto p = auth::policy_document::parse(*doc, error);
  if (!p) return malformed(error);
  parsed = std::make_shared<const auth::policy_document>(std::move(*p));
  return std::nullopt;
}

void put_policy(tx& t, const policy& p) {
  t.put(k_policy, p.name, to_doc(p));
}

outcome create_policy(registry& r, const json::object& in) {
  auto name = text(in, "policyName").value_or("");
  if (!valid_policy_name(name)) return invalid("policyName must match [\\w+=,.@-]+ and be 1-128 characters");
  auto doc = text(in, "policyDocument");
  std::shared_ptr<const auth::policy_document> parsed;
  if (auto e = check_document(doc, parsed)) return *e;
  if (ops::st(r).policies.contains(name)) return already_exists("Policy " + name + " already exists");
  policy p;
  p.name = name;
  p.creation_date = p.last_modified = ops::now(r);
  p.versions[1] = {*doc, p.creation_date, parsed};
  p.generation_id = common::random_uuid();
  tx t;
  put_policy(t, p);
  if (!ops::commit(r, t)) return internal();
  return ok({{"policyName", name}, {"policyArn", r.arn("policy", name)}, {"policyDocument", *doc}, {"policyVersionId", "1"}});
}

const policy* find_policy(const registry& r, const json::object& in) {
  auto it = ops::st(r).policies.find(text(in, "policyName").value_or(""));
  return it == ops::st(r).policies.end() ? nullptr : &it->second;
}
outcome no_policy(const json::object& in) {
  return not_found("Policy " + text(in, "policyName").value_or("") + " does not exist");
}

outcome create_policy_version(registry& r, const json::object& in) {
  const policy* found = find_policy(r, in);
  if (!found) return no_policy(in);
  auto doc = text(in, "policyDocument");
  std::shared_ptr<const auth::policy_document> parsed;
  if (auto e = check_document(doc, parsed)) return *e;
  if (found->versions.size() >= max_policy_versions)
    return fail("VersionsLimitExceededException", 409,
                "Policy " + found->name + " already has " + std::to_string(max_policy_versions) +
                    " versions; delete one first");
  policy p = *found;
  int id = p.next_version++;
  bool as_default = bool_member(in, "setAsDefault").value_or(false);
  p.last_modified = ops::now(r);
  p.versions[id] = {*doc, p.last_modified, parsed};
  if (as_default) p.default_version = id;
  p.generation_id = common::random_uuid();
  tx t;
  put_policy(t, p);
  if (!ops::commit(r, t)) return internal();
  return ok({{"policyArn", r.arn("policy", p.name)},
             {"policyDocument", *doc},
             {"policyVersionId", std::to_string(id)},
             {"isDefaultVersion", as_default}});
}

outcome get_policy(registry& r, const json::object& in) {
  const policy* p = find_policy(r, in);
  if (!p) return no_policy(in);
  return ok({{"policyName", p->name},
             {"policyArn", r.arn("policy", p->name)},
             {"policyDocument", p->versions.at(p->default_version).document},
             {"defaultVersionId", std::to_string(p->default_version)},
             {"creationDate", timestamp(p->creation_date)},
             {"lastModifiedDate", timestamp(p->last_modified)},
             {"generationId", p->generation_id}});
}

std::optional<int> version_id(const json::object& in) {
  auto v = text(in, "policyVersionId").value_or("");
  if (v.empty() || v.size() > 9 || v.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
  return std::stoi(v);
}

outcome get_policy_version(registry& r, const json::object& in) {
  const policy* p = find_policy(r, in);
  if (!p) return no_policy(in);
  auto id = version_id(in);
  auto v = id ? p->versions.find(*id) : p->versions.end();
  if (v == p->versions.end()) return not_found("Policy " + p->name + " has no such version");
  return ok({{"policyArn", r.arn("policy", p->name)},
             {"policyName", p->name},
             {"policyDocument", v->second.document},
             {"policyVersionId", std::to_string(*id)},
             {"isDefaultVersion", *id == p->default_version},
             {"creationDate", timestamp(v->second.creation_date)},
             {"lastModifiedDate", timestamp(p->last_modified)},
             {"generationId", p->generation_id}});
}

/// Pages sorted `names` by marker/pageSize as the policy list operations do.
std::optional<outcome> marker_page(const json::object& in, std::vector<std::string> names, std::vector<std::string>& out,
                                   std::optional<std::string>& next) {
  std::int64_t max = 0;
  if (auto e = page_size(in, "pageSize", 250, max, 25)) return *e;
  if (!bool_member(in, "ascendingOrder").value_or(true)) std::reverse(names.begin(), names.end());
  std::size_t start = 0;
  if (auto marker = text(in, "marker")) {
    auto it = std::find(names.begin(), names.end(), *marker);
    if (it == names.end()) return invalid("marker is not valid");
    start = static_cast<std::size_t>(it - names.begin()) + 1;
  }
  std::size_t i = start;
  for (; i < names.size() && static_cast<std::int64_t>(out.size()) < max; ++i) out.push_back(names[i]);
  if (i < names.size()) next = names[i - 1];
  return std::nullopt;
}

outcome list_policies(registry& r, const json::object& in) {
  std::vector<std::string> names;
  for (const auto& [n, p] : ops::st(r).policies) names.push_back(n);
  std::vector<std::string> shown;
  std::optional<std::string> next;
  if (auto e = marker_page(in, std::move(names), shown, next)) return *e;
  json::array out;
  for (const auto& n : shown) out.push_back(json::object{{"policyName", n}, {"policyArn", r.arn("policy", n)}});
  json::object body{{"policies", std::move(out)}};
  if (next) body["nextMarker"] = *next;
  return ok(std::move(body));
}

outcome list_policy_versions(registry& r, const json::object& in) {
  const policy* p = find_policy(r, in);
  if (!p) return no_policy(in);
  json::array out;
  for (auto it = p->versions.rbegin(); it != p->versions.rend(); ++it)
    out.push_back(json::object{{"versionId", std::to_string(it->first)},
                               {"isDefaultVersion", it->first == p->default_version},
                               {"createDate", timestamp(it->second.creation_date)}});
  return ok({{"policyVersions", std::move(out)}});
}

outcome delete_policy(registry& r, const json::object& in) {
  const policy* p = find_policy(r, in);
  if (!p) return no_policy(in);
  if (const auto& targets = ops::st(r).policy_targets.rights_of(p->name); !targets.empty())
    return delete_conflict("Policy " + p->name + " is attached to " + *targets.begin());
  if (p->versions.size() > 1)
    return delete_conflict("Policy " + p->name + " has non-default versions; delete them first");
  tx t;
  t.erase(k_policy, p->name);
  if (!ops::commit(r, t)) return internal();
  return ok();
}

outcome delete_policy_version(registry& r, const json::object& in) {
  const policy* found = find_policy(r, in);
  if (!found) return no_policy(in);
  auto id = version_id(in);
  if (!id || !found->versions.contains(*id)) return not_found("Policy " + found->name + " has no such version");
  if (*id == found->default_version)
    return delete_conflict("Cannot delete the default version of policy " + found->name);
  policy p = *found;
  p.versions.erase(*id);
  p.last_modified = ops::now(r);
  tx t;
  put_policy(t, p);
  if (!ops::commit(r, t)) return internal();
  return ok();
}

outcome set_default_policy_version(registry& r, const json::object& in) {
  const policy* found = find_policy(r, in);
  if (!found) return no_policy(in);
  auto id = version_id(in);
  if (!id || !found->versions.contains(*id)) return not_found("Policy " + found->name + " has no such version");
  policy p = *found;
  p.default_version = *id;
  p.last_modified = ops::now(r);
  p.generation_id = common::random_uuid();
  tx t;
  put_policy(t, p);
  if (!ops::commit(r, t)) return internal();
  return ok();
}

/// Checks that a policy target (certificate or thing group ARN) exists.
std::optional<outcome> check_target(const registry& r, const std::string& target) {
  const state& s = ops::st(r);
  if (auto id = cert_id_of_arn(target); !id.empty()) {
    if (!s.certificates.contains(id)) return not_found("certificate " + id + " does not exist");
    return std::nullopt;
  }
  if (auto group = aws_arn::name_of(target, "thinggroup")) {
    if (!s.thing_groups.contains(*group)) return not_found("thing group " + *group + " does not exist");
    return std::nullopt;
  }
  return invalid("target must be a certificate ARN or a thing group ARN");
}

outcome attach_policy(registry& r, const json::object& in) {
  const policy* p = find_policy(r, in);
  if (!p) return no_policy(in);
  auto target = text(in, "target").value_or("");
  if (auto e = check_target(r, target)) return *e;
  if (ops::st(r).policy_targets.contains(p->name, target)) return ok();
  if (ops::st(r).policy_targets.lefts_of(target).size() >= max_policies_per_target)
    return fail("LimitExceededException", 410,
                "at most " + std::to_string(max_policies_per_target) + " policies can be attached to a target");
  tx t;
  t.link(k_policy_target, p->name, target);
  if (!ops::commit(r, t)) return internal();
  return ok();
}

outcome detach_policy(registry& r, const json::object& in) {
  const policy* p = find_policy(r, in);
  if (!p) return no_policy(in);
  auto target = text(in, "target").value_or("");
  if (auto e = check_target(r, target)) return *e;
  if (!ops::st(r).policy_targets.contains(p->name, target)) return ok();
  tx t;
  t.unlink(k_policy_target, p->name, target);
  if (!ops::commit(r, t)) return internal();
  return ok();
}

outcome list_attached_policies(registry& r, const json::object& in) {
  const state& s = ops::st(r);
  auto target = text(in, "target").value_or("");
  if (auto e = check_target(r, target)) return *e;
  std::vector<std::string> targets{target};
  if (bool_member(in, "recursive").value_or(false)) {
    if (auto group = aws_arn::name_of(target, "thinggroup")) {
      auto g = s.thing_groups.find(*group);
      while (g != s.thing_groups.end() && !g->second.parent.empty()) {
        targets.push_back(r.arn("thinggroup", g->second.parent));
        g = s.thing_groups.find(g->second.parent);
      }
    }
  }
  std::set<std::string> names;
  for (const auto& t : targets)
    names.insert(s.policy_targets.lefts_of(t).begin(), s.policy_targets.lefts_of(t).end());
  std::vector<std::string> shown;
  std::optional<std::string> next;
  if (auto e = marker_page(in, {names.begin(), names.end()}, shown, next)) return *e;
  json::array out;
  for (const auto& n : shown) out.push_back(json::object{{"policyName", n}, {"policyArn", r.arn("policy", n)}});
  json::object body{{"policies", std::move(out)}};
  if (next) body["nextMarker"] = *next;
  return ok(std::move(body));
}

outcome list_targets_for_policy(registry& r, const json::object& in) {
  const policy* p = find_policy(r, in);
  if (!p) return no_policy(in);
  const auto& attached = ops::st(r).policy_targets.rights_of(p->name);
  std::vector<std::string> targets(attached.begin(), attached.end());
  std::vector<std::string> shown;
  std::optional<std::string> next;
  if (auto e = marker_page(in, std::move(targets), shown, next)) return *e;
  json::object body{{"targets", json::array(shown.begin(), shown.end())}};
  if (next) body["nextMarker"] = *next;
  return ok(std::move(body));
}

outcome get_effective_policies(registry& r, const json::object& in) {
  const state& s = ops::st(r);
  auto principal = text(in, "principal");
  auto thing = text(in, "thingName");
  std::set<std::string> names;
  if (principal) {
    if (auto e = check_target(r, *principal)) return *e;
    names.insert(s.policy_targets.lefts_of(*principal).begin(), s.policy_targets.lefts_of(*principal).end());
  }
  if (thing) {
    if (!s.things.contains(*thing)) return not_found("Thing " + *thing + " does not exist");
    for (const auto& group : groups_with_ancestors(s, *thing))
      for (const auto& policy : s.policy_targets.lefts_of(r.arn("thinggroup", group))) names.insert(policy);
  }
  json::array out;
  for (const auto& n : names) {
    const policy& p = s.policies.at(n);
    out.push_back(json::object{{"policyName", n},
                               {"policyArn", r.arn("policy", n)},
                               {"policyDocument", p.versions.at(p.default_version).document}});
  }
  return ok({{"effectivePolicies", std::move(out)}});
}

// --- thing principals ---

std::optional<outcome> check_principal(const registry& r, const std::string& principal) {
  auto id = cert_id_of_arn(principal);
  if (id.empty()) return invalid("principal must be a certificate ARN");
  if (!ops::st(r).certificates.contains(id)) return not_found("certificate " + id + " does not exist");
  return std::nullopt;
}

outcome attach_thing_principal(registry& r, const json::object& in) {
  auto name = text(in, "thingName").value_or("");
  auto principal = text(in, "principal").value_or("");
  if (!ops::st(r).things.contains(name)) return not_found("Thing " + name + " does not exist");
  if (auto e = check_principal(r, principal)) return *e;
  if (ops::st(r).thing_principals.contains(name, principal)) return ok();
  tx t;
  t.link(k_thing_principal, name, principal);
  if (!ops::commit(r, t)) return internal();
  return ok();
}

outcome detach_thing_principal(registry& r, const json::object& in) {
  auto name = text(in, "thingName").value_or("");
  auto principal = text(in, "principal").value_or("");
  if (!ops::st(r).things.contains(name)) return not_found("Thing " + name + " does not exist");
  if (auto e = check_principal(r, principal)) return *e;
  if (!ops::st(r).thing_principals.contains(name, principal)) return ok();
  tx t;
  t.unlink(k_thing_principal, name, principal);
  if (!ops::commit(r, t)) return internal();
  return ok();
}

outcome list_thing_principals(registry& r, const json::object& in) {
  auto name = text(in, "thingName").value_or("");
  if (!ops::st(r).things.contains(name)) return not_found("Thing " + name + " does not exist");
  std::int64_t max = 0;
  if (auto e = page_size(in, "maxResults", 250, max, 25)) return *e;
  const auto& attached = ops::st(r).thing_principals.rights_of(name);
  std::vector<std::string> principals(attached.begin(), attached.end());
  std::optional<std::string> next;
  auto shown = page_after(principals, text(in, "nextToken"), max, next);
  json::object body{{"principals", json::array(shown.begin(), shown.end())}};
  if (next) body["nextToken"] = *next;
  return ok(std::move(body));
}

outcome list_principal_things(registry& r, const json::object& in) {
  auto principal = text(in, "principal").value_or("");
  if (auto e = check_principal(r, principal)) return *e;
  std::int64_t max = 0;
  if (auto e = page_size(in, "maxResults", 250, max, 25)) return *e;
  const auto& attached = ops::st(r).thing_principals.lefts_of(principal);
  std::vector<std::string> things(attached.begin(), attached.end());
  std::optional<std::string> next;
  auto shown = page_after(things, text(in, "nextToken"), max, next);
  json::object body{{"things", json::array(shown.begin(), shown.end())}};
  if (next) body["nextToken"] = *next;
  return ok(std::move(body));
}

}  // namespace

void registry::ops::add_policy_ops(std::map<std::string, fn, std::less<>>& t) {
  t["CreatePolicy"] = create_policy;
  t["CreatePolicyVersion"] = create_policy_version;
  t["GetPolicy"] = get_policy;
  t["GetPolicyVersion"] = get_policy_version;
  t["ListPolicies"] = list_policies;
  t["ListPolicyVersions"] = list_policy_versions;
  t["DeletePolicy"] = delete_policy;
  t["DeletePolicyVersion"] = delete_policy_version;
  t["SetDefaultPolicyVersion"] = set_default_policy_version;
  t["AttachPolicy"] = attach_policy;
  t["DetachPolicy"] = detach_policy;
  t["ListAttachedPolicies"] = list_attached_policies;
  t["ListTargetsForPolicy"] = list_targets_for_policy;
  t["GetEffectivePolicies"] = get_effective_policies;
  t["AttachThingPrincipal"] = attach_thing_principal;
  t["DetachThingPrincipal"] = detach_thing_principal;
  t["ListThingPrincipals"] = list_thing_principals;
  t["ListPrincipalThings"] = list_principal_things;
}

}  // namespace fleetcore::registry
