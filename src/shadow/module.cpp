#include "shadow/module.hpp"

#include "shadow/shadow_api.hpp"

namespace fleetcore::shadow {

module::module(platform::core& core, limits lim) : shadows_(core.store, core.clock, lim) {
  shadows_.publish = [&b = core.broker](std::string topic, std::string payload) {
    b.publish_event(std::move(topic), std::move(payload), 1);
  };
  platform::release_behind_answers(core, shadows_.inflight());
  core.broker.add_hook(shadows_);
  shadows_.register_metrics(core.metrics);
}

common::aws_operations module::operations() { return api_operations(shadows_); }

}  // namespace fleetcore::shadow
