#pragma once
// How a service plugs into fleetcore. The server builds the core (storage, clock, registry, broker,
// metrics) and then a list of services, in order; each one attaches itself in its constructor —
// broker hooks, registry observers, metrics — and names the AWS operations it answers. Adding a
// service (rules, jobs, provisioning, ...) is one line in server.cpp's list; nothing else in the
// server changes.
//
// Threads: constructed, started and stopped on the server's thread; start() after every service is
// constructed and the broker is loaded, stop() in reverse order before the broker stops.
#include "broker/broker.hpp"
#include "common/aws_api.hpp"
#include "common/clock.hpp"
#include "common/inflight_gate.hpp"
#include "common/metrics.hpp"
#include "registry/registry.hpp"
#include "storage/store.hpp"

#include <filesystem>
#include <string_view>

namespace fleetcore::platform {

/// What every service may use; built by the server before the first service, outlives the last.
struct core {
  common::clock& clock;
  storage::store& store;
  registry::registry& registry;
  broker::broker& broker;
  common::registry& metrics;
  std::filesystem::path data_dir;
};

/// The answer to one device's request, to that session alone (broker::deliver_to), at `qos`.
inline auto session_reply(core& c, std::uint8_t qos) {
  return [&b = c.broker, &clock = c.clock, qos](const std::string& client_id, std::uint64_t session, std::string topic,
                                                std::string payload) {
    b.deliver_to(client_id, session, broker::make_message(std::move(topic), std::move(payload), qos, false, {}, clock.wall_ms(), 0));
  };
}

/// Makes a service's requests count in flight until their answers are queued on the session's worker.
inline void release_behind_answers(core& c, common::inflight_gate& g) {
  g.behind_answers = [&b = c.broker](const std::string& client_id, std::uint64_t session, std::function<void()> then) {
    b.behind_session(client_id, session, std::move(then));
  };
}

class service {
 public:
  virtual ~service() = default;
  /// A stable name for logs.
  virtual std::string_view name() const = 0;
  /// The AWS operations it owns (served by the API listener when one runs). Called once, before start.
  virtual common::aws_operations operations() { return {}; }
  virtual void start() {}
  virtual void stop() {}
};

}  // namespace fleetcore::platform
