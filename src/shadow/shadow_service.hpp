#pragma once
// The Device Shadow service: requests on $aws/things/{thing}/shadow[/name/{shadow}]/{get,update,delete}
// (a broker message hook) and from the HTTP data plane, applied one at a time on the service's own
// thread in arrival order; every change is stored before its responses are published, and responses
// leave in the order the requests arrived.
//
// Shared (cluster) mode, when `replicate` is set: several nodes hold the shadows of one store. Each
// change is then a compare-and-set over the body this node last saw (storage::op::swap_document), so
// two nodes can never both turn version N into N+1: the loser reads the stored shadow again and
// applies its request over it (versions never fork). Committed changes go to the other nodes
// (`replicate`, `apply_replica`) so their reads follow within the NATS round trip.
#include "broker/hooks.hpp"
#include "common/clock.hpp"
#include "common/inflight_gate.hpp"
#include "common/metrics.hpp"
#include "shadow/document.hpp"
#include "storage/store.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <functional>
#include <future>
#include <deque>
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
  /// Devices' requests in flight per session; the server sets where a release waits (inflight_gate).
  common::inflight_gate& inflight() { return inflight_; }

  /// The store's document kind of shadows.
  static constexpr std::string_view document_kind = "shadow";
  /// Shared mode: hands each committed change (put_document of `document_kind`) to the other nodes.
  /// Set before start(); called on the store's thread (hand off only).
  std::function<void(const std::vector<storage::operation>& writes)> replicate;
  /// Applies another node's committed changes (of `document_kind`) to this node's copies. Any thread.
  void apply_replica(std::vector<storage::operation> writes);

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
  struct request_args;
  void handle(std::shared_ptr<request_args> a, std::shared_ptr<responder> r);
  /// Shared mode, after a change's commit failed: reads the shadow again; a lost race is applied
  /// again over the stored shadow, a store failure answers 500.
  void retry(std::shared_ptr<request_args> a, std::shared_ptr<responder> r);
  void respond(const std::shared_ptr<responder>& r, std::vector<std::pair<std::string, std::string>> messages, reply http);
  void fail(const std::shared_ptr<responder>& r, std::int64_t now, const std::optional<std::string>& client_token);
  /// Replaces this node's copy of `key` with the stored `body` (none: not stored).
  void refresh(const std::string& key, std::optional<std::string> body);
  /// The change of `key` in flight is committed, or given up: the requests waiting for it go on.
  void release(const std::string& key);
  std::int64_t now_s() const { return clock_.wall_ms() / 1000; }

  storage::store& store_;
  common::clock& clock_;
  limits limits_;
  std::map<std::string, shadow_state> shadows_;  // key: thing '\t' shadow name; service thread only
  // Shared mode: the stored body each change must replace (the last one written or seen); service thread.
  std::unordered_map<std::string, std::string> stored_;
  // Shared mode: the shadows with a change of this node in flight (not committed, or failed and tried
  // again), each with the requests that came after it and wait for it; service thread. One change of
  // a shadow at a time: a later request never builds on a state its predecessor may yet fail to
  // reach, so a device's updates land in the order it sent them. A replica never replaces such a
  // shadow (the change in flight, or its second try, reads the store anyway).
  struct waiting {
    std::shared_ptr<request_args> a;
    std::shared_ptr<responder> r;
  };
  std::unordered_map<std::string, std::deque<waiting>> busy_;
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::thread thread_;
  common::inflight_gate inflight_{limits_.max_inflight_per_client};  // devices' requests in flight
  common::counter updates_, rejected_, gets_, deletes_, conflicts_;
};

}  // namespace fleetcore::shadow
