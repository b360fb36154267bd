#include "registry/detail.hpp"

#include "common/log.hpp"
#include "common/uuid.hpp"

#include <openssl/rand.h>

#include <algorithm>
#include <stdexcept>

namespace fleetcore::registry {

namespace {

bool all_of(std::string_view s, std::size_t max, bool (*ok)(char)) {
  if (s.empty() || s.size() > max) return false;
  for (char c : s)
    if (!ok(c)) return false;
  return true;
}
bool alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }

}  // namespace

std::string_view to_string(cert_check c) {
  switch (c) {
    case cert_check::accepted: return "accepted";
    case cert_check::unknown: return "unknown";
    case cert_check::inactive: return "inactive";
    case cert_check::expired: return "expired";
    case cert_check::ca_inactive: return "ca_inactive";
    case cert_check::pending_jitr: return "pending_jitr";
  }
  return "?";
}

bool valid_policy_name(std::string_view s) {
  return all_of(s, 128, [](char c) {
    return alnum(c) || c == '_' || c == '+' || c == '=' || c == ',' || c == '.' || c == '@' || c == '-';
  });
}
bool valid_attribute_name(std::string_view s) {
  return all_of(s, 128, [](char c) {
    return alnum(c) || c == '_' || c == '.' || c == ',' || c == '@' || c == '/' || c == ':' || c == '#' || c == '-';
  });
}
bool valid_attribute_value(std::string_view s) {
  if (s.empty()) return true;
  return all_of(s, 800, [](char c) {
    return alnum(c) || c == '_' || c == '.' || c == ',' || c == '@' || c == '/' || c == ':' || c == '#' || c == '-' ||
           c == '=' || c == '[' || c == ']';
  });
}

std::optional<outcome> apply_attribute_payload(const json::object* payload, std::map<std::string, std::string>& attrs,
                                               bool replace_default) {
  if (!payload) return std::nullopt;
  bool merge = !replace_default;
  if (auto m = bool_member(*payload, "merge")) merge = *m;
  const json::object* given = object_member(*payload, "attributes");
  if (!given) return std::nullopt;
  if (!merge) attrs.clear();
  for (const auto& [k, v] : *given) {
    if (!valid_attribute_name(k)) return invalid("invalid attribute name '" + std::string(k) + "'");
    if (!v.is_string()) return invalid("attribute values must be strings");
    std::string value(v.as_string());
    if (!valid_attribute_value(value)) return invalid("invalid value for attribute '" + std::string(k) + "'");
    // AWS: an empty value in a merge removes the attribute.
    if (value.empty())
      attrs.erase(std::string(k));
    else
      attrs[std::string(k)] = value;
  }
  return std::nullopt;
}

std::vector<std::string> groups_with_ancestors(const state& s, const std::string& thing) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (const auto& group : s.group_members.lefts_of(thing)) {
    for (std::string g = group; !g.empty() && seen.insert(g).second;) {
      out.push_back(g);
      auto it = s.thing_groups.find(g);
      g = it == s.thing_groups.end() ? std::string() : it->second.parent;
    }
  }
  return out;
}

std::string cert_id_of_arn(std::string_view arn) {
  return aws_arn::name_of(arn, "cert").value_or("");
}

// --- the registry ---

registry::registry(settings s, storage::store& store, common::clock& clock, auth::x509_ptr ca, auth::pkey_ptr ca_key)
    : settings_(std::move(s)), store_(store), clock_(clock), ca_(std::move(ca)), ca_key_(std::move(ca_key)) {
  load();
  // The registry's own observer: AWS registry events, for the types enabled.
  observe([this](const std::vector<change>& changes) {
    if (!replaying_) publish_aws_events(changes);  // the node that made the change publishes them
  });
}

registry::~registry() = default;

void registry::load() {
  for (const char* kind : k_all_kinds)
    for (const auto& d : store_.load_documents(kind))
      if (!apply(st_, d, nullptr)) throw std::runtime_error("registry: unreadable " + d.kind + " '" + d.key + "'");
  FC_LOG_INFO("registry.loaded", "things={} certificates={} ca_certificates={} policies={}", st_.things.size(),
              st_.certificates.size(), st_.ca_certificates.size(), st_.policies.size());
}

