// AWS IoT registry events (registry-events.md): UpdateEventConfigurations and
// DescribeEventConfigurations, and the event messages of committed changes, published after the
// commit for the event types that are enabled (all off until enabled, as in AWS).
#include "registry/detail.hpp"

#include "common/log.hpp"
#include "common/uuid.hpp"

namespace fleetcore::registry {

namespace {

using ops = registry::ops;
using tx = registry::tx;

bool known_type(std::string_view type) {
  return std::find(std::begin(event_types), std::end(event_types), type) != std::end(event_types);
}

json::object describe_body(const event_configurations& e) {
  json::object configs;
  for (auto type : event_types) configs[type] = json::object{{"Enabled", e.on(type)}};
  return {{"eventConfigurations", std::move(configs)},
          {"creationDate", timestamp(e.creation_date)},
          {"lastModifiedDate", timestamp(e.last_modified)}};
}

/// Stores `next` (the first time with its creation date); the state follows once it is durable.
bool store(registry& r, event_configurations next) {
  double now = ops::now(r);
  if (next.creation_date == 0) next.creation_date = now;
  next.last_modified = now;
  tx t;
  t.put(k_setting, s_event_configurations, to_doc(next));
  return ops::commit(r, t);
}

outcome update_event_configurations(registry& r, const json::object& in) {
  event_configurations next = ops::st(r).events;
  if (const auto* v = in.if_contains("eventConfigurations")) {
    if (!v->is_object()) return invalid("eventConfigurations must be a map of event types");
    for (const auto& [type, config] : v->as_object()) {
      if (!known_type(type)) return invalid("unknown event type " + std::string(type));
      if (!config.is_object()) return invalid("the configuration of " + std::string(type) + " must be an object");
      next.enabled[std::string(type)] = bool_member(config.as_object(), "Enabled").value_or(false);
    }
  }
  if (!store(r, std::move(next))) return internal();
  return ok();
}

outcome describe_event_configurations(registry& r, const json::object&) {
  // The configuration is stored the first time it is asked for, so its creation date stays put.
  if (ops::st(r).events.creation_date == 0 && !store(r, ops::st(r).events)) return internal();
  return ok(describe_body(ops::st(r).events));
}

// --- event messages ---

struct message {
  std::string topic;
  json::object payload;
};

const char* upper(change_op op) {
  switch (op) {
    case change_op::created: return "CREATED";
    case change_op::updated: return "UPDATED";
    case change_op::deleted: return "DELETED";
  }
  return "";
}
const char* lower(change_op op) {
  switch (op) {
    case change_op::created: return "created";
    case change_op::updated: return "updated";
    case change_op::deleted: return "deleted";
  }
  return "";
}
const char* upper(link_op op) { return op == link_op::added ? "ADDED" : "REMOVED"; }
const char* lower(link_op op) { return op == link_op::added ? "added" : "removed"; }

json::value text_or_null(const std::string& s) { return s.empty() ? json::value(nullptr) : json::value(s); }
json::object attributes_of(const std::map<std::string, std::string>& attrs) {
  json::object o;
  for (const auto& [k, v] : attrs) o[k] = v;
  return o;
}
std::int64_t ms(double seconds) { return static_cast<std::int64_t>(seconds * 1000); }

/// What every event carries.
struct context {
  const registry& r;
  std::int64_t timestamp;
  json::object head(const char* type, const char* operation, bool account = true) const {
    json::object o{{"eventType", type}, {"eventId", common::random_uuid()}, {"timestamp", timestamp}, {"operation", operation}};
    if (account) o["accountId"] = r.config().account_id;
    return o;
  }
};

/// The AWS event of one change, with the configuration key that enables it; nothing for changes
/// registry-events.md does not document.
std::optional<std::pair<std::string_view, message>> event_of(const context& cx, const change& c) {
  using result = std::optional<std::pair<std::string_view, message>>;
  if (const auto* e = std::get_if<thing_changed>(&c)) {
    const thing& t = e->value;
    auto o = cx.head("THING_EVENT", upper(e->op));
    o["thingId"] = t.id;
    o["thingName"] = t.name;
    o["versionNumber"] = t.version;
    o["thingTypeName"] = text_or_null(t.type);
    o["attributes"] = attributes_of(t.attributes);
    return result{{"THING", {"$aws/events/thing/" + t.name + "/" + lower(e->op), std::move(o)}}};
  }
  if (const auto* e = std::get_if<thing_type_changed>(&c)) {
    const thing_type& t = e->value;
    auto o = cx.head("THING_TYPE_EVENT", upper(e->op));
    o["thingTypeId"] = t.id;
    o["thingTypeName"] = t.name;
    o["isDeprecated"] = t.deprecated;
    o["deprecationDate"] = t.deprecated ? json::value(ms(t.deprecation_date)) : json::value(nullptr);
    o["searchableAttributes"] = json::array(t.searchable.begin(), t.searchable.end());
    o["description"] = text_or_null(t.description);
    return result{{"THING_TYPE", {"$aws/events/thingType/" + t.name + "/" + lower(e->op), std::move(o)}}};
  }
  if (const auto* e = std::get_if<thing_type_association>(&c)) {
    // registry-events.md lists no accountId for this one.
    auto o = cx.head("THING_TYPE_ASSOCIATION_EVENT", upper(e->op), false);
    o["thingId"] = e->thing_id;
    o["thingName"] = e->thing;
    o["thingTypeName"] = e->thing_type;
    return result{{"THING_TYPE_ASSOCIATION",
                   {"$aws/events/thingTypeAssociation/thing/" + e->thing + "/thingType/" + e->thing_type + "/" +
                        lower(e->op),
                    std::move(o)}}};
  }
  if (const auto* e = std::get_if<thing_group_changed>(&c)) {
    const thing_group& g = e->value;
    auto o = cx.head("THING_GROUP_EVENT", upper(e->op));
    o["thingGroupId"] = g.id;
    o["thingGroupName"] = g.name;
    o["versionNumber"] = g.version;
    o["parentGroupName"] = text_or_null(g.parent);
    o["parentGroupId"] = e->root_to_parent.empty() ? json::value(nullptr) : json::value(e->root_to_parent.back().id);
    o["description"] = text_or_null(g.description);
    json::array roots;
    for (const auto& a : e->root_to_parent)
      roots.push_back(json::object{{"groupArn", cx.r.arn("thinggroup", a.name)}, {"groupId", a.id}});
    o["rootToParentThingGroups"] = std::move(roots);
    o["attributes"] = attributes_of(g.attributes);
    o["dynamicGroupMappingId"] = nullptr;
    return result{{"THING_GROUP", {"$aws/events/thingGroup/" + g.name + "/" + lower(e->op), std::move(o)}}};
  }
  if (const auto* e = std::get_if<group_membership>(&c)) {
    auto o = cx.head("THING_GROUP_MEMBERSHIP_EVENT", upper(e->op));
    o["groupArn"] = cx.r.arn("thinggroup", e->group);
    o["groupId"] = e->group_id;
    o["thingArn"] = cx.r.arn("thing", e->thing);
    o["thingId"] = e->thing_id;
    o["membershipId"] = e->membership_id;
    return result{{"THING_GROUP_MEMBERSHIP",
                   {"$aws/events/thingGroupMembership/thingGroup/" + e->group + "/thing/" + e->thing + "/" +
                        lower(e->op),
                    std::move(o)}}};
  }
  if (const auto* e = std::get_if<group_hierarchy>(&c)) {
    auto o = cx.head("THING_GROUP_HIERARCHY_EVENT", upper(e->op));
    o["thingGroupId"] = e->parent.id;
    o["thingGroupName"] = e->parent.name;
    o["childGroupId"] = e->child.id;
    o["childGroupName"] = e->child.name;
    return result{{"THING_GROUP_HIERARCHY",
                   {"$aws/events/thingGroupHierarchy/thingGroup/" + e->parent.name + "/childThingGroup/" +
                        e->child.name + "/" + lower(e->op),
                    std::move(o)}}};
  }
  return std::nullopt;
}

}  // namespace

void registry::publish_aws_events(const std::vector<change>& changes) {
  if (!publish_event) return;
  const event_configurations& config = st_.events;  // control thread: the writer itself
  if (config.enabled.empty()) return;
  context cx{*this, static_cast<std::int64_t>(clock_.wall_ms())};
  for (const auto& c : changes) {
    auto e = event_of(cx, c);
    if (!e || !config.on(e->first)) continue;
    events_published_.inc();
    publish_event(std::move(e->second.topic), json::serialize(e->second.payload));
  }
}

void registry::ops::add_event_ops(std::map<std::string, fn, std::less<>>& t) {
  t["UpdateEventConfigurations"] = update_event_configurations;
  t["DescribeEventConfigurations"] = describe_event_configurations;
}

}  // namespace fleetcore::registry
