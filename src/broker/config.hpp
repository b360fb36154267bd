#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace fleetcore::broker {

/// Broker limits and protocol settings; every limit has a test. Defaults suit a single node.
struct config {
  std::uint32_t max_packet_size = 128 * 1024;        // both directions
  std::uint16_t max_topic_length = 1024;             // bytes, names and filters
  std::uint16_t max_topic_levels = 16;
  std::uint32_t max_subscriptions_per_client = 1000;
  std::uint16_t max_inflight = 100;                  // outbound QoS 1/2 window per client
  std::uint16_t receive_maximum = 100;               // inbound QoS 1/2 window we advertise
  std::uint32_t max_queued_messages = 1000;          // per session, online backlog and offline queue
  /// Per session: bytes of QoS 1/2 messages queued and in flight together; beyond it new messages
  /// for that session drop (counted), so that no session holds more memory than this.
  std::uint64_t max_queued_bytes = 16ull * 1024 * 1024;
  std::uint32_t max_publish_rate = 0;                // messages/s per client, 0 = unlimited
  /// CONNECTs admitted per second, in all and per source address (an IPv6 address by its /64), each
  /// with a burst of one second's worth; 0 = unlimited. The excess is refused before anything else is
  /// looked at: MQTT 5 clients get CONNACK 0x9F, 3.1.1 clients are closed without a CONNACK.
  std::uint32_t max_connect_rate = 0;
  std::uint32_t max_connect_rate_per_address = 0;
  std::uint16_t topic_alias_maximum = 32;            // inbound aliases we accept
  std::uint16_t max_keep_alive = 1200;               // larger keepalives are lowered (server keep alive)
  std::uint32_t max_session_expiry = 7 * 24 * 3600;  // seconds; 0xFFFFFFFF requests are lowered to this
  std::uint16_t max_client_id_length = 128;
  std::uint32_t max_outbound_bytes = 1024 * 1024;    // per connection unsent bytes before QoS 0 drops
  /// Broker-wide: bytes queued for online sessions and in transit between workers above which
  /// publishers stop being read, and below which they resume: the back-pressure that bounds memory
  /// under saturation. A pause lasts at most slow_consumer_grace_ms per episode (until the bytes
  /// fall below the low mark), so sessions that never acknowledge cannot hold every publisher; offline
  /// sessions' queues never count (pausing publishers cannot drain them).
  std::uint64_t pressure_high_bytes = 32ull * 1024 * 1024;
  std::uint64_t pressure_low_bytes = 16ull * 1024 * 1024;
  /// Queue length of an online session above which it counts as congested (publishers pause).
  std::uint32_t congestion_queue_length = 500;
  /// How long a congested session may hold its publishers back before it is treated as a slow
  /// consumer (its QoS 0 messages drop, its queue overflows) so that it cannot stall them forever.
  std::uint32_t slow_consumer_grace_ms = 2000;
  bool retain_available = true;
  bool wildcard_subscription_available = true;
  bool shared_subscription_available = true;
  bool subscription_identifier_available = true;
  /// This node's id in a cluster (empty on a single node): stored with each session it holds.
  std::string node_id;
};

}  // namespace fleetcore::broker
