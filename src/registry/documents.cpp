// The registry's documents: their serialization, and `apply`/`erase`, which turn a stored document
// into in-memory state and typed changes. load() and commit() both go through them, so the state is a
// function of the documents, whichever path brought them.
#include "registry/detail.hpp"

namespace fleetcore::registry {

namespace {

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
// Stored documents are fleetcore's own: a missing member reads as empty or zero.
std::string str_of(const json::object& o, std::string_view k) { return std::string(common::text_member(o, k).value_or("")); }
double num_of(const json::object& o, std::string_view k) { return common::number_member(o, k).value_or(0); }
std::int64_t int_of(const json::object& o, std::string_view k) { return int_member(o, k).value_or(0); }

std::string_view const status_names[] = {"ACTIVE",           "INACTIVE",          "REVOKED",
                                          "PENDING_TRANSFER", "REGISTER_INACTIVE", "PENDING_ACTIVATION"};

}  // namespace

std::string_view to_string(cert_status s) { return status_names[static_cast<std::size_t>(s)]; }
std::optional<cert_status> parse_cert_status(std::string_view s) {
  for (std::size_t i = 0; i < std::size(status_names); ++i)
    if (status_names[i] == s) return static_cast<cert_status>(i);
  return std::nullopt;
}
std::string_view to_string(ca_status s) { return s == ca_status::active ? "ACTIVE" : "INACTIVE"; }
std::optional<ca_status> parse_ca_status(std::string_view s) {
  if (s == "ACTIVE") return ca_status::active;
  if (s == "INACTIVE") return ca_status::inactive;
  return std::nullopt;
}

// --- serialization (what is derived from a document, as parsed certificates and policies, is filled in by apply) ---

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
                                      {"status", std::string(to_string(c.status))},
                                      {"ca_id", c.ca_id},
                                      {"mode", c.mode},
                                      {"claim_template", c.claim_template},
                                      {"creation_date", c.creation_date},
                                      {"last_modified", c.last_modified},
                                      {"customer_version", c.customer_version},
                                      {"generation_id", c.generation_id}});
}
certificate certificate_from(const json::object& o) {
  certificate c;
  c.id = str_of(o, "id");
  c.pem = str_of(o, "pem");
  // An unknown status cannot connect.
  c.status = parse_cert_status(str_of(o, "status")).value_or(cert_status::inactive);
  c.ca_id = str_of(o, "ca_id");
  c.mode = str_of(o, "mode");
  c.claim_template = str_of(o, "claim_template");
  c.creation_date = num_of(o, "creation_date");
  c.last_modified = num_of(o, "last_modified");
  c.customer_version = int_of(o, "customer_version");
  c.generation_id = str_of(o, "generation_id");
  return c;
}
std::string to_doc(const ca_certificate& c) {
  return json::serialize(json::object{{"id", c.id},
                                      {"pem", c.pem},
                                      {"status", std::string(to_string(c.status))},
                                      {"auto_registration", c.auto_registration},
                                      {"role_arn", c.role_arn},
                                      {"template_body", c.template_body},
                                      {"template_name", c.template_name},
                                      {"creation_date", c.creation_date},
                                      {"last_modified", c.last_modified},
                                      {"customer_version", c.customer_version},
                                      {"generation_id", c.generation_id}});
}
ca_certificate ca_certificate_from(const json::object& o) {
  ca_certificate c;
  c.id = str_of(o, "id");
  c.pem = str_of(o, "pem");
  c.status = parse_ca_status(str_of(o, "status")).value_or(ca_status::inactive);
  c.auto_registration = str_of(o, "auto_registration");
  c.role_arn = str_of(o, "role_arn");
  c.template_body = str_of(o, "template_body");
  c.template_name = str_of(o, "template_name");
  c.creation_date = num_of(o, "creation_date");
  c.last_modified = num_of(o, "last_modified");
  c.customer_version = int_of(o, "customer_version");
  c.generation_id = str_of(o, "generation_id");
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

std::string to_doc(const event_configurations& e) {
  json::object enabled;
  for (const auto& [type, on] : e.enabled) enabled[type] = on;
  return json::serialize(json::object{
      {"enabled", std::move(enabled)}, {"creation_date", e.creation_date}, {"last_modified", e.last_modified}});
}
event_configurations event_configurations_from(const json::object& o) {
  event_configurations e;
  if (auto* m = o.if_contains("enabled"); m && m->is_object())
    for (const auto& [type, on] : m->as_object())
      if (on.is_bool()) e.enabled[std::string(type)] = on.as_bool();
  e.creation_date = num_of(o, "creation_date");
  e.last_modified = num_of(o, "last_modified");
  return e;
}

// --- apply and erase ---

namespace {

std::vector<group_ref> root_to_parent(const state& st, const thing_group& g) {
  std::vector<group_ref> chain;
  std::set<std::string> seen{g.name};
  for (std::string p = g.parent; !p.empty() && seen.insert(p).second;) {
    auto it = st.thing_groups.find(p);
    if (it == st.thing_groups.end()) break;
    chain.push_back({p, it->second.id});
    p = it->second.parent;
  }
  std::reverse(chain.begin(), chain.end());
  return chain;
}
std::string id_of(const auto& map, const std::string& name) {
  auto it = map.find(name);
  return it == map.end() ? std::string() : it->second.id;
}

relation* relation_of(state& st, std::string_view kind) {
  if (kind == k_thing_principal) return &st.thing_principals;
  if (kind == k_policy_target) return &st.policy_targets;
  if (kind == k_group_member) return &st.group_members;
  return nullptr;
}

void emit(std::vector<change>* out, change c) {
  if (out) out->push_back(std::move(c));
}

/// The changes of a relation (left, right) of `kind` being added or removed.
void relation_changes(const state& st, std::string_view kind, const std::string& left, const std::string& right,
                      link_op op, std::vector<change>* out) {
  if (!out) return;
  if (kind == k_thing_principal) {
    emit(out, thing_principal_changed{op, left, right});
  } else if (kind == k_policy_target) {
    emit(out, policy_attachment{op, left, right});
  } else {
    auto m = st.membership_ids.find(pair_key(left, right));
    emit(out, group_membership{op, left, id_of(st.thing_groups, left), right, id_of(st.things, right),
                               m == st.membership_ids.end() ? std::string() : m->second});
  }
}

void thing_put(state& st, thing t, std::vector<change>* out) {
  auto old = st.things.find(t.name);
  std::string old_type = old == st.things.end() ? std::string() : old->second.type;
  if (out) {
    emit(out, thing_changed{old == st.things.end() ? change_op::created : change_op::updated, t});
    if (old_type != t.type) {
      if (!old_type.empty()) emit(out, thing_type_association{link_op::removed, t.name, t.id, old_type});
      if (!t.type.empty()) emit(out, thing_type_association{link_op::added, t.name, t.id, t.type});
    }
  }
  std::string name = t.name;
  st.things[name] = std::move(t);
}

void group_put(state& st, thing_group g, std::vector<change>* out) {
  auto old = st.thing_groups.find(g.name);
  bool created = old == st.thing_groups.end();
  if (out) {
    emit(out, thing_group_changed{created ? change_op::created : change_op::updated, g, root_to_parent(st, g)});
    std::string old_parent = created ? std::string() : old->second.parent;
    if (old_parent != g.parent) {
      if (!old_parent.empty())
        emit(out, group_hierarchy{link_op::removed, {old_parent, id_of(st.thing_groups, old_parent)}, {g.name, g.id}});
      if (!g.parent.empty())
        emit(out, group_hierarchy{link_op::added, {g.parent, id_of(st.thing_groups, g.parent)}, {g.name, g.id}});
    }
  }
  std::string name = g.name;
  st.thing_groups[name] = std::move(g);
}

void certificate_put(state& st, certificate c, std::vector<change>* out) {
  auto old = st.certificates.find(c.id);
  if (old != st.certificates.end() && old->second.pem == c.pem) {
    c.facts = old->second.facts;
  } else if (auto x = auth::parse_pem_cert(c.pem)) {
    c.facts = auth::facts_of(x.get());
  }
  if (out) {
    auto op = old == st.certificates.end() ? change_op::created : change_op::updated;
    emit(out, certificate_changed{op, c.id, c.status});
    if (old != st.certificates.end() && old->second.status == cert_status::active && c.status != cert_status::active)
      emit(out, certificate_disabled{c.id});
  }
  std::string id = c.id;
  st.certificates[id] = std::move(c);
}

void ca_put(state& st, ca_certificate c, std::vector<change>* out) {
  auto old = st.ca_certificates.find(c.id);
  if (old != st.ca_certificates.end() && old->second.pem == c.pem) {
    c.facts = old->second.facts;
    c.x509 = old->second.x509;
  } else if (auto x = auth::parse_pem_cert(c.pem)) {
    c.facts = auth::facts_of(x.get());
    c.x509 = std::shared_ptr<X509>(x.release(), X509_free);
  }
  if (out) {
    emit(out, ca_certificate_changed{old == st.ca_certificates.end() ? change_op::created : change_op::updated, c.id,
                                     c.status});
    // Its certificates stop connecting when it leaves ACTIVE.
    if (old != st.ca_certificates.end() && old->second.status == ca_status::active && c.status != ca_status::active)
      for (const auto& [id, cert] : st.certificates)
        if (cert.ca_id == c.id && cert.status == cert_status::active) emit(out, certificate_disabled{id});
  }
  std::string id = c.id;
  st.ca_certificates[id] = std::move(c);
}

void policy_put(state& st, policy p, std::vector<change>* out) {
  auto old = st.policies.find(p.name);
  for (auto& [id, v] : p.versions) {
    // An unchanged version keeps its parsed document: decisions cached against it stay valid.
    if (old != st.policies.end()) {
      auto was = old->second.versions.find(id);
      if (was != old->second.versions.end() && was->second.document == v.document) {
        v.parsed = was->second.parsed;
        continue;
      }
    }
    std::string error;
    if (auto doc = auth::policy_document::parse(v.document, error))
      v.parsed = std::make_shared<const auth::policy_document>(std::move(*doc));
  }
  emit(out, policy_changed{old == st.policies.end() ? change_op::created : change_op::updated, p.name});
  std::string name = p.name;
  st.policies[name] = std::move(p);
}

}  // namespace

bool apply(state& st, const storage::document& d, std::vector<change>* out) {
  if (relation* rel = relation_of(st, d.kind)) {
    auto tab = d.key.find('\t');
    if (tab == std::string::npos) return false;
    std::string left = d.key.substr(0, tab), right = d.key.substr(tab + 1);
    if (d.kind == k_group_member) {
      // Older stores hold "{}": no membership id.
      boost::system::error_code ec;
      auto v = json::parse(d.body, ec);
      if (!ec && v.is_object()) {
        if (auto id = str_of(v.as_object(), "membershipId"); !id.empty()) st.membership_ids[d.key] = id;
      }
    }
    bool fresh = !rel->contains(left, right);
    rel->insert(left, right);
    if (fresh) relation_changes(st, d.kind, left, right, link_op::added, out);
    return true;
  }
  boost::system::error_code ec;
  auto v = json::parse(d.body, ec);
  if (ec || !v.is_object()) return false;
  const auto& o = v.as_object();
  if (d.kind == k_thing) {
    thing_put(st, thing_from(o), out);
  } else if (d.kind == k_thing_type) {
    auto t = thing_type_from(o);
    emit(out, thing_type_changed{st.thing_types.contains(t.name) ? change_op::updated : change_op::created, t});
    st.thing_types[t.name] = std::move(t);
  } else if (d.kind == k_thing_group) {
    group_put(st, thing_group_from(o), out);
  } else if (d.kind == k_certificate) {
    certificate_put(st, certificate_from(o), out);
  } else if (d.kind == k_ca_certificate) {
    ca_put(st, ca_certificate_from(o), out);
  } else if (d.kind == k_policy) {
    policy_put(st, policy_from(o), out);
  } else if (d.kind == k_setting) {
    if (d.key == s_registration_code) st.registration_code = str_of(o, "value");
    else if (d.key == s_event_configurations) st.events = event_configurations_from(o);
    emit(out, setting_changed{d.key});
  } else {
    return false;
  }
  return true;
}

void erase(state& st, std::string_view kind, std::string_view key, std::vector<change>* out) {
  std::string k(key);
  if (relation* rel = relation_of(st, kind)) {
    auto tab = k.find('\t');
    if (tab == std::string::npos) return;
    std::string left = k.substr(0, tab), right = k.substr(tab + 1);
    if (rel->contains(left, right)) relation_changes(st, kind, left, right, link_op::removed, out);
    rel->erase(left, right);
    st.membership_ids.erase(k);
    return;
  }
  if (kind == k_thing) {
    auto it = st.things.find(k);
    if (it == st.things.end()) return;
    if (out) {
      if (!it->second.type.empty())
        emit(out, thing_type_association{link_op::removed, it->second.name, it->second.id, it->second.type});
      emit(out, thing_changed{change_op::deleted, it->second});
    }
    st.things.erase(it);
  } else if (kind == k_thing_type) {
    auto it = st.thing_types.find(k);
    if (it == st.thing_types.end()) return;
    emit(out, thing_type_changed{change_op::deleted, it->second});
    st.thing_types.erase(it);
  } else if (kind == k_thing_group) {
    auto it = st.thing_groups.find(k);
    if (it == st.thing_groups.end()) return;
    if (out) {
      const thing_group& g = it->second;
      if (!g.parent.empty())
        emit(out, group_hierarchy{link_op::removed, {g.parent, id_of(st.thing_groups, g.parent)}, {g.name, g.id}});
      emit(out, thing_group_changed{change_op::deleted, g, root_to_parent(st, g)});
    }
    st.thing_groups.erase(it);
  } else if (kind == k_certificate) {
    auto it = st.certificates.find(k);
    if (it == st.certificates.end()) return;
    emit(out, certificate_changed{change_op::deleted, k, it->second.status});
    emit(out, certificate_disabled{k});
    st.certificates.erase(it);
  } else if (kind == k_ca_certificate) {
    auto it = st.ca_certificates.find(k);
    if (it == st.ca_certificates.end()) return;
    emit(out, ca_certificate_changed{change_op::deleted, k, it->second.status});
    st.ca_certificates.erase(it);
  } else if (kind == k_policy) {
    if (st.policies.erase(k)) emit(out, policy_changed{change_op::deleted, k});
  } else if (kind == k_setting) {
    if (k == s_registration_code) st.registration_code.clear();
    else if (k == s_event_configurations) st.events = {};
    emit(out, setting_changed{k});
  }
}

}  // namespace fleetcore::registry
