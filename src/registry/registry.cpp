#include "registry/detail.hpp"

#include "common/log.hpp"

#include <openssl/rand.h>

#include <future>
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

json::object attributes_json(const std::map<std::string, std::string>& attrs) {
  json::object o;
  for (const auto& [k, v] : attrs) o[k] = v;
  return o;
}
std::map<std::string, std::string> attributes_from(const json::value* v) {
  std::map<std::string, std::string> m;
  if (v && v->is_object())
    for (const auto& [k, val] : v->as_object())
      if (val.is_string()) m[std::string(k)] = std::string(val.as_string());
  return m;
}
std::string str_of(const json::object& o, std::string_view k) {
  auto* v = o.if_contains(k);
  return v && v->is_string() ? std::string(v->as_string()) : std::string();
}
double num_of(const json::object& o, std::string_view k) {
  auto* v = o.if_contains(k);
  return v && (v->is_double() || v->is_int64()) ? v->to_number<double>() : 0;
}
std::int64_t int_of(const json::object& o, std::string_view k) {
  auto* v = o.if_contains(k);
  return v && v->is_int64() ? v->as_int64() : 0;
}

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

std::optional<std::string> text(const json::object& in, std::string_view key) {
  auto* v = in.if_contains(key);
  if (!v || !v->is_string()) return std::nullopt;
  return std::string(v->as_string());
}
std::optional<std::int64_t> integer(const json::object& in, std::string_view key) {
  auto* v = in.if_contains(key);
  if (!v || !v->is_int64()) return std::nullopt;
  return v->as_int64();
}
std::optional<bool> boolean(const json::object& in, std::string_view key) {
  auto* v = in.if_contains(key);
  if (!v || !v->is_bool()) return std::nullopt;
  return v->as_bool();
}
const json::object* object(const json::object& in, std::string_view key) {
  auto* v = in.if_contains(key);
  return v && v->is_object() ? &v->as_object() : nullptr;
}

std::vector<std::string> page(const std::vector<std::string>& names, const std::optional<std::string>& token,
                              std::int64_t max, std::optional<std::string>& next) {
  auto it = names.begin();
  if (token) it = std::upper_bound(names.begin(), names.end(), *token);
  std::vector<std::string> out;
  for (; it != names.end() && static_cast<std::int64_t>(out.size()) < max; ++it) out.push_back(*it);
  if (it != names.end() && !out.empty()) next = out.back();
  return out;
}

std::optional<outcome> page_size(const json::object& in, std::string_view key, std::int64_t limit, std::int64_t& out,
                                 std::int64_t def) {
  out = def;
  if (auto v = integer(in, key)) {
    if (*v < 1 || *v > limit)
      return invalid(std::string(key) + " must be between 1 and " + std::to_string(limit));
    out = *v;
  }
  return std::nullopt;
}

bool valid_thing_name(std::string_view s) {
  return all_of(s, 128, [](char c) { return alnum(c) || c == ':' || c == '_' || c == '-'; });
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
  if (auto m = boolean(*payload, "merge")) merge = *m;
  const json::object* given = object(*payload, "attributes");
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

std::string random_id() {
  unsigned char b[16];
  RAND_bytes(b, sizeof(b));
  b[6] = static_cast<unsigned char>((b[6] & 0x0F) | 0x40);
  b[8] = static_cast<unsigned char>((b[8] & 0x3F) | 0x80);
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) s += '-';
    s += digits[b[i] >> 4];
    s += digits[b[i] & 15];
  }
  return s;
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
  auto pos = arn.find(":cert/");
  if (pos == std::string_view::npos || !arn.starts_with("arn:")) return {};
  return std::string(arn.substr(pos + 6));
}

// --- serialization ---

