#pragma once
// The cluster_link over NATS (libnats): how the nodes of a cluster find each other, tell each other
// their subscription interest, and hand each other messages.
//
// Subjects, under `fc.<cluster>`:
//   fc.<cluster>.hello            every node, every heartbeat: "node N (epoch E) is alive"; and
//                                 "node N is leaving" when it stops
//   fc.<cluster>.to.<node>.i      interest of the sender: a full list (on discovery) or changes
//   fc.<cluster>.to.<node>.c      a client connected to the sender: give its client id up
//   fc.<cluster>.to.<node>.d      control-plane documents the sender committed (registry changes)
//   fc.<cluster>.to.<node>.m      a message for the node's subscribers
//   fc.<cluster>.to.<node>.a      acknowledgements of the node's requests
//   fc.<cluster>.to.<node>.t      the sender took over the sessions of a gone node
// A node reads its own `to.<node>.*` with one subscription, so what one peer says to it (a full list,
// then changes, then messages) arrives in the order it was said.
#include "broker/broker.hpp"
#include "common/metrics.hpp"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <deque>
#include <map>
#include <shared_mutex>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

struct __natsConnection;
struct __natsSubscription;
struct __natsMsg;

namespace fleetcore::cluster {

struct config {
  /// NATS servers, comma-separated (nats://host:port; credentials in the URL if the servers want them).
  std::string nats_url;
  /// The cluster's name: its subjects are under fc.<name>. Letters, digits, '-' and '_'.
  std::string name = "fleetcore";
  /// This node's id, unique in the cluster. Letters, digits, '-' and '_'.
  std::string node_id;
  std::chrono::milliseconds heartbeat{1000};
  /// A peer not heard from for this long is gone: it gets nothing more until it is back.
  std::chrono::milliseconds peer_timeout{3000};
  /// How long a request (a message's acknowledgement, an interest change) waits for a peer.
  std::chrono::milliseconds request_timeout{5000};
  /// How long QoS 1/2 messages for a gone node's sessions are refused while the heir (the lowest
  /// node id alive) takes them over, at most: if it does not say it has, they are let through.
  std::chrono::milliseconds inherit_timeout{30000};
};

/// Empty if `s` can be a node id or cluster name, else why not.
std::string check_name(std::string_view s);

class nats_link final : public broker::cluster_link {
 public:
  nats_link(config cfg, broker::broker& b);
  ~nats_link() override;
  nats_link(const nats_link&) = delete;
  nats_link& operator=(const nats_link&) = delete;

  /// Connects (a server that is not up yet is retried in the background), subscribes, and starts
  /// the heartbeat. Throws std::runtime_error if the configuration is unusable.
  void start();
  void stop();

  bool connected() const;
  /// Why this node should not take devices (for /readyz), or empty: not connected to NATS, or
  /// another node has this node's id.
  std::string problem() const;

  /// Tells every live peer of control-plane documents this node committed to the shared store.
  void publish_documents(const std::vector<storage::operation>& writes);
  /// Documents a peer committed, on the link's thread (set before start()).
  std::function<void(std::vector<storage::operation> writes)> on_documents;
  /// This node is the heir of gone node `node` (the lowest id alive): the services take over what
  /// it left (set before start(); on the link's thread). The broker's sessions are taken over apart.
  std::function<void(const std::string& node)> on_heir;
  /// The peers heard from within peer_timeout.
  std::vector<std::string> peers() const;
  const std::string& node_id() const noexcept { return cfg_.node_id; }
  void register_metrics(common::registry& r) const;

  void interest(const std::string& filter, bool add, std::function<void()> done) override;
  void claim(const std::string& client_id, bool clean_start, std::function<void(bool)> done) override;
  void forward(const std::string& node, const broker::message_ptr& m, std::vector<std::string> groups,
               forward_done done) override;

 private:
  struct peer {
    std::uint64_t epoch = 0;
    std::chrono::steady_clock::time_point last_seen;
    /// It gets this node's full list at the next tick (it may have missed a change), asked to
    /// answer with its own when `want_reply`.
    bool needs_sync = false;
    bool want_reply = false;
  };
  using reply = std::function<void(bool ok, std::uint32_t recipients)>;
  struct request {
    std::string node;
    std::chrono::steady_clock::time_point deadline;
    reply done;
  };

  static void on_message(__natsConnection*, __natsSubscription*, __natsMsg* msg, void* self);
  static void on_reconnected(__natsConnection*, void* self);
  void handle(std::string_view subject, std::string_view data);
  /// A frame from `node` with `epoch`: a new node (or a restarted one) gets this node's full interest
  /// and is asked for its own.
  enum class heard_from { known, joined, departed };
  heard_from heard(const std::string& node, std::uint64_t epoch);
  /// Fails the requests waiting for `node`'s answer.
  void fail_pending(const std::string& node);
  void send_sync(const std::string& node, bool want_reply);
  void say_hello();
  /// Forgets the peers in `gone` (they said goodbye: `departed`, or went silent): the broker stops
  /// routing to them, their requests fail, and the lowest node id alive takes their persistent
  /// sessions over — if it is connected to NATS and, for silent ones, alive with a majority of the
  /// nodes it knew (a node cut off from the others must not take theirs).
  void forget(std::vector<std::string> gone, bool departed);
  /// The sessions of gone node `node` are taken over (or given up on): its stand-in goes.
  void inherited(const std::string& node);
  /// Sends a request made by `frame(id)` to every live peer; `each(node, ok, n)` for each answer (ok
  /// = false: it timed out), then `done` once all are in.
  using answer = std::function<void(const std::string& node, bool ok, std::uint32_t n)>;
  void ask_all(const std::function<std::string(std::uint64_t id)>& frame, char what, std::function<void()> done,
               answer each);
  /// Registers a request to `node`; returns its id.
  std::uint64_t expect(const std::string& node, reply done);
  /// Completes request `id`; `from` (the answering node) must be the node it was asked of.
  void settle(std::uint64_t id, bool ok, std::uint32_t recipients, const std::string* from = nullptr);
  bool publish(const std::string& subject, const std::string& data);
  /// Publishes `frame` to every live peer's `to.<node>.<what>` (nothing awaited).
  void broadcast(char what, const std::string& frame);
  std::string to(const std::string& node, char what) const;
  void tick();

  config cfg_;
  broker::broker& broker_;
  const std::uint64_t epoch_;
  const std::string prefix_;
  /// Read (shared) by every publish, set and cleared (exclusive) by start and stop.
  mutable std::shared_mutex nc_mutex_;
  __natsConnection* nc_ = nullptr;
  __natsSubscription* sub_hello_ = nullptr;
  __natsSubscription* sub_to_ = nullptr;

  mutable std::mutex mu_;
  std::map<std::string, peer> peers_;
  std::unordered_map<std::uint64_t, request> pending_;
  /// Starts at a random value: an answer meant for an earlier process of this node cannot match.
  std::uint64_t next_request_;
  /// Peers that said goodbye (node, epoch), the last few: their frames still in flight are ignored.
  std::deque<std::pair<std::string, std::uint64_t>> departed_;
  std::atomic<bool> duplicate_id_{false};
  /// Gone nodes whose sessions are being taken over, and until when messages for them are refused.
  std::map<std::string, std::chrono::steady_clock::time_point> orphans_;

  std::mutex tick_mu_;
  std::condition_variable tick_cv_;
  bool stopping_ = false;
  std::thread ticker_;

  common::counter timeouts_;
  common::counter dropped_frames_;
  common::counter resyncs_;
};

}  // namespace fleetcore::cluster
