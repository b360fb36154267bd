#pragma once
// The broker core: sessions, routing, retained messages and wills, shared by all workers. The publish
// path takes no global lock: each worker matches against its own trie copy and hands deliveries to
// the recipients' workers with one post per worker.
#include "broker/client_connection.hpp"
#include "broker/cluster.hpp"
#include "broker/config.hpp"
#include "broker/hooks.hpp"
#include "broker/message.hpp"
#include "broker/metrics.hpp"
#include "broker/retained.hpp"
#include "broker/session.hpp"
#include "broker/worker.hpp"
#include "common/clock.hpp"
#include "common/rate_limiter.hpp"
#include "storage/store.hpp"

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace fleetcore::broker {

class broker {
 public:
  /// What a publisher is told once its message is routed (and stored where it must be).
  using publish_ack = std::function<void(bool durable, std::size_t recipients)>;

  broker(config cfg, common::clock& clock, storage::store& store, access_policy& policy,
         unsigned worker_count);
  ~broker();
  broker(const broker&) = delete;
  broker& operator=(const broker&) = delete;

  /// Restores retained messages and persistent sessions; call before start().
  void load();
  void start();
  /// Closes every connection and stops the workers; flushes storage.
  void stop();

  worker& next_worker();
  std::vector<std::unique_ptr<worker>>& workers() noexcept { return workers_; }
  const config& cfg() const noexcept { return cfg_; }
  common::clock& clock() noexcept { return clock_; }
  broker_metrics& stats() noexcept { return metrics_; }
  access_policy& policy() noexcept { return policy_; }
  /// Whether a CONNECT from `remote` ("address:port") fits max_connect_rate[_per_address]. Any thread.
  bool admit_connect(std::string_view remote) {
    return connect_limiter_.admit(remote) == common::rate_limiter::verdict::admitted;
  }
  void register_metrics(common::registry& r) const;

  // --- any thread ---

  /// Closes every connection whose transport info matches `pred`, each on its own worker, with
  /// reason `rc` (MQTT 5 clients get a DISCONNECT).
  void disconnect_if(std::function<bool(const connection_info&)> pred, mqtt::reason_code rc);
  /// Publishes a server-originated message (lifecycle and registry events, service responses).
  /// Messages of one caller thread are routed in call order.
  void publish_event(std::string topic, std::string payload, std::uint8_t qos = 0);
  /// A server-originated message with MQTT 5 properties (a rule's republish), `rule_hops` rule
  /// republishes deep; routed like publish_event. False (nothing published) if the topic is invalid.
  struct service_message {
    std::string topic;
    std::string payload;
    std::uint8_t qos = 0;
    mqtt::properties props;
    std::uint8_t rule_hops = 0;
  };
  bool publish_event(service_message m);
  /// Routes messages whose topics passed check_publish_topic(topic, origin::server), in order and after
  /// the earlier publish_event calls of the same thread: one hand-off to the broker for the batch.
  void publish_events(std::vector<service_message> batch);
  /// True if `filter` lies under a topic prefix a service consumes (Basic Ingest `$aws/rules/`),
  /// which no subscriber can ever receive: SUBSCRIBE refuses it.
  bool consumed_filter(std::string_view filter) const;
  /// Publishes a message that came from outside MQTT (HTTP publish): hooks see it, then it is
  /// routed; `done(durable)` runs on a worker once QoS 1 recipients have it stored.
  void publish_external(std::string topic, std::string payload, std::uint8_t qos, bool retain,
                        std::function<void(bool)> done);

  using origin = publish_origin;
  /// The topic rules of every publish: MQTT's (UTF-8 without NUL or control characters, no
  /// wildcards, limits.max_topic_length/levels) for every origin; and for all but the server, no
  /// reserved topic: `$SYS`, `$aws/events/...` (lifecycle and registry events), the topics AWS makes
  /// subscribe-only, and those a hook claims as reserved. Returns success, topic_name_invalid or
  /// not_authorized; a refusal is counted by origin. Any thread.
  mqtt::reason_code check_publish_topic(std::string_view topic, origin o);

  /// A number larger than any given before, for the lifecycle events of a new connection (seeded with
  /// the wall clock in ms, so it also grows across restarts). Any thread.
  std::uint64_t next_connection_number() noexcept;

  /// Delivers a server message to one session alone: the reply to that session's request (a
  /// provisioning key pair, a job document, a file block), which no other subscriber of the topic may
  /// see. Delivered only if the session is still the one with `session_id` (its incarnation: a request
  /// of a replaced session is not answered to its successor) and is subscribed to the topic (at its
  /// subscription's QoS), subject to iot:Receive like any delivery. Any thread.
  void deliver_to(const std::string& client_id, std::uint64_t session_id, message_ptr m);

  /// Runs `fn` on the worker of the session (`client_id`, `session_id`) after what is already posted
  /// there — the answers delivered to it — or at once if that session is gone. Any thread.
  void behind_session(const std::string& client_id, std::uint64_t session_id, std::function<void()> fn);

  /// Adds a hook; before start().
  void add_hook(broker_hook& h) { hooks_.push_back(&h); }

  // --- cluster (peers.cpp); any thread ---

  /// Joins a cluster through `link`; before load().
  void set_cluster(cluster_link* link) { cluster_ = link; }
  /// Peer `node` is known and has no interest (it just joined, or a full list of its interest
  /// follows): its stand-in in the tries is created or emptied; `done` (may be empty) runs once
  /// every worker has it. Retained messages go to every known peer.
  void peer_reset(const std::string& node, std::function<void()> done);
  /// Peer `node` is gone: it gets nothing more. `orphaned`: its persistent sessions are taken over
  /// by a surviving node (inherit), and until that node says so (orphan_adopted), QoS 1/2 messages
  /// its sessions subscribed to are refused to their publishers rather than lost.
  void peer_gone(const std::string& node, bool orphaned = false);
  /// The sessions of gone node `node` are taken over (by this node or another): its stand-in goes.
  void orphan_adopted(const std::string& node);
  /// Takes over the persistent sessions gone node `node` held in the store, offline here (as their
  /// clients left them, expiring as they would) with their subscriptions known to every node;
  /// those that another node or their client took meanwhile stay there. Then `done(taken)`, on any
  /// thread; `taken` is -1 if they could not be read.
  void inherit(const std::string& node, std::function<void(long taken)> done);
  /// Peer `node`'s interest in each filter (as subscribed) began (true) or ended; `done` once every
  /// worker's trie has it.
  void peer_interest(const std::string& node, std::vector<std::pair<std::string, bool>> changes,
                     std::function<void()> done);
  /// Another node has a CONNECT for `client_id`: its connection here is closed (session taken over)
  /// and its session leaves this node — ended if `clean_start`, else handed over: kept in the store
  /// for the other node to take. `done(had_session)` runs once what the session stored is durable.
  void release(const std::string& client_id, bool clean_start, std::function<void(bool had_session)> done);
  /// Calls `fn` with this node's interest (every filter with a local subscriber) under the lock that
  /// orders cluster_link::interest calls: what `fn` sends comes before any later change.
  void with_local_interest(const std::function<void(const std::vector<std::string>&)>& fn);
  /// Routes a message another node forwarded to this node's subscribers (and, for each shared group
  /// in `groups`, to one local member), without hooks and without forwarding it further; a retained
  /// message replaces the retained one in memory (its node stored it). `done(durable, recipients)`
  /// (may be empty) runs once the local copies are stored.
  /// `order_key` (the publishing session on its node) keeps one publisher's messages in order.
  void publish_from_peer(message_ptr m, std::uint64_t order_key, std::vector<std::string> groups, publish_ack done);
  const std::vector<broker_hook*>& hooks() const noexcept { return hooks_; }

  // --- called on the connection's worker ---

  /// Finds, resumes or creates the session for a validated CONNECT and eventually calls
  /// c->attach() on c's worker. In a cluster, the other nodes first give the client id up (closing
  /// its connection there, handing its persistent session over through the store).
  void connect(const std::shared_ptr<client_connection>& c, bool clean_start, std::uint32_t expiry);
  /// The one path of every accepted message (client, will, HTTP, server), on the publisher's worker:
  /// the hooks see it (and may consume it, or add storage operations), then it is routed. If anything
  /// must be durable (a recipient's stored copy, a hook's operations), `ack(durable, recipients)` runs
  /// on `w` after the group commit; otherwise before this returns. Returns the recipient count.
  /// If a recipient is congested and `congested_target` is given, it is set to that session: the
  /// caller pauses the publisher until it clears (targeted back-pressure).
  std::size_t publish(worker& w, const message_ptr& m, publish_context ctx, publish_ack ack,
                      std::shared_ptr<session>* congested_target = nullptr);
  /// Applies subscription changes of `s` to every worker's trie (and storage when persistent), then
  /// runs `done` on `w`.
  struct route_change {
    std::string filter;  // full filter as subscribed
    subscription_options opts;
    bool add;
  };
  void update_routes(worker& w, const std::shared_ptr<session>& s, std::vector<route_change> changes,
                     std::function<void()> done);
  /// Sends retained messages matching a new subscription to `s` (on its home worker).
  void send_retained(session& s, std::string_view filter, const subscription_options& opts);
  /// The connection of `s` went away: keeps or ends the session, publishes or delays its will.
  void detach(session& s, std::unique_ptr<mqtt::will_message> will);
  /// Session delivery and flow control, on the session's home worker.
  void deliver(session& s, delivery d);
  void pump(session& s);
  /// A connection attached `s`: resends its in-flight messages, in order with DUP, within the
  /// connection's window (the rest are `held`), PUBREL for those past PUBREC [MQTT-4.4.0-1], then
  /// sends from the queue.
  void resume(session& s);
  void complete(session& s, std::uint16_t packet_id);
  /// The client sent PUBREC for our QoS 2 `packet_id` (in flight, `e`): now awaiting PUBCOMP, and
  /// the PUBREL is sent, for a stored message once it is stored as released (a restart then resends
  /// the PUBREL, not the message).
  void released(session& s, std::uint16_t packet_id, inflight_entry& e);
  /// Sends in-flight `id` of `s`: its PUBREL once released, else the PUBLISH (with DUP if it went
  /// out before), dropped if the connection cannot take it (too large). False if dropped (`e` is gone).
  bool transmit(session& s, std::uint16_t id, inflight_entry& e);
  /// The client's PUBREL for its QoS 2 `packet_id` (already erased from `s.inbound_qos2`): the
  /// stored id is deleted, then `done` runs on `w` once that is durable.
  void forget_inbound_qos2(worker& w, session& s, std::uint16_t packet_id, std::function<void()> done);
  /// Publishes a will message.
  void publish_will(worker& w, const std::string& client_id, const mqtt::will_message& will);
  /// Stores `s`'s expiry/disconnect time when persistent.
  void touch_session(session& s, bool connected);

  /// Runs `fn` on `s`'s home worker, following it if it moves.
  void on_home(const std::shared_ptr<session>& s, std::function<void()> fn);
  /// The session of `client_id` if it is still the incarnation `session_id`.
  std::shared_ptr<session> session_of(const std::string& client_id, std::uint64_t session_id);

  /// Broker-wide back-pressure: true while publishers should not be read (above the high mark,
  /// within the episode's grace period).
  bool under_pressure() noexcept;
  /// `s` goes online (a connection attached) or offline; on its home worker.
  void set_online(session& s, bool online);
  void pause_for_pressure(client_connection& c);
  /// Re-evaluates whether `s` is congested (queue length, unsent bytes); on its home worker.
  void update_congestion(session& s);
  /// True while `s` is congested and still within its grace period; any thread.
  bool holds_back_publishers(const session& s) const;

 private:
  /// Offers a message to the hooks; true if one consumed it.
  bool offer(const message_ptr& m, const publish_context& ctx);
  /// Submits `ops` (not empty). If `must_wait` and `ack` is set, `ack(durable, recipients)` is posted
  /// to `w` after the commit and `ack` is emptied; otherwise the caller still runs it.
  /// A message's copy stored for a persistent session (`seq`), withdrawn if its commit fails.
  struct stored_copy {
    std::shared_ptr<session> s;
    std::uint64_t seq;
  };
  void commit(worker& w, std::vector<storage::operation>& ops, bool must_wait, publish_ack& ack,
              std::size_t recipients, std::vector<stored_copy> copies = {});
  /// Removes the queued delivery `seq` of `s` whose storing failed (on its home worker); one already
  /// sent stays in flight.
  void withdraw(session& s, std::uint64_t seq);
  /// Routes a server-originated message whose topic was checked (on the first worker).
  void post_event(service_message sm);
  /// Publishes `sm` on `w` (its topic checked): the one body of post_event and publish_events.
  void route_event(worker& w, service_message& sm);
  /// Routes a message to its subscribers, committing `ops` (hooks' operations) with its stored copies,
  /// and forwards it to the peers with interest. `from_peer`: a message a peer forwarded, with the
  /// shared groups it was picked for here; routed to local subscribers only.
  std::size_t route(worker& w, const message_ptr& m, std::vector<storage::operation> ops, publish_ack ack,
                    std::shared_ptr<session>* congested_target, const std::vector<std::string>* from_peer = nullptr);
  /// A peer picked by route(): its stand-in, and the shared groups it was picked for.
  struct peer_target {
    std::shared_ptr<session> proxy;
    std::vector<std::string> groups;
  };
  /// Hands `m` to `peers` (plus every other known peer if it is retained). Returns the ack that
  /// route() goes on with: the original one, or, when it waits for the peers (QoS 1/2 with an ack),
  /// one that runs the original once the local part and every peer have answered.
  publish_ack forward_to_peers(worker& w, const message_ptr& m, std::vector<peer_target>& peers, publish_ack ack,
                               std::size_t& recipients);
  /// A local subscription to `filter` was added or removed on worker 0's trie: counts it, and tells
  /// the cluster when the node's interest begins or ends (`done` then waits for the peers).
  void note_interest(const std::string& filter, bool add, std::function<void()> done);
  std::shared_ptr<session> proxy_of(const std::string& node);
  /// connect() once the cluster has given the client id up: the session here, else the one stored
  /// by another node (taken over: its rows move to a new incarnation), else a new one.
  void connect_in_cluster(const std::shared_ptr<client_connection>& c, bool clean_start, std::uint32_t expiry,
                          bool held_elsewhere);
  /// connect() on this node alone.
  void attach_session(const std::shared_ptr<client_connection>& c, bool clean_start, std::uint32_t expiry);
  /// Takes over session `r` stored by another node, on `w` (sessions_mutex_ held): the session, in
  /// sessions_ but not yet in the tries; null if it expired. `then(s, durable)` runs on `w` once its
  /// rows are this node's, or with false if another node took it first or claimed it meanwhile (it
  /// was ended here, unsaved).
  std::shared_ptr<session> adopt(storage::session_record r, worker& w,
                                 std::function<void(const std::shared_ptr<session>&, bool durable)> then);
  /// An adopted session's subscriptions into every trie and every node's interest, then `done` (on
  /// its worker).
  void route_adopted(worker& w, const std::shared_ptr<session>& s, std::function<void()> done);
  /// A session object from its stored record, on `home`; null (and its deletion in `cleanup`) if it
  /// expired. Its subscriptions are in its map, not yet in the tries.
  std::shared_ptr<session> restore(storage::session_record& r, worker& home, std::vector<storage::operation>& cleanup);
  /// A new session's incarnation: the next of this node's counter, or in a cluster a random one
  /// (unique across nodes, which share the store).
  std::uint64_t new_incarnation();
  /// Applies `changes` of `proxy` to every worker's trie, then `done`.
  void apply_peer_routes(const std::shared_ptr<session>& proxy, std::vector<std::pair<std::string, bool>> changes,
                         std::function<void()> done);
  void flush_outbox(worker& from, unsigned to);
  /// A topic only the server may publish on.
  bool server_only(std::string_view topic) const;
  void end_session(session& s);
  void arm_expiry(session& s);
  void send_inflight(session& s, delivery d);
  /// Stores that stored in-flight `id` of `s` went out (or was released), then transmits it: the
  /// entry is `storing` until then, and nothing else sends it.
  void transmit_when_recorded(session& s, std::uint16_t id, inflight_entry& e);
  /// iot:Receive for the session's current connection.
  bool may_receive(session& s, const message& m);
  /// Counts a delivery that will not be sent; `accounted` if it was in the queued gauges.
  void drop(session& s, const delivery& d, drop_reason why, bool accounted);

  void start_sweeps();
  void sweep(worker& w);
  void pressure_tick(worker& w);
  /// Accounts messages and bytes entering (+) or leaving (-) `s`'s queue or inflight window.
  void adjust_backlog(session& s, std::int64_t messages, std::int64_t bytes);
  std::int64_t pressure_bytes() const noexcept;
  storage::stored_message to_stored(const message& m, std::uint8_t qos, bool retain) const;
  message_ptr from_stored(const storage::stored_message& m) const;

  config cfg_;
  common::clock& clock_;
  storage::store& store_;
  access_policy& policy_;
  common::rate_limiter connect_limiter_;
  std::vector<std::unique_ptr<worker>> workers_;
  std::atomic<unsigned> next_worker_{0};
  std::atomic<std::uint64_t> next_incarnation_{1};
  std::atomic<std::uint64_t> next_seq_{1};
  std::atomic<std::uint64_t> last_connection_number_{0};
  /// Backlog bytes of online sessions: the part of the queued bytes that publishers' pauses drain.
  std::atomic<std::int64_t> online_backlog_bytes_{0};
  /// Steady ms since the pressure episode began (0: none); the episode ends below the low mark.
  std::atomic<std::int64_t> pressure_since_{0};
  std::atomic<bool> pressure_overrun_{false};
  std::atomic<std::int64_t> congested_{0};
  /// Deliveries from one worker to another, batched until the sending handler returns; indexed
  /// [from][to] and touched only by the `from` worker's thread.
  struct target_delivery {
    std::shared_ptr<session> s;
    delivery d;
  };
  struct outbox {
    std::vector<target_delivery> items;
    std::int64_t bytes = 0;
  };
  std::vector<std::vector<outbox>> outboxes_;
  /// Bytes posted to other workers and not yet delivered: part of the back-pressure signal.
  std::atomic<std::int64_t> inflight_between_workers_{0};
  retained_store retained_;
  broker_metrics metrics_;

  std::mutex sessions_mutex_;  // connect/disconnect path only, never the publish path
  std::unordered_map<std::string, std::shared_ptr<session>> sessions_;
  std::vector<std::unique_ptr<boost::asio::steady_timer>> sweep_timers_;
  std::vector<broker_hook*> hooks_;  // fixed after start()
  cluster_link* cluster_ = nullptr;    // fixed before load()
  std::mutex interest_mutex_;          // orders this node's interest changes as the cluster sees them
  std::unordered_map<std::string, std::uint32_t> interest_;  // filter → local sessions subscribed
  /// A filter's first subscription, until every peer has applied it; later subscribers wait too.
  struct interest_wait {
    std::mutex m;
    bool done = false;
    std::vector<std::function<void()>> waiters;
  };
  std::unordered_map<std::string, std::shared_ptr<interest_wait>> interest_pending_;
  std::mutex peers_mutex_;
  /// Node id → its stand-in; its `subscriptions` are the peer's interest (under peers_mutex_).
  std::unordered_map<std::string, std::shared_ptr<session>> peers_;
  /// Gone nodes' stand-ins whose sessions are being taken over (under peers_mutex_).
  std::unordered_map<std::string, std::shared_ptr<session>> orphans_;
  bool started_ = false;
  bool stopped_ = false;
};

}  // namespace fleetcore::broker