std::string to_doc(const thing& t) {
  return json::serialize(json::object{{"name", t.name}, {"id", t.id}, {"type", t.type},
                                      {"attributes", attributes_json(t.attributes)}, {"version", t.version}});
}
thing thing_from(const json::object& o) {
  return {str_of(o, "name"), str_of(o, "id"), str_of(o, "type"), attributes_from(o.if_contains("attributes")),
          int_of(o, "version")};
}
std::string to_doc(const thing_type& t) {
  json::array searchable(t.searchable.begin(), t.searchable.end());
  return json::serialize(json::object{{"name", t.name},
                                      {"id", t.id},
                                      {"description", t.description},
                                      {"searchable", std::move(searchable)},
                                      {"deprecated", t.deprecated},
                                      {"deprecation_date", t.deprecation_date},
                                      {"creation_date", t.creation_date}});
}
thing_type thing_type_from(const json::object& o) {
  thing_type t{str_of(o, "name"), str_of(o, "id"), str_of(o, "description"), {}, false, 0, 0};
  if (auto* a = o.if_contains("searchable"); a && a->is_array())
    for (const auto& v : a->as_array())
      if (v.is_string()) t.searchable.emplace_back(v.as_string());
  if (auto* d = o.if_contains("deprecated"); d && d->is_bool()) t.deprecated = d->as_bool();
  t.deprecation_date = num_of(o, "deprecation_date");
  t.creation_date = num_of(o, "creation_date");
  return t;
}
std::string to_doc(const thing_group& g) {
  return json::serialize(json::object{{"name", g.name},
                                      {"id", g.id},
                                      {"parent", g.parent},
                                      {"description", g.description},
                                      {"attributes", attributes_json(g.attributes)},
                                      {"version", g.version},
                                      {"creation_date", g.creation_date}});
}
thing_group thing_group_from(const json::object& o) {
  return {str_of(o, "name"), str_of(o, "id"), str_of(o, "parent"), str_of(o, "description"),
          attributes_from(o.if_contains("attributes")), int_of(o, "version"), num_of(o, "creation_date")};
}
std::string to_doc(const certificate& c) {
  return json::serialize(json::object{{"id", c.id},
                                      {"pem", c.pem},
                                      {"status", c.status},
                                      {"ca_id", c.ca_id},
                                      {"mode", c.mode},
                                      {"creation_date", c.creation_date},
                                      {"last_modified", c.last_modified},
                                      {"customer_version", c.customer_version},
                                      {"generation_id", c.generation_id}});
}
certificate certificate_from(const json::object& o) {
  certificate c;
  c.id = str_of(o, "id");
  c.pem = str_of(o, "pem");
  c.status = str_of(o, "status");
  c.ca_id = str_of(o, "ca_id");
  c.mode = str_of(o, "mode");
  c.creation_date = num_of(o, "creation_date");
  c.last_modified = num_of(o, "last_modified");
  c.customer_version = int_of(o, "customer_version");
  c.generation_id = str_of(o, "generation_id");
  if (auto x = auth::parse_pem_cert(c.pem)) c.facts = auth::facts_of(x.get());
  return c;
}
std::string to_doc(const ca_certificate& c) {
  return json::serialize(json::object{{"id", c.id},
                                      {"pem", c.pem},
                                      {"status", c.status},
                                      {"auto_registration", c.auto_registration},
                                      {"role_arn", c.role_arn},
                                      {"template_body", c.template_body},
                                      {"creation_date", c.creation_date},
                                      {"last_modified", c.last_modified},
                                      {"customer_version", c.customer_version},
                                      {"generation_id", c.generation_id}});
}
ca_certificate ca_certificate_from(const json::object& o) {
  ca_certificate c;
  c.id = str_of(o, "id");
  c.pem = str_of(o, "pem");
  c.status = str_of(o, "status");
  c.auto_registration = str_of(o, "auto_registration");
  c.role_arn = str_of(o, "role_arn");
  c.template_body = str_of(o, "template_body");
  c.creation_date = num_of(o, "creation_date");
  c.last_modified = num_of(o, "last_modified");
  c.customer_version = int_of(o, "customer_version");
  c.generation_id = str_of(o, "generation_id");
  if (auto x = auth::parse_pem_cert(c.pem)) {
    c.facts = auth::facts_of(x.get());
    c.x509 = std::shared_ptr<X509>(x.release(), X509_free);
  }
  return c;
}
std::string to_doc(const policy& p) {
  json::array versions;
  for (const auto& [id, v] : p.versions)
    versions.push_back(json::object{{"id", id}, {"document", v.document}, {"creation_date", v.creation_date}});
  return json::serialize(json::object{{"name", p.name},
                                      {"versions", std::move(versions)},
                                      {"default_version", p.default_version},
                                      {"next_version", p.next_version},
                                      {"creation_date", p.creation_date},
                                      {"last_modified", p.last_modified},
                                      {"generation_id", p.generation_id}});
}
policy policy_from(const json::object& o) {
  policy p;
  p.name = str_of(o, "name");
  if (auto* a = o.if_contains("versions"); a && a->is_array()) {
    for (const auto& v : a->as_array()) {
      if (!v.is_object()) continue;
      const auto& vo = v.as_object();
      policy_version pv{str_of(vo, "document"), num_of(vo, "creation_date"), nullptr};
      std::string error;
      if (auto doc = auth::policy_document::parse(pv.document, error))
        pv.parsed = std::make_shared<const auth::policy_document>(std::move(*doc));
      p.versions.emplace(static_cast<int>(int_of(vo, "id")), std::move(pv));
    }
  }
  p.default_version = static_cast<int>(int_of(o, "default_version"));
  p.next_version = static_cast<int>(int_of(o, "next_version"));
  p.creation_date = num_of(o, "creation_date");
  p.last_modified = num_of(o, "last_modified");
  p.generation_id = str_of(o, "generation_id");
  return p;
}