bool registry::commit(tx& t) {
  if (t.empty()) return true;
  std::vector<storage::operation> written = t.ops;
  if (!store_.submit_and_wait(std::move(t.ops))) return false;
  apply_committed(written);
  if (replicate) replicate(written);
  return true;
}

void registry::apply_replica(const std::vector<storage::operation>& writes) {
  std::lock_guard lock(control_mutex_);
  replaying_ = true;
  apply_committed(writes);
  replaying_ = false;
}

void registry::apply_committed(const std::vector<storage::operation>& writes) {
  std::vector<change> changes;
  {
    std::unique_lock lock(state_mutex_);
    for (const auto& op : writes) {
      if (const auto* put = std::get_if<storage::op::put_document>(&op)) {
        if (apply(st_, put->doc, &changes)) continue;
        // Our own serialization: unreadable only through a bug. Another node's may be of a newer
        // version: that document waits for this node to be upgraded (it is in the store).
        FC_CHECK(replaying_);
        FC_LOG_ERROR("registry.replica_unreadable", "kind={} key={}", put->doc.kind, common::untrusted(put->doc.key));
      } else if (const auto* del = std::get_if<storage::op::delete_document>(&op)) {
        erase(st_, del->kind, del->key, &changes);
      }
    }
    generation_.fetch_add(1, std::memory_order_acq_rel);
  }
  if (!changes.empty())
    for (const auto& fn : observers_) fn(changes);
}

double registry::now() const { return static_cast<double>(clock_.wall_ms()) / 1000.0; }

std::string registry::new_id() { return common::random_uuid(); }

std::string registry::arn(std::string_view kind, std::string_view name) const {
  return aws_arn{"aws", settings_.region, settings_.account_id, std::string(kind), std::string(name)}.format();
}

const std::map<std::string, registry::ops::fn, std::less<>>& registry::ops::table() {
  static const auto t = [] {
    std::map<std::string, fn, std::less<>> m;
    add_thing_ops(m);
    add_certificate_ops(m);
    add_policy_ops(m);
    add_event_ops(m);
    add_provision_ops(m);
    return m;
  }();
  return t;
}

std::vector<std::string_view> registry::operations() {
  std::vector<std::string_view> names;
  for (const auto& [name, fn] : ops::table())
    if (name.find(':') == std::string::npos) names.emplace_back(name);  // fleetcore:* are internal
  return names;
}

outcome registry::call(std::string_view op, const boost::json::object& input) {
  auto it = ops::table().find(op);
  if (it == ops::table().end()) return invalid("operation " + std::string(op) + " is not supported");
  std::lock_guard lock(control_mutex_);
  api_calls_.inc();
  outcome out = it->second(*this, input);
  if (out.error) api_errors_.inc();
  return out;
}

bool registry::has_thing(std::string_view name) const {
  std::shared_lock lock(state_mutex_);
  return st_.things.contains(std::string(name));
}

std::optional<std::vector<std::string>> registry::things_in_group_tree(std::string_view group) const {
  std::shared_lock lock(state_mutex_);
  if (!st_.thing_groups.contains(std::string(group))) return std::nullopt;
  std::set<std::string> names;
  for (const auto& [g, info] : st_.thing_groups) {
    bool inside = g == group;
    for (auto it = st_.thing_groups.find(info.parent); !inside && it != st_.thing_groups.end();
         it = st_.thing_groups.find(it->second.parent))
      inside = it->first == group;  // group depth is bounded (max_group_depth)
    if (inside) names.insert(st_.group_members.rights_of(g).begin(), st_.group_members.rights_of(g).end());
  }
  return std::vector<std::string>(names.begin(), names.end());
}

std::vector<std::string> registry::group_tree_of(std::string_view thing) const {
  std::shared_lock lock(state_mutex_);
  auto groups = groups_with_ancestors(st_, std::string(thing));
  std::sort(groups.begin(), groups.end());
  return groups;
}

