#include "provisioning/module.hpp"

#include "provisioning/provisioner.hpp"

namespace fleetcore::provisioning {

module::module(platform::core& core, settings s, objects::links objects)
    : registry_(core.registry),
      templates_(core.store, core.clock,
                 "arn:aws:iot:" + core.registry.config().region + ":" + core.registry.config().account_id + ":"),
      hooks_(std::move(s.hooks)),
      fleet_(core.registry, templates_, core.store, core.clock, fleet_settings{}, &hooks_),
      jitp_(core.registry, templates_),
      bulk_(core.registry, core.store, core.clock, std::move(objects)),
      bootstrap_(core.registry, templates_, core.store, core.clock, s.bootstrap) {
  core.registry.auto_registered = [this](const std::string& certificate_id, const std::string& ca_id) {
    jitp_.provision(certificate_id, ca_id);
  };
  jitp_.register_metrics(core.metrics);
  bulk_.register_metrics(core.metrics);
  bootstrap_.register_metrics(core.metrics);
  auto& b = core.broker;
  // QoS 0: a key pair is never queued for a session that may be resumed by another device.
  fleet_.reply = platform::session_reply(core, 0);
  platform::release_behind_answers(core, fleet_.inflight());
  b.add_hook(fleet_);
  fleet_.register_metrics(core.metrics);
}

void module::stop() { hooks_.stop(); }

void module::start() {
  registry_.defer([this] { bulk_.resume(); });
}

common::aws_operations module::operations() {
  common::aws_operations ops;
  for (auto name : template_service::operations())
    ops.emplace_back(std::string(name), [this](std::string_view op, const boost::json::object& in) {
      return templates_.call(op, in);
    });
  for (auto name : bulk_registration::operations())
    ops.emplace_back(std::string(name), [this](std::string_view op, const boost::json::object& in) {
      return bulk_.call(op, in);
    });
  ops.emplace_back("CreateProvisioningClaim", [this](std::string_view, const boost::json::object& in) {
    return fleet_.create_claim(in);
  });
  ops.emplace_back("RegisterThing", [this](std::string_view, const boost::json::object& in) {
    return register_thing(registry_, in);
  });
  return ops;
}

}  // namespace fleetcore::provisioning
