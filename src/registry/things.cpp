// Things, thing types and thing groups (AWS IoT registry), and DescribeEndpoint.
#include "registry/detail.hpp"
#include "common/uuid.hpp"

namespace fleetcore::registry {

namespace {

using ops = registry::ops;
using tx = registry::tx;

constexpr std::size_t max_attributes_untyped = 3;
constexpr std::size_t max_attributes_typed = 50;
constexpr std::size_t max_groups_per_thing = 10;
constexpr std::size_t max_group_depth = 7;

json::object thing_body(const registry& r, const thing& t) {
  json::object o{{"thingName", t.name}, {"thingArn", r.arn("thing", t.name)}, {"version", t.version}};
  json::object attrs;
  for (const auto& [k, v] : t.attributes) attrs[k] = v;
  o["attributes"] = std::move(attrs);
  if (!t.type.empty()) o["thingTypeName"] = t.type;
  return o;
}

/// AWS: three attributes for a thing without a thing type, fifty with one.
std::optional<outcome> check_attribute_count(const thing& t) {
  std::size_t max = t.type.empty() ? max_attributes_untyped : max_attributes_typed;
  if (t.attributes.size() <= max) return std::nullopt;
  return invalid("a thing " + std::string(t.type.empty() ? "without" : "with") + " a thing type can have at most " +
                 std::to_string(max) + " attributes");
}

/// The thing group name given by name or ARN.
std::optional<std::string> group_ref(const json::object& in) {
  if (auto n = text(in, "thingGroupName")) return n;
  if (auto a = text(in, "thingGroupArn")) return aws_arn::name_of(*a, "thinggroup");
  return std::nullopt;
}
std::optional<std::string> thing_ref(const json::object& in) {
  if (auto n = text(in, "thingName")) return n;
  if (auto a = text(in, "thingArn")) return aws_arn::name_of(*a, "thing");
  return std::nullopt;
}

std::vector<std::string> ancestors(const state& s, const std::string& group) {
  std::vector<std::string> chain;  // parent first
  auto it = s.thing_groups.find(group);
  while (it != s.thing_groups.end() && !it->second.parent.empty() && chain.size() <= max_group_depth) {
    chain.push_back(it->second.parent);
    it = s.thing_groups.find(it->second.parent);
  }
  return chain;
}
std::string root_of(const state& s, const std::string& group) {
  auto a = ancestors(s, group);
  return a.empty() ? group : a.back();
}

// --- things ---

outcome create_thing(registry& r, const json::object& in) {
  const state& s = ops::st(r);
  auto name = text(in, "thingName").value_or("");
  if (!valid_thing_name(name)) return invalid("thingName must match [a-zA-Z0-9:_-]+ and be 1-128 characters");
  thing t{name, ops::new_id(r), text(in, "thingTypeName").value_or(""), {}, 1};
  if (!t.type.empty()) {
    auto tt = s.thing_types.find(t.type);
    if (tt == s.thing_types.end()) return not_found("Thing type " + t.type + " does not exist");
    if (tt->second.deprecated) return invalid("Can not create a new thing with a deprecated thing type " + t.type);
  }
  if (auto e = apply_attribute_payload(object_member(in, "attributePayload"), t.attributes, false)) return *e;
  if (auto e = check_attribute_count(t)) return *e;
  if (auto old = s.things.find(name); old != s.things.end()) {
    // Creating the same thing again is idempotent; with a different definition it conflicts.
    if (old->second.type == t.type && old->second.attributes == t.attributes)
      return ok({{"thingName", name}, {"thingArn", r.arn("thing", name)}, {"thingId", old->second.id}});
    return already_exists("Thing " + name + " already exists with a different configuration");
  }
  tx x;
  x.put(k_thing, name, to_doc(t));
  if (!ops::commit(r, x)) return internal();
  return ok({{"thingName", name}, {"thingArn", r.arn("thing", name)}, {"thingId", t.id}});
}

outcome describe_thing(registry& r, const json::object& in) {
  auto name = text(in, "thingName").value_or("");
  auto it = ops::st(r).things.find(name);
  if (it == ops::st(r).things.end()) return not_found("Thing " + name + " does not exist");
  auto body = thing_body(r, it->second);
  body["defaultClientId"] = name;
  body["thingId"] = it->second.id;
  return ok(std::move(body));
}

outcome update_thing(registry& r, const json::object& in) {
  const state& s = ops::st(r);
  auto name = text(in, "thingName").value_or("");
  auto it = s.things.find(name);
  if (it == s.things.end()) return not_found("Thing " + name + " does not exist");
  thing t = it->second;
  if (auto ev = int_member(in, "expectedVersion"); ev && *ev != t.version)
    return conflict("The expected version " + std::to_string(*ev) + " does not match the thing's version " +
                    std::to_string(t.version));
  bool remove_type = bool_member(in, "removeThingType").value_or(false);
  auto type = text(in, "thingTypeName");
  if (remove_type && type) return invalid("removeThingType and thingTypeName cannot both be given");
  if (remove_type) t.type.clear();
  if (type && *type != t.type) {
    auto tt = s.thing_types.find(*type);
    if (tt == s.thing_types.end()) return not_found("Thing type " + *type + " does not exist");
    if (tt->second.deprecated) return invalid("Can not associate a thing with a deprecated thing type " + *type);
    t.type = *type;
  }
  if (auto e = apply_attribute_payload(object_member(in, "attributePayload"), t.attributes, true)) return *e;
  if (auto e = check_attribute_count(t)) return *e;
  ++t.version;
  tx x;
  x.put(k_thing, name, to_doc(t));
  if (!ops::commit(r, x)) return internal();
  return ok();
}

outcome delete_thing(registry& r, const json::object& in) {
  const state& s = ops::st(r);
  auto name = text(in, "thingName").value_or("");
  auto it = s.things.find(name);
  if (it == s.things.end()) return ok();  // deleting a thing that does not exist succeeds, as in AWS
  if (auto ev = int_member(in, "expectedVersion"); ev && *ev != it->second.version)
    return conflict("The expected version " + std::to_string(*ev) + " does not match the thing's version " +
                    std::to_string(it->second.version));
  if (!s.thing_principals.rights_of(name).empty())
    return invalid("Cannot delete thing " + name + " which has principals attached; detach them first");
  tx x;
  // Memberships first: their events name the thing, which is still there.
  for (const auto& group : s.group_members.lefts_of(name)) x.unlink(k_group_member, group, name);
  x.erase(k_thing, name);
  if (!ops::commit(r, x)) return internal();
  return ok();
}

outcome list_things(registry& r, const json::object& in) {
  const state& s = ops::st(r);
  std::int64_t max = 0;
  if (auto e = page_size(in, "maxResults", 250, max, 50)) return *e;
  auto attr_name = text(in, "attributeName");
  auto attr_value = text(in, "attributeValue");
  auto type = text(in, "thingTypeName");
  bool prefix = bool_member(in, "usePrefixAttributeValue").value_or(false);
  if (prefix && !attr_value) return invalid("usePrefixAttributeValue requires attributeValue");
  std::vector<std::string> names;
  for (const auto& [name, t] : s.things) {
    if (type && t.type != *type) continue;
    if (attr_name) {
      auto a = t.attributes.find(*attr_name);
      if (a == t.attributes.end()) continue;
      if (attr_value && (prefix ? !a->second.starts_with(*attr_value) : a->second != *attr_value)) continue;
    }
    names.push_back(name);
  }
  std::optional<std::string> next;
  json::array things;
  for (const auto& n : page_after(names, text(in, "nextToken"), max, next)) things.push_back(thing_body(r, s.things.at(n)));
  json::object body{{"things", std::move(things)}};
  if (next) body["nextToken"] = *next;
  return ok(std::move(body));
}

// --- thing types ---

json::object thing_type_body(const registry& r, const thing_type& t) {
  json::object props{{"thingTypeDescription", t.description},
                     {"searchableAttributes", json::array(t.searchable.begin(), t.searchable.end())}};
  if (t.description.empty()) props.erase("thingTypeDescription");
  json::object meta{{"deprecated", t.deprecated}, {"creationDate", timestamp(t.creation_date)}};
  if (t.deprecated) meta["deprecationDate"] = timestamp(t.deprecation_date);
  return {{"thingTypeName", t.name},
          {"thingTypeId", t.id},
          {"thingTypeArn", r.arn("thingtype", t.name)},
          {"thingTypeProperties", std::move(props)},
          {"thingTypeMetadata", std::move(meta)}};
}

outcome create_thing_type(registry& r, const json::object& in) {
  const state& s = ops::st(r);
  auto name = text(in, "thingTypeName").value_or("");
  if (!valid_thing_name(name)) return invalid("thingTypeName must match [a-zA-Z0-9:_-]+ and be 1-128 characters");
  thing_type t{name, ops::new_id(r), "", {}, false, 0, ops::now(r)};
  if (const auto* p = object_member(in, "thingTypeProperties")) {
    t.description = text(*p, "thingTypeDescription").value_or("");
    if (t.description.size() > 2028) return invalid("thingTypeDescription is longer than 2028 characters");
    if (auto* a = p->if_contains("searchableAttributes"); a && a->is_array()) {
      if (a->as_array().size() > 3) return invalid("a thing type can have at most 3 searchable attributes");
      for (const auto& v : a->as_array()) {
        if (!v.is_string() || !valid_attribute_name(v.as_string())) return invalid("invalid searchable attribute name");
        t.searchable.emplace_back(v.as_string());
      }
    }
  }
  if (auto old = s.thing_types.find(name); old != s.thing_types.end()) {
    if (old->second.description == t.description && old->second.searchable == t.searchable)
      return ok({{"thingTypeName", name}, {"thingTypeArn", r.arn("thingtype", name)}, {"thingTypeId", old->second.id}});
    return already_exists("Thing type " + name + " already exists with a different configuration");
  }
  tx x;
  x.put(k_thing_type, name, to_doc(t));
  if (!ops::commit(r, x)) return internal();
  return ok({{"thingTypeName", name}, {"thingTypeArn", r.arn("thingtype", name)}, {"thingTypeId", t.id}});
}

outcome describe_thing_type(registry& r, const json::object& in) {
  auto name = text(in, "thingTypeName").value_or("");
  auto it = ops::st(r).thing_types.find(name);
  if (it == ops::st(r).thing_types.end()) return not_found("Thing type " + name + " does not exist");
  return ok(thing_type_body(r, it->second));
}

outcome deprecate_thing_type(registry& r, const json::object& in) {
  auto name = text(in, "thingTypeName").value_or("");
  auto it = ops::st(r).thing_types.find(name);
  if (it == ops::st(r).thing_types.end()) return not_found("Thing type " + name + " does not exist");
  thing_type t = it->second;
  bool undo = bool_member(in, "undoDeprecate").value_or(false);
  t.deprecated = !undo;
  t.deprecation_date = undo ? 0 : ops::now(r);
  tx x;
  x.put(k_thing_type, name, to_doc(t));
  if (!ops::commit(r, x)) return internal();
  return ok();
}

outcome delete_thing_type(registry& r, const json::object& in) {
  const state& s = ops::st(r);
  auto name = text(in, "thingTypeName").value_or("");
  auto it = s.thing_types.find(name);
  if (it == s.thing_types.end()) return not_found("Thing type " + name + " does not exist");
  if (!it->second.deprecated) return invalid("Thing type " + name + " must be deprecated before it can be deleted");
  double wait = r.config().thing_type_delete_wait_s;
  if (ops::now(r) - it->second.deprecation_date < wait)
    return invalid("Thing type " + name + " was deprecated less than " + std::to_string(static_cast<int>(wait)) +
                   " seconds ago");
  for (const auto& [n, t] : s.things)
    if (t.type == name) return invalid("Thing type " + name + " is still associated with thing " + n);
  tx x;
  x.erase(k_thing_type, name);
  if (!ops::commit(r, x)) return internal();
  return ok();
}

outcome list_thing_types(registry& r, const json::object& in) {
  const state& s = ops::st(r);
  std::int64_t max = 0;
  if (auto e = page_size(in, "maxResults", 250, max, 50)) return *e;
  auto only = text(in, "thingTypeName");
  std::vector<std::string> names;
  for (const auto& [n, t] : s.thing_types)
    if (!only || n == *only) names.push_back(n);
  std::optional<std::string> next;
  json::array types;
  for (const auto& n : page_after(names, text(in, "nextToken"), max, next))
    types.push_back(thing_type_body(r, s.thing_types.at(n)));
  json::object body{{"thingTypes", std::move(types)}};
  if (next) body["nextToken"] = *next;
  return ok(std::move(body));
}

// --- thing groups ---

outcome create_thing_group(registry& r, const json::object& in) {
  const state& s = ops::st(r);
  auto name = text(in, "thingGroupName").value_or("");
  if (!valid_thing_name(name)) return invalid("thingGroupName must match [a-zA-Z0-9:_-]+ and be 1-128 characters");
  thing_group g{name, ops::new_id(r), text(in, "parentGroupName").value_or(""), "", {}, 1, ops::now(r)};
  if (const auto* p = object_member(in, "thingGroupProperties")) {
    g.description = text(*p, "thingGroupDescription").value_or("");
    if (auto e = apply_attribute_payload(object_member(*p, "attributePayload"), g.attributes, false)) return *e;
  }
  if (auto old = s.thing_groups.find(name); old != s.thing_groups.end()) {
    if (old->second.parent == g.parent && old->second.description == g.description &&
        old->second.attributes == g.attributes)
      return ok({{"thingGroupName", name}, {"thingGroupArn", r.arn("thinggroup", name)}, {"thingGroupId", old->second.id}});
    return already_exists("Thing group " + name + " already exists with a different configuration");
  }
  if (!g.parent.empty()) {
    if (!s.thing_groups.contains(g.parent)) return not_found("Thing group " + g.parent + " does not exist");
    if (ancestors(s, g.parent).size() + 2 > max_group_depth)
      return invalid("a thing group hierarchy can be at most " + std::to_string(max_group_depth) + " levels deep");
  }
  tx x;
  x.put(k_thing_group, name, to_doc(g));
  if (!ops::commit(r, x)) return internal();
  return ok({{"thingGroupName", name}, {"thingGroupArn", r.arn("thinggroup", name)}, {"thingGroupId", g.id}});
}

outcome describe_thing_group(registry& r, const json::object& in) {
  const state& s = ops::st(r);
  auto name = text(in, "thingGroupName").value_or("");
  auto it = s.thing_groups.find(name);
  if (it == s.thing_groups.end()) return not_found("Thing group " + name + " does not exist");
  const thing_group& g = it->second;
  json::object attrs;
  for (const auto& [k, v] : g.attributes) attrs[k] = v;
  json::object props{{"attributePayload", json::object{{"attributes", std::move(attrs)}}}};
  if (!g.description.empty()) props["thingGroupDescription"] = g.description;
  json::object meta{{"creationDate", timestamp(g.creation_date)}};
  if (!g.parent.empty()) {
    meta["parentGroupName"] = g.parent;
    auto chain = ancestors(s, name);
    json::array roots;
    for (auto a = chain.rbegin(); a != chain.rend(); ++a)
      roots.push_back(json::object{{"groupName", *a}, {"groupArn", r.arn("thinggroup", *a)}});
    meta["rootToParentThingGroups"] = std::move(roots);
  }
  return ok({{"thingGroupName", name},
             {"thingGroupId", g.id},
             {"thingGroupArn", r.arn("thinggroup", name)},
             {"version", g.version},
             {"thingGroupProperties", std::move(props)},
             {"thingGroupMetadata", std::move(meta)}});
}

outcome update_thing_group(registry& r, const json::object& in) {
  auto name = text(in, "thingGroupName").value_or("");
  auto it = ops::st(r).thing_groups.find(name);
  if (it == ops::st(r).thing_groups.end()) return not_found("Thing group " + name + " does not exist");
  thing_group g = it->second;
  if (auto ev = int_member(in, "expectedVersion"); ev && *ev != g.version)
    return conflict("The expected version " + std::to_string(*ev) + " does not match the group's version " +
                    std::to_string(g.version));
  const auto* p = object_member(in, "thingGroupProperties");
  if (!p) return invalid("thingGroupProperties is required");
  if (auto d = text(*p, "thingGroupDescription")) g.description = *d;
  if (auto e = apply_attribute_payload(object_member(*p, "attributePayload"), g.attributes, true)) return *e;
  ++g.version;
  tx x;
  x.put(k_thing_group, name, to_doc(g));
  if (!ops::commit(r, x)) return internal();
  return ok({{"version", g.version}});
}

outcome delete_thing_group(registry& r, const json::object& in) {
  const state& s = ops::st(r);
  auto name = text(in, "thingGroupName").value_or("");
  auto it = s.thing_groups.find(name);
  if (it == s.thing_groups.end()) return ok();  // idempotent, as in AWS
  if (auto ev = int_member(in, "expectedVersion"); ev && *ev != it->second.version)
    return conflict("The expected version does not match the group's version " + std::to_string(it->second.version));
  for (const auto& [n, g] : s.thing_groups)
    if (g.parent == name) return invalid("Cannot delete thing group " + name + " when it has child groups");
  tx x;
  for (const auto& member : s.group_members.rights_of(name)) x.unlink(k_group_member, name, member);
  std::string target = r.arn("thinggroup", name);
  for (const auto& policy : s.policy_targets.lefts_of(target))
    x.unlink(k_policy_target, policy, target);
  x.erase(k_thing_group, name);
  if (!ops::commit(r, x)) return internal();
  return ok();
}

outcome list_thing_groups(registry& r, const json::object& in) {
  const state& s = ops::st(r);
  std::int64_t max = 0;
  if (auto e = page_size(in, "maxResults", 250, max, 50)) return *e;
  auto parent = text(in, "parentGroup");
  auto prefix = text(in, "namePrefixFilter");
  bool recursive = bool_member(in, "recursive").value_or(true);
  if (parent && !s.thing_groups.contains(*parent)) return not_found("Thing group " + *parent + " does not exist");
  std::vector<std::string> names;
  for (const auto& [n, g] : s.thing_groups) {
    if (prefix && !n.starts_with(*prefix)) continue;
    if (parent) {
      if (recursive) {
        auto chain = ancestors(s, n);
        if (std::find(chain.begin(), chain.end(), *parent) == chain.end()) continue;
      } else if (g.parent != *parent) {
        continue;
      }
    } else if (!recursive && !g.parent.empty()) {
      continue;
    }
    names.push_back(n);
  }
  std::optional<std::string> next;
  json::array groups;
  for (const auto& n : page_after(names, text(in, "nextToken"), max, next))
    groups.push_back(json::object{{"groupName", n}, {"groupArn", r.arn("thinggroup", n)}});
  json::object body{{"thingGroups", std::move(groups)}};
  if (next) body["nextToken"] = *next;
  return ok(std::move(body));
}

outcome add_thing_to_thing_group(registry& r, const json::object& in) {
  const state& s = ops::st(r);
  auto group = group_ref(in);
  auto name = thing_ref(in);
  if (!group || !name) return invalid("a thing group and a thing are required (by name or ARN)");
  if (!s.thing_groups.contains(*group)) return not_found("Thing group " + *group + " does not exist");
  if (!s.things.contains(*name)) return not_found("Thing " + *name + " does not exist");
  if (s.group_members.contains(*group, *name)) return ok();
  const auto& groups = s.group_members.lefts_of(*name);
  std::string root = root_of(s, *group);
  for (const auto& g : groups)
    if (root_of(s, g) == root)
      return invalid("Thing " + *name + " is already in group " + g + " of the same hierarchy");
  if (groups.size() >= max_groups_per_thing)
    return invalid("a thing can be in at most " + std::to_string(max_groups_per_thing) + " thing groups");
  tx x;
  x.link(k_group_member, *group, *name, json::serialize(json::object{{"membershipId", common::random_uuid()}}));
  if (!ops::commit(r, x)) return internal();
  return ok();
}

outcome remove_thing_from_thing_group(registry& r, const json::object& in) {
  const state& s = ops::st(r);
  auto group = group_ref(in);
  auto name = thing_ref(in);
  if (!group || !name) return invalid("a thing group and a thing are required (by name or ARN)");
  if (!s.thing_groups.contains(*group)) return not_found("Thing group " + *group + " does not exist");
  if (!s.things.contains(*name)) return not_found("Thing " + *name + " does not exist");
  if (!s.group_members.contains(*group, *name)) return ok();
  tx x;
  x.unlink(k_group_member, *group, *name);
  if (!ops::commit(r, x)) return internal();
  return ok();
}

outcome list_things_in_thing_group(registry& r, const json::object& in) {
  const state& s = ops::st(r);
  std::int64_t max = 0;
  if (auto e = page_size(in, "maxResults", 250, max, 50)) return *e;
  auto group = text(in, "thingGroupName").value_or("");
  if (!s.thing_groups.contains(group)) return not_found("Thing group " + group + " does not exist");
  bool recursive = bool_member(in, "recursive").value_or(false);
  std::set<std::string> names;
  for (const auto& [g, info] : s.thing_groups) {
    if (g != group) {
      if (!recursive) continue;
      auto chain = ancestors(s, g);
      if (std::find(chain.begin(), chain.end(), group) == chain.end()) continue;
    }
    names.insert(s.group_members.rights_of(g).begin(), s.group_members.rights_of(g).end());
  }
  std::optional<std::string> next;
  json::array things;
  for (const auto& n : page_after({names.begin(), names.end()}, text(in, "nextToken"), max, next)) things.push_back(json::value(n));
  json::object body{{"things", std::move(things)}};
  if (next) body["nextToken"] = *next;
  return ok(std::move(body));
}

outcome list_thing_groups_for_thing(registry& r, const json::object& in) {
  const state& s = ops::st(r);
  std::int64_t max = 0;
  if (auto e = page_size(in, "maxResults", 250, max, 50)) return *e;
  auto name = text(in, "thingName").value_or("");
  if (!s.things.contains(name)) return not_found("Thing " + name + " does not exist");
  const auto& member_of = s.group_members.lefts_of(name);
  std::vector<std::string> groups(member_of.begin(), member_of.end());
  std::optional<std::string> next;
  json::array out;
  for (const auto& g : page_after(groups, text(in, "nextToken"), max, next))
    out.push_back(json::object{{"groupName", g}, {"groupArn", r.arn("thinggroup", g)}});
  json::object body{{"thingGroups", std::move(out)}};
  if (next) body["nextToken"] = *next;
  return ok(std::move(body));
}

outcome describe_endpoint(registry& r, const json::object& in) {
  auto type = text(in, "endpointType").value_or("iot:Data-ATS");
  if (type != "iot:Data" && type != "iot:Data-ATS" && type != "iot:CredentialProvider" && type != "iot:Jobs")
    return invalid("unknown endpointType " + type);
  return ok({{"endpointAddress", r.config().endpoint_host}});
}

}  // namespace

void registry::ops::add_thing_ops(std::map<std::string, fn, std::less<>>& t) {
  t["CreateThing"] = create_thing;
  t["DescribeThing"] = describe_thing;
  t["UpdateThing"] = update_thing;
  t["DeleteThing"] = delete_thing;
  t["ListThings"] = list_things;
  t["CreateThingType"] = create_thing_type;
  t["DescribeThingType"] = describe_thing_type;
  t["DeprecateThingType"] = deprecate_thing_type;
  t["DeleteThingType"] = delete_thing_type;
  t["ListThingTypes"] = list_thing_types;
  t["CreateThingGroup"] = create_thing_group;
  t["DescribeThingGroup"] = describe_thing_group;
  t["UpdateThingGroup"] = update_thing_group;
  t["DeleteThingGroup"] = delete_thing_group;
  t["ListThingGroups"] = list_thing_groups;
  t["AddThingToThingGroup"] = add_thing_to_thing_group;
  t["RemoveThingFromThingGroup"] = remove_thing_from_thing_group;
  t["ListThingsInThingGroup"] = list_things_in_thing_group;
  t["ListThingGroupsForThing"] = list_thing_groups_for_thing;
  t["DescribeEndpoint"] = describe_endpoint;
}

}  // namespace fleetcore::registry
