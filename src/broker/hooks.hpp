#pragma once
// The seams other layers plug into. Authorization is auth's interface; services (shadows, lifecycle
// events, later jobs, rules and provisioning) are broker hooks: a short, closed list of points fired
// from the one path each event takes, so that the router never calls those modules directly.
#include "auth/access.hpp"
#include "broker/message.hpp"
#include "storage/store.hpp"

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace fleetcore::broker {

using access_policy = auth::access_policy;
using allow_all_policy = auth::allow_all_policy;
using connection_info = auth::connection_info;

/// Where a message comes from. The topic rules are the same for all; only the server may publish on
/// reserved topics.
enum class publish_origin : std::uint8_t { client, will, http, server, count };

/// Who published a message and when.
struct publish_context {
  publish_origin origin = publish_origin::server;
  /// The publisher's client id and connection (client and will origins); empty / null otherwise.
  std::string_view client_id;
  const connection_info* connection = nullptr;
  std::int64_t received_at_ms = 0;
  /// Storage operations a hook adds here (a rule's durable inbox entry) are committed in the same
  /// batch as the message's stored copies, and the publisher's acknowledgement (PUBACK, PUBREC, the
  /// HTTP answer) waits for that commit: an acknowledged message is never lost by a service either.
  /// A publisher may pass operations of its own here too (a QoS 2 packet id to hold until PUBREL).
  std::vector<storage::operation>* commit_with = nullptr;
};

/// How a service uses a topic.
enum class topic_claim : std::uint8_t {
  none,
  /// Only the server publishes here (a service's responses and notifications): clients get 0x87,
  /// HTTP 401, a will refuses the CONNECT.
  reserved,
  /// Messages here are handed to the service and reach no subscriber (AWS Basic Ingest).
  consumed,
};

/// A connection's session, as lifecycle events describe it.
struct session_info {
  std::string_view client_id;
  const connection_info& connection;
  /// Unique for the life of the session (AWS: sessionIdentifier).
  std::uint64_t session_id = 0;
  /// Orders the connect and disconnect of one connection against the others of the same client id;
  /// the disconnect carries its connect's number (AWS: versionNumber).
  std::uint64_t connection_number = 0;
};

/// Why a connection ended, in AWS IoT's lifecycle-event vocabulary.
enum class disconnect_reason : std::uint8_t {
  client_initiated,  // CLIENT_INITIATED_DISCONNECT
  duplicate_client_id,
  keep_alive_timeout,
  auth_error,
  client_error,
  connection_lost,
  server_initiated,
  throttled,
  server_error,
};
std::string_view to_string(disconnect_reason r) noexcept;

/// A service plugged into the broker. Registered before the broker starts; every call is on a worker
/// thread (the publisher's, or the connection's) and must only hand work off, never block.
class broker_hook {
 public:
  virtual ~broker_hook() = default;
  /// How this service uses `topic`; asked only for topics that start with `$`, the ones MQTT leaves
  /// to the server, so an ordinary publish costs no hook call here. Any thread.
  virtual topic_claim claim(std::string_view topic) const { return topic_claim::none; }
  /// For a topic it consumes: how many leading bytes do not count toward the topic length and level
  /// limits (AWS Basic Ingest: `$aws/rules/<rule>/`). Asked like claim(), only for `$` topics.
  virtual std::size_t uncounted_prefix(std::string_view topic) const { return 0; }
  /// Every message of every origin that passed the topic rules and authorization, before it is
  /// routed. Returns true to consume it (it then reaches no subscriber); only for topics it claims
  /// as consumed. Storage operations appended to `ctx.commit_with` commit before the acknowledgement.
  virtual bool on_message(const message_ptr& m, const publish_context& ctx) { return false; }
  /// A CONNECT was accepted (CONNACK success sent).
  virtual void on_connected(const session_info& s) {}
  /// A connection that had connected ended.
  virtual void on_disconnected(const session_info& s, disconnect_reason why, bool client_initiated) {}
  /// Subscriptions granted (SUBACK sent), or removed (UNSUBACK sent); only the filters that took effect.
  virtual void on_subscribed(const session_info& s, std::span<const std::string> filters) {}
  virtual void on_unsubscribed(const session_info& s, std::span<const std::string> filters) {}
};

}  // namespace fleetcore::broker
