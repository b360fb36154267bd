#include "events/module.hpp"

namespace fleetcore::events {

module::module(platform::core& core) : lifecycle_(core.broker, core.clock) {
  core.broker.add_hook(lifecycle_);
  core.registry.publish_event = [&b = core.broker](std::string topic, std::string payload) {
    b.publish_event(std::move(topic), std::move(payload), 1);
  };
}

}  // namespace fleetcore::events
