#pragma once
// The broker's durable state behind one interface, so that the embedded SQLite backend can be
// replaced by a PostgreSQL one for multi-node deployments. Writes are batches of operations applied
// in submission order; a batch's completion fires only once it is durable (after the group commit
// that contains it).
#include <cstdint>
#include <functional>
#include <optional>
#include <future>
#include <string>
#include <variant>
#include <vector>

namespace fleetcore::storage {

/// A message as stored: retained, or queued for a persistent session.
struct stored_message {
  std::string topic;
  std::string payload;
  std::uint8_t qos = 0;
  bool retain = false;
  /// MQTT 5 property bytes that travel with the message (payload format, content type, response
  /// topic, correlation data, user properties), encoded without the length prefix.
  std::string props;
  /// Wall-clock expiry in ms since the epoch; 0 = never.
  std::int64_t expiry_at_ms = 0;
};

struct subscription_record {
  std::string filter;  // as subscribed, including any $share/{group}/ prefix
  std::uint8_t options = 0;  // MQTT 5 subscription options byte
  std::uint32_t subscription_id = 0;
};

struct queued_record {
  std::uint64_t seq = 0;
  stored_message msg;  // msg.qos is the QoS granted to this session
  std::vector<std::uint32_t> subscription_ids;
  /// Once sent: the packet id it went out with (0 = not sent yet), and for QoS 2 whether its
  /// PUBREC came back (the next step is PUBREL, not the PUBLISH again).
  std::uint16_t packet_id = 0;
  bool released = false;
};

struct session_record {
  std::string client_id;
  std::uint64_t incarnation = 0;
  std::uint32_t expiry_interval = 0;
  std::uint8_t protocol = 0;
  std::int64_t disconnected_at_ms = 0;  // 0 while connected
  /// The cluster node that holds the session ("" on a single node): a node restores its own at start.
  std::string node;
  std::vector<subscription_record> subscriptions;
  std::vector<queued_record> queue;  // in seq order
  std::vector<std::uint16_t> inbound_qos2;  // QoS 2 packet ids received (PUBREC sent), PUBREL not yet
};

struct snapshot {
  std::vector<stored_message> retained;
  std::vector<session_record> sessions;
  std::uint64_t max_seq = 0;
  std::uint64_t max_incarnation = 0;
};

/// A control-plane record (a thing, a certificate, a policy, an attachment...): `kind` names its
/// collection, `key` is unique within it, `body` is the domain's own serialization (JSON).
struct document {
  std::string kind;
  std::string key;
  std::string body;
};

namespace op {
struct put_document {
  document doc;
};
struct delete_document {
  std::string kind;
  std::string key;
};
/// Compare-and-set for a document several nodes write (a shadow in a cluster): writes `doc` only if
/// the stored body of its kind and key is `expected` (none stored when absent); otherwise the batch
/// fails, as on any failed statement, and leaves nothing behind.
struct swap_document {
  document doc;
  std::optional<std::string> expected;
};
struct put_retained {
  stored_message msg;
};
struct delete_retained {
  std::string topic;
};
/// Creates or replaces the session of `client_id`, dropping what any older incarnation stored.
struct put_session {
  std::string client_id;
  std::uint64_t incarnation;
  std::uint32_t expiry_interval;
  std::uint8_t protocol;
  std::int64_t disconnected_at_ms;
  std::string node;
};
/// Another node takes the session of `client_id` over: every row stored under incarnation `from`
/// (the session, its subscriptions, queued messages and inbound QoS 2 ids) moves to incarnation `to`,
/// held by `node`, so that whatever the old incarnation still writes is ignored. If `from` is not the
/// stored incarnation (another node took it first), the batch fails and leaves nothing behind.
struct adopt_session {
  std::string client_id;
  std::uint64_t from;
  std::uint64_t to;
  std::string node;
};
/// Updates expiry and disconnect time of the current incarnation only.
struct touch_session {
  std::string client_id;
  std::uint64_t incarnation;
  std::uint32_t expiry_interval;
  std::int64_t disconnected_at_ms;
};
struct delete_session {
  std::string client_id;
  std::uint64_t incarnation;
};
struct put_subscription {
  std::string client_id;
  std::uint64_t incarnation;
  subscription_record sub;
};
struct delete_subscription {
  std::string client_id;
  std::uint64_t incarnation;
  std::string filter;
};
struct put_message {
  std::string client_id;
  std::uint64_t incarnation;
  queued_record rec;
};
/// Like every write of a session's rows, ignored unless the session is still `incarnation` (its
/// rows were not taken over by another holder since).
struct delete_message {
  std::string client_id;
  std::uint64_t incarnation;
  std::uint64_t seq;
};
/// Records that the queued message `seq` went out as `packet_id` (and, `released`, that its PUBREC
/// came back), so that after a restart it is resent with DUP and the same id, or its PUBREL is.
struct send_message {
  std::string client_id;
  std::uint64_t incarnation;
  std::uint64_t seq;
  std::uint16_t packet_id;
  bool released;
};
/// A QoS 2 packet id received from the client (PUBREC sent), held until its PUBREL: a retry of
/// the PUBLISH after a restart is acknowledged again, not delivered twice.
struct put_inbound_qos2 {
  std::string client_id;
  std::uint64_t incarnation;
  std::uint16_t packet_id;
};
struct delete_inbound_qos2 {
  std::string client_id;
  std::uint64_t incarnation;
  std::uint16_t packet_id;
};
}  // namespace op

using operation = std::variant<op::put_retained, op::delete_retained, op::put_session,
                               op::touch_session, op::delete_session, op::put_subscription,
                               op::delete_subscription, op::put_message, op::delete_message,
                               op::send_message, op::put_inbound_qos2, op::delete_inbound_qos2,
                               op::put_document, op::delete_document, op::adopt_session,
                               op::swap_document>;

/// Threads: `load`, `load_documents`, `load_session`, `submit` and `flush` may be called from any
/// thread, including concurrently, except from inside a `done` callback (the store's own thread),
/// where only `submit`, `load_session` and `load_node_sessions` (which do not wait) are allowed. An implementation owns its connections and never shares one between threads; reads and
/// writes are ordered as they were called: a read sees every batch submitted before it (committed or
/// failed) and none submitted after it.
class store {
 public:
  virtual ~store() = default;