// --- the registry ---

registry::registry(settings s, storage::store& store, common::clock& clock, auth::x509_ptr ca, auth::pkey_ptr ca_key)
    : settings_(std::move(s)), store_(store), clock_(clock), ca_(std::move(ca)), ca_key_(std::move(ca_key)) {
  load();
}

registry::~registry() = default;

void registry::load() {
  std::vector<storage::document> docs;
  for (const char* kind : {k_thing, k_thing_type, k_thing_group, k_certificate, k_ca_certificate, k_policy,
                           k_thing_principal, k_policy_target, k_group_member, "setting"}) {
    auto some = store_.load_documents(kind);
    std::move(some.begin(), some.end(), std::back_inserter(docs));
  }
  for (auto& d : docs) {
    boost::system::error_code ec;
    auto v = json::parse(d.body, ec);
    if (d.kind == k_thing_principal || d.kind == k_policy_target || d.kind == k_group_member) {
      auto tab = d.key.find('\t');
      if (tab == std::string::npos) throw std::runtime_error("registry: bad relation key in " + d.kind);
      (d.kind == k_thing_principal ? st_.thing_principals
       : d.kind == k_policy_target ? st_.policy_targets
                                   : st_.group_members)
          .insert(d.key.substr(0, tab), d.key.substr(tab + 1));
      continue;
    }
    if (ec || !v.is_object()) throw std::runtime_error("registry: unreadable " + d.kind + " '" + d.key + "'");
    const auto& o = v.as_object();
    if (d.kind == "setting" && d.key == "registration_code") registration_code_ = str_of(o, "value");
    if (d.kind == k_thing) st_.things.emplace(d.key, thing_from(o));
    else if (d.kind == k_thing_type) st_.thing_types.emplace(d.key, thing_type_from(o));
    else if (d.kind == k_thing_group) st_.thing_groups.emplace(d.key, thing_group_from(o));
    else if (d.kind == k_certificate) st_.certificates.emplace(d.key, certificate_from(o));
    else if (d.kind == k_ca_certificate) st_.ca_certificates.emplace(d.key, ca_certificate_from(o));
    else if (d.kind == k_policy) st_.policies.emplace(d.key, policy_from(o));
  }
  FC_LOG_INFO("registry.loaded", "things={} certificates={} ca_certificates={} policies={}", st_.things.size(),
              st_.certificates.size(), st_.ca_certificates.size(), st_.policies.size());
}

bool registry::commit(tx& t) {
  if (t.empty()) return true;
  std::promise<bool> durable;
  auto result = durable.get_future();
  store_.submit(std::move(t.ops), [&durable](bool ok) { durable.set_value(ok); });
  if (!result.get()) return false;
  {
    std::unique_lock lock(state_mutex_);
    for (auto& fn : t.apply) fn(st_);
    generation_.fetch_add(1, std::memory_order_acq_rel);
  }
  if (certificate_disabled)
    for (const auto& id : t.disabled_certificates) certificate_disabled(id);
  if (changed) changed();
  return true;
}

double registry::now() const { return static_cast<double>(clock_.wall_ms()) / 1000.0; }

std::string registry::new_id() { return random_id(); }

std::string registry::arn(std::string_view kind, std::string_view name) const {
  return "arn:aws:iot:" + settings_.region + ":" + settings_.account_id + ":" + std::string(kind) + "/" +
         std::string(name);
}

const std::map<std::string, registry::ops::fn, std::less<>>& registry::ops::table() {
  static const auto t = [] {
    std::map<std::string, fn, std::less<>> m;
    add_thing_ops(m);
    add_certificate_ops(m);
    add_policy_ops(m);
    return m;
  }();
  return t;
}

bool registry::knows(std::string_view op) { return ops::table().contains(op); }

outcome registry::call(std::string_view op, const boost::json::object& input) {
  auto it = ops::table().find(op);
  if (it == ops::table().end()) return invalid("operation " + std::string(op) + " is not supported");
  std::lock_guard lock(control_mutex_);
  api_calls_.inc();
  outcome out = it->second(*this, input);
  if (out.error) api_errors_.inc();
  return out;
}

std::shared_ptr<const auth::policy_document> registry::policy_named(std::string_view name) const {
  std::shared_lock lock(state_mutex_);
  auto it = st_.policies.find(std::string(name));
  if (it == st_.policies.end()) return nullptr;
  auto v = it->second.versions.find(it->second.default_version);
  return v == it->second.versions.end() ? nullptr : v->second.parsed;
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
  add_policies_of(principal);
  if (auto c = st_.certificates.find(std::string(certificate_id)); c != st_.certificates.end())
    view.cert_variables = c->second.facts.variables;
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
}

}  // namespace fleetcore::registry
