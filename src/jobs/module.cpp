#include "jobs/module.hpp"

#include "common/json_members.hpp"

namespace fleetcore::jobs {

namespace {
directory directory_of(registry::registry& reg) {
  return {[&reg](std::string_view thing) { return reg.has_thing(thing); },
          [&reg](std::string_view group) { return reg.things_in_group_tree(group); },
          [&reg](std::string_view thing) { return reg.group_tree_of(thing); },
          [&reg](std::string_view type) { return reg.event_enabled(type); }};
}
}  // namespace

module::module(platform::core& core, settings s, object_links objects)
    : jobs_(core.store, core.clock, directory_of(core.registry),
            "arn:aws:iot:" + core.registry.config().region + ":" + core.registry.config().account_id + ":", s),
      objects_(std::move(objects)) {
  jobs_.objects = objects_;
  auto& b = core.broker;
  jobs_.publish = [&b](std::string topic, std::string payload) { b.publish_event(std::move(topic), std::move(payload), 1); };
  jobs_.reply = platform::session_reply(core, 1);
  platform::release_behind_answers(core, jobs_.inflight());
  b.add_hook(jobs_);
  core.registry.observe([this, &reg = core.registry](const std::vector<registry::change>& changes) {
    if (reg.replaying()) return;  // the node that made the change updates the jobs
    for (const auto& c : changes)
      if (const auto* t = std::get_if<registry::thing_changed>(&c); t && t->op == registry::change_op::deleted)
        jobs_.thing_deleted(t->value.name);
      else if (const auto* m = std::get_if<registry::group_membership>(&c))
        jobs_.thing_groups_changed(m->thing);
  });
  jobs_.register_metrics(core.metrics);
}

common::aws_operations module::operations() {
  common::aws_operations ops;
  for (auto name : jobs_service::operations())
    ops.emplace_back(std::string(name), [this](std::string_view op, const boost::json::object& in) {
      // A documentSource is read here, on the API thread the object store answers on, and handed to
      // the operation as its document.
      if ((op == "CreateJob" || op == "CreateJobTemplate") && in.contains("documentSource")) {
        auto invalid = [](std::string message) {
          return common::aws_response::error(400, "InvalidRequestException", std::move(message));
        };
        auto source = common::text_member(in, "documentSource");
        if (!source || source->empty() || source->size() > 1350) return invalid("documentSource must be an S3 URL");
        if (in.contains("document")) return invalid("document and documentSource cannot both be given");
        if (!objects_.read) return invalid("documentSource needs the object store (the api listener)");
        std::string error;
        auto content = objects_.read(*source, 32768, error);
        if (!content) return invalid("documentSource: " + error);
        boost::json::object with = in;
        with["document"] = std::move(*content);
        if (op == "CreateJobTemplate") with.erase("documentSource");
        return jobs_.call(std::string(op), std::move(with)).get();
      }
      return jobs_.call(std::string(op), in).get();
    });
  return ops;
}

}  // namespace fleetcore::jobs
