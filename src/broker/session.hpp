#pragma once
// A client's session: subscriptions, the outbound QoS 1/2 state and the queue of messages waiting for
// an inflight slot or for the client to come back. A session is owned by one worker (`home`); its
// state is touched only on that worker's thread. It moves to the worker of a new connection that
// resumes it (broker::connect).
#include "broker/message.hpp"
#include "mqtt/packets.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/container/deque.hpp>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace fleetcore::broker {

class worker;
class client_connection;

/// One message on its way to one session.
struct delivery {
  message_ptr msg;
  std::uint8_t qos = 0;
  bool retain = false;
  std::vector<std::uint32_t> subscription_ids;
  std::uint64_t seq = 0;  // storage key when durable, 0 otherwise
};

struct inflight_entry {
  enum class state : std::uint8_t { awaiting_puback, awaiting_pubrec, awaiting_pubcomp };
  delivery d;
  state st;
  /// Went out at least once: a resend carries DUP.
  bool sent = false;
  /// A stored QoS 2 message waits for its packet id (and later its release) to be durable before
  /// its PUBLISH (PUBREL) goes out: a restart must resend it under the same id, and once released
  /// must not resend the message, or the receiver would take it for a new one.
  bool storing = false;
  /// Carried over from an earlier connection (takeover, restart) beyond this connection's window
  /// (its Receive Maximum): resent, with its packet id, once an acknowledgement frees a slot.
  bool held = false;
};

class session : public std::enable_shared_from_this<session> {
 public:
  session(std::string client_id, std::uint64_t incarnation, worker* home)
      : client_id(std::move(client_id)), incarnation(incarnation), home(home) {}

  const std::string client_id;
  /// Unique per session object across restarts; storage rows carry it so that writes of a replaced
  /// session cannot touch its successor's rows.
  const std::uint64_t incarnation;
  std::atomic<worker*> home;
  std::atomic<bool> online{false};
  /// True while messages routed to this session must be stored before they are acknowledged.
  std::atomic<bool> durable{false};
  /// Steady-clock ms since the session stopped keeping up (queue or unsent bytes above their
  /// thresholds), 0 while it keeps up. Publishers routing to it pause until it clears, for at most
  /// config::slow_consumer_grace_ms; after that it is a slow consumer and messages for it drop.
  /// Written by the home worker, read by any.
  std::atomic<std::int64_t> congested_since{0};

  // --- state of the home worker's thread only ---
  mqtt::protocol_version version = mqtt::protocol_version::v5;
  std::uint32_t expiry_interval = 0;  // seconds; 0xFFFFFFFF never expires
  std::map<std::string, subscription_options, std::less<>> subscriptions;
  boost::container::deque<delivery> queue;  // allocates nothing while empty (idle sessions)
  std::map<std::uint16_t, inflight_entry> inflight;
  /// Entries of `inflight` that are `held`.
  std::uint16_t held = 0;
  /// Stored copies whose commit failed before their delivery reached this session (it comes through
  /// another worker's outbox): dropped when it arrives. Allocated only then.
  std::unique_ptr<std::unordered_set<std::uint64_t>> withdrawn;
  /// Received QoS 2 ids awaiting PUBREL; false while the message is being stored (no PUBREC yet).
  std::unordered_map<std::uint16_t, bool> inbound_qos2;
  std::uint16_t last_packet_id = 0;
  client_connection* conn = nullptr;
  std::unique_ptr<mqtt::will_message> pending_will;  // delayed will (MQTT 5 will delay)
  std::unique_ptr<boost::asio::steady_timer> will_timer;
  std::unique_ptr<boost::asio::steady_timer> expiry_timer;
  std::int64_t disconnected_at_ms = 0;
  /// Bytes of the QoS 1/2 messages queued for or in flight to this session (bounded by
  /// config::max_queued_bytes). They count toward the broker-wide pressure only while it is online.
  std::int64_t backlog_bytes = 0;
  bool ended = false;
  /// Stands for another node of the cluster in the tries (its subscribers' interest): what routes
  /// to it is forwarded to that node (broker::set_cluster). Set before it is added, never changed.
  bool peer = false;
  /// A peer stand-in whose node is gone and whose sessions are not taken over yet: a QoS 1/2 message
  /// for it is refused to its publisher (who sends it again), not acknowledged and lost.
  std::atomic<bool> orphan{false};
  /// Taken over by another node of the cluster: its stored rows are that node's now, so ending it
  /// here deletes nothing.
  bool handed_over = false;


  bool persistent() const noexcept { return expiry_interval > 0; }

  /// Next free outbound packet id, or 0 if all 65535 are in flight.
  std::uint16_t next_packet_id() {
    for (int tries = 0; tries < 65535; ++tries) {
      last_packet_id = static_cast<std::uint16_t>(last_packet_id == 65535 ? 1 : last_packet_id + 1);
      if (!inflight.contains(last_packet_id)) return last_packet_id;
    }
    return 0;
  }
};

}  // namespace fleetcore::broker