bool registry::event_enabled(std::string_view type) const {
  std::shared_lock lock(state_mutex_);
  return st_.events.on(type);
}

std::shared_ptr<const auth::policy_document> registry::policy_named(std::string_view name) const {
  std::shared_lock lock(state_mutex_);
  auto it = st_.policies.find(std::string(name));
  if (it == st_.policies.end()) return nullptr;
  auto v = it->second.versions.find(it->second.default_version);
  return v == it->second.versions.end() ? nullptr : v->second.parsed;
}

std::shared_ptr<const auth::policy_document> registry::claim_policy(const std::string& template_name) const {
  auto topics = [&](std::string_view kind) {
    json::array a;
    for (std::string_view base : {"$aws/certificates/create/*", "$aws/certificates/create-from-csr/*"})
      a.emplace_back(arn(kind, base));
    a.emplace_back(arn(kind, "$aws/provisioning-templates/" + template_name + "/provision/*"));
    return a;
  };
  json::object doc{{"Version", "2012-10-17"},
                   {"Statement", json::array{json::object{{"Effect", "Allow"}, {"Action", "iot:Connect"}, {"Resource", "*"}},
                                             json::object{{"Effect", "Allow"},
                                                          {"Action", json::array{"iot:Publish", "iot:Receive"}},
                                                          {"Resource", topics("topic")}},
                                             json::object{{"Effect", "Allow"},
                                                          {"Action", "iot:Subscribe"},
                                                          {"Resource", topics("topicfilter")}}}}};
  std::string error;
  auto parsed = auth::policy_document::parse(json::serialize(doc), error);
  if (!parsed) throw std::logic_error("claim policy: " + error);  // template names are [0-9A-Za-z_-]
  return std::make_shared<const auth::policy_document>(std::move(*parsed));
}

principal_view registry::principal_for(std::string_view certificate_id, std::string_view client_id) const {
  principal_view view;
  std::string principal = arn("cert", certificate_id);
  std::shared_lock lock(state_mutex_);
  auto add_policies_of = [&](const std::string& target) {
    for (const auto& name : st_.policy_targets.lefts_of(target)) {
      auto p = st_.policies.find(name);
      if (p == st_.policies.end()) continue;
      auto v = p->second.versions.find(p->second.default_version);
      if (v != p->second.versions.end() && v->second.parsed) view.policies.push_back(v->second.parsed);
    }
  };
  if (auto c = st_.certificates.find(std::string(certificate_id)); c != st_.certificates.end()) {
    view.cert_variables = c->second.facts.variables;
    if (!c->second.claim_template.empty()) {
      // A provisioning claim may do its template's fleet provisioning and nothing else, whatever is
      // attached to it.
      view.policies.push_back(claim_policy(c->second.claim_template));
      return view;
    }
  }
  add_policies_of(principal);
  std::string client(client_id);
  auto t = st_.things.find(client);
  if (t != st_.things.end() && st_.thing_principals.contains(client, principal)) {
    view.connection_thing = t->second;
    // Policies of the thing's groups and of their ancestors apply to its connection.
    for (const auto& group : groups_with_ancestors(st_, client)) add_policies_of(arn("thinggroup", group));
  }
  return view;
}

void registry::register_metrics(common::registry& r) const {
  r.add(api_calls_, "fleetcore_registry_calls_total", "", "Control-plane operations run.");
  r.add(api_errors_, "fleetcore_registry_errors_total", "", "Control-plane operations that returned an error.");
  r.add(jitr_registered_, "fleetcore_registry_jitr_registered_total", "",
        "Certificates registered as PENDING_ACTIVATION by just-in-time registration.");
  r.add(cert_refusals_, "fleetcore_tls_client_certificates_refused_total", "",
        "TLS clients refused because their certificate is unknown, inactive, expired or its CA is not active.");
  r.add(events_published_, "fleetcore_registry_events_published_total", "",
        "AWS registry events (things, thing types, thing groups, memberships) published.");
}

}  // namespace fleetcore::registry
