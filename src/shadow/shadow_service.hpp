#pragma once
// The Device Shadow service: requests on $aws/things/{thing}/shadow[/name/{shadow}]/{get,update,delete}
// (a broker message hook) and from the HTTP data plane, applied one at a time on the service's own
// thread in arrival order; every change is stored before its responses are published, and responses
// leave in the order the requests arrived.
#include "broker/hooks.hpp"
#include "common/clock.hpp"
#include "common/metrics.hpp"
#include "shadow/document.hpp"
#include "storage/store.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <unordered_map>
#include <string>
#include <thread>

namespace fleetcore::shadow {

enum class operation { get, update, remove };

/// The answer to an HTTP request: status and JSON body (a response or error document).
struct reply {
  int status = 200;
  std::string body;
};

class shadow_service final : public broker::broker_hook {
 public:
  /// Loads every stored shadow. Throws std::runtime_error if one is unreadable.
  shadow_service(storage::store& store, common::clock& clock, limits lim = {});
  ~shadow_service() override;

  /// Publishes a response (topic, JSON payload) into the broker, in call order; set before start().
  std::function<void(std::string topic, std::string payload)> publish;

  void start();
  void stop();

  // broker::broker_hook (any worker): the response topics are reserved; requests are handed off.
  broker::topic_claim claim(std::string_view topic) const override;
  bool on_message(const broker::message_ptr& m, const broker::publish_context& ctx) override;

  /// HTTP data plane: GetThingShadow, UpdateThingShadow, DeleteThingShadow. `shadow_name` empty =
  /// the classic shadow. The future is ready once the change is durable (or refused).
  std::future<reply> call(operation op, std::string thing, std::string shadow_name, std::string payload);
  /// ListNamedShadowsForThing.
  std::future<reply> list_named(std::string thing, std::optional<std::string> next_token, int page_size);

  void register_metrics(common::registry& r) const;


 private:
  struct responder;
  void handle(operation op, const std::string& thing, const std::string& name, const std::string& payload,
              std::shared_ptr<responder> r);
  /// Counts a request of MQTT session `origin` in flight; false if it already has the maximum.
  bool admit(std::uint64_t origin);
  void release(std::uint64_t origin);
  std::int64_t now_s() const { return clock_.wall_ms() / 1000; }

  storage::store& store_;
  common::clock& clock_;
  limits limits_;
  std::map<std::string, shadow_state> shadows_;  // key: thing '\t' shadow name; service thread only
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::thread thread_;
  std::mutex inflight_mutex_;
  std::unordered_map<std::uint64_t, int> inflight_;  // MQTT session incarnation -> requests in flight
  common::counter updates_, rejected_, gets_, deletes_;
};

}  // namespace fleetcore::shadow