  /// Reads all state, after everything submitted before this call. Blocks the caller until done;
  /// meant for start-up. Throws std::runtime_error if the state cannot be read (the server cannot
  /// start with a partial snapshot).
  virtual snapshot load() = 0;

  /// Reads the documents of `kind` in key order, like `load` (ordering, blocking, errors).
  virtual std::vector<document> load_documents(const std::string& kind) = 0;

  /// Reads one document, like `load_documents`; nothing if there is none.
  virtual std::optional<document> load_document(const std::string& kind, const std::string& key) {
    for (auto& d : load_documents(kind))
      if (d.key == key) return std::move(d);
    return std::nullopt;
  }

  /// Reads the stored session of `client_id` (as `load` returns it; nothing if there is none), after
  /// every batch submitted before. Does not block: `done(record, ok)` runs on the store's own thread
  /// (hand work off only), with ok = false if it could not be read.
  using session_read = std::function<void(std::optional<session_record>, bool ok)>;
  virtual void load_session(std::string client_id, session_read done) = 0;

  /// Reads every stored session held by cluster node `node`, like `load_session` (ordering, thread,
  /// ok = false if they could not be read): what a surviving node takes over when `node` is gone.
  using sessions_read = std::function<void(std::vector<session_record>, bool ok)>;
  virtual void load_node_sessions(std::string node, sessions_read done) = 0;

  /// Queues `ops` to be applied atomically, after everything submitted before. `done`, if set, runs
  /// on the store's own thread once the ops are durable (`true`), or once they failed (`false`): a
  /// statement of the batch failed (the batch then leaves nothing behind, other batches of the same
  /// commit are unaffected) or the commit failed. It must only hand work off (post), never block.
  virtual void submit(std::vector<operation> ops, std::function<void(bool durable)> done) = 0;

  /// Blocks until everything submitted so far is durable or failed. Not from a `done` callback.
  virtual void flush() = 0;

  /// Submits `ops` and blocks until they are durable (true) or failed: for control-plane operations
  /// that answer after their commit. Not from a `done` callback, never on a worker.
  bool submit_and_wait(std::vector<operation> ops) {
    std::promise<bool> durable;
    auto result = durable.get_future();
    submit(std::move(ops), [&durable](bool ok) { durable.set_value(ok); });
    return result.get();
  }
};

}  // namespace fleetcore::storage
