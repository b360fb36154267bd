// The broker's metrics, declared in one list.
#include "broker/broker.hpp"

#include <fmt/format.h>

namespace fleetcore::broker {

void broker::register_metrics(common::registry& r) const {
  metrics_.register_all(r);
  r.add_gauge_fn([this] { return static_cast<double>(pressure_bytes()); }, "fleetcore_pressure_bytes", "",
                 "Bytes queued for or in flight to online sessions: the broker-wide back-pressure signal "
                 "(limits.pressure_high_bytes).");
  r.add_gauge_fn([this] { return static_cast<double>(congested_.load()); }, "fleetcore_congested_sessions", "",
                 "Online sessions that are not keeping up (queue or unsent bytes above threshold); their publishers pause.");
}

void broker_metrics::register_all(common::registry& r) const {
  r.add(connections, "fleetcore_connections", "", "Open client connections.");
  r.add(sessions, "fleetcore_sessions", "", "Sessions, connected or not.");
  r.add(subscriptions, "fleetcore_subscriptions", "", "Subscriptions of all sessions.");
  r.add(retained, "fleetcore_retained_messages", "", "Retained messages.");
  r.add(queued, "fleetcore_queued_messages", "", "QoS 1/2 messages queued or in flight to sessions.");
  r.add(queued_bytes, "fleetcore_queued_bytes", "", "Approximate bytes of queued messages.");
  static constexpr const char* results[] = {"success", "protocol_error", "unsupported_version", "bad_client_id",
                                            "not_authorized", "bad_auth_method", "server_unavailable", "rate_limited",
                                            "other"};
  static_assert(std::size(results) == std::tuple_size_v<decltype(connects)>, "a label per connect_result");
  for (std::size_t i = 0; i < connects.size(); ++i)
    r.add(connects[i], "fleetcore_connects_total", fmt::format("result=\"{}\"", results[i]), "CONNECT attempts by result.");
  for (int q = 0; q < 3; ++q) {
    r.add(messages_in[q], "fleetcore_messages_in_total", fmt::format("qos=\"{}\"", q), "PUBLISH packets received.");
    r.add(messages_out[q], "fleetcore_messages_out_total", fmt::format("qos=\"{}\"", q), "PUBLISH packets sent.");
    r.add(payload_bytes_in[q], "fleetcore_payload_bytes_in_total", fmt::format("qos=\"{}\"", q),
          "Payload bytes of PUBLISH packets received.");
    r.add(payload_bytes_out[q], "fleetcore_payload_bytes_out_total", fmt::format("qos=\"{}\"", q),
          "Payload bytes of PUBLISH packets sent.");
  }
  r.add(bytes_in, "fleetcore_bytes_in_total", "", "Bytes received from clients.");
  r.add(bytes_out, "fleetcore_bytes_out_total", "", "Bytes sent to clients.");
  static constexpr const char* reasons[] = {"queue_full", "slow_consumer", "offline_qos0", "expired", "too_large",
                                            "not_authorized"};
  static_assert(std::size(reasons) == static_cast<std::size_t>(drop_reason::count), "a label per drop_reason");
  for (std::size_t i = 0; i < drops.size(); ++i)
    r.add(drops[i], "fleetcore_dropped_messages_total", fmt::format("reason=\"{}\"", reasons[i]),
          "Messages not delivered to a recipient, by reason.");
  r.add(protocol_errors, "fleetcore_protocol_errors_total", "", "Connections closed for malformed or protocol-violating packets.");
  r.add(keepalive_timeouts, "fleetcore_keepalive_timeouts_total", "", "Connections closed by the keepalive rule.");
  r.add(takeovers, "fleetcore_session_takeovers_total", "", "Connections closed because the client id connected again.");
  r.add(wills, "fleetcore_will_messages_total", "", "Will messages published.");
  r.add(peer_messages_out, "fleetcore_cluster_messages_forwarded_total", "",
        "Messages handed to other nodes of the cluster, one per node.");
  r.add(peer_messages_in, "fleetcore_cluster_messages_received_total", "",
        "Messages other nodes of the cluster handed to this node.");
  r.add(sessions_inherited, "fleetcore_cluster_sessions_inherited_total", "",
        "Persistent sessions of a node that was gone, taken over by this node (the lowest id alive).");
  r.add(orphan_refusals, "fleetcore_cluster_orphan_refusals_total", "",
        "QoS 1/2 publishes refused because a gone node's sessions were not taken over yet.");
  r.add(rate_limited, "fleetcore_rate_limited_total", "", "Times a client was paused for exceeding its publish rate.");
  r.add(pressure_pauses, "fleetcore_backpressure_pauses_total", "", "Times a publisher was paused because delivery queues were full.");
  static constexpr const char* origins[] = {"client", "will", "http", "server"};
  static_assert(std::size(origins) == static_cast<std::size_t>(broker::origin::count), "a label per origin");
  for (std::size_t i = 0; i < std::size(origins); ++i)
    r.add(topics_refused[i], "fleetcore_publish_topics_refused_total", fmt::format("origin=\"{}\"", origins[i]),
          "Publishes refused for their topic (invalid, over the limits, $SYS or a service's response topic).");
  r.add(pressure_overruns, "fleetcore_pressure_overruns_total", "",
        "Pressure episodes that outlasted limits.slow_consumer_grace_ms: publishers were resumed while "
        "online sessions still held more than limits.pressure_high_bytes unacknowledged.");
  r.add(denied, "fleetcore_denied_total", "", "Actions refused by the access policy.");
}

}  // namespace fleetcore::broker
