#pragma once
#include "common/metrics.hpp"

#include <array>

namespace fleetcore::broker {

/// Why a message was not delivered to a recipient.
enum class drop_reason : std::uint8_t {
  queue_full,         // the session reached max_queued_messages or max_queued_bytes
  slow_consumer,      // QoS 0 while the connection's unsent bytes exceed max_outbound_bytes
  offline_qos0,       // QoS 0 to a session that is not connected
  expired,            // message expiry interval elapsed before sending
  too_large,          // larger than the client's maximum packet size
  not_authorized,     // the recipient's policy does not allow iot:Receive on the topic
  count
};

enum class connect_result : std::uint8_t {
  success,
  protocol_error,
  unsupported_version,
  bad_client_id,
  not_authorized,
  bad_auth_method,
  server_unavailable,
  rate_limited,
  other,
  count
};

/// The broker's metrics, one list, exported in Prometheus format.
struct broker_metrics {
  common::gauge connections;
  common::gauge sessions;
  common::gauge subscriptions;
  common::gauge retained;
  common::gauge queued;  // messages in session queues and inflight windows
  common::gauge queued_bytes;
  std::array<common::counter, static_cast<std::size_t>(connect_result::count)> connects;
  std::array<common::counter, 3> messages_in;
  std::array<common::counter, 3> messages_out;
  std::array<common::counter, 3> payload_bytes_in;   // PUBLISH payload bytes by QoS
  std::array<common::counter, 3> payload_bytes_out;
  common::counter bytes_in;
  common::counter bytes_out;
  std::array<common::counter, static_cast<std::size_t>(drop_reason::count)> drops;
  common::counter protocol_errors;
  common::counter keepalive_timeouts;
  common::counter takeovers;
  common::counter wills;
  common::counter rate_limited;
  common::counter pressure_pauses;
  /// Publishes refused for their topic, by broker::origin.
  std::array<common::counter, 4> topics_refused;
  common::counter pressure_overruns;
  common::counter denied;
  /// Messages handed to other nodes (one per node) and routed here for another node.
  common::counter peer_messages_out;
  common::counter peer_messages_in;
  /// Sessions of a node that was gone, taken over by this node; QoS 1/2 publishes refused meanwhile.
  common::counter sessions_inherited;
  common::counter orphan_refusals;

  void register_all(common::registry& r) const;
};



}  // namespace fleetcore::broker
