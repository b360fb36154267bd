#include "events/lifecycle.hpp"

#include "mqtt/topic.hpp"

#include <boost/json.hpp>
#include <fmt/format.h>

namespace fleetcore::events {

namespace json = boost::json;

namespace {

/// sessionIdentifier: 32 hex digits, like AWS's.
std::string session_identifier(std::uint64_t id) { return fmt::format("{:032x}", id); }

/// The address without the port: "1.2.3.4:5" -> "1.2.3.4", "[::1]:5" -> "::1".
std::string ip_of(std::string_view remote) {
  auto colon = remote.rfind(':');
  std::string_view host = colon == std::string_view::npos ? remote : remote.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  return std::string(host);
}

json::object common_fields(const broker::session_info& s, std::string_view type, std::int64_t now_ms) {
  return {{"clientId", s.client_id},
          {"timestamp", now_ms},
          {"eventType", type},
          {"sessionIdentifier", session_identifier(s.session_id)},
          // The certificate id for mutual TLS; the plain listener has no credential.
          {"principalIdentifier", s.connection.certificate_id}};
}

}  // namespace

bool lifecycle::eligible(std::string_view client_id) noexcept {
  if (client_id.find_first_of("+#") != std::string_view::npos) return false;
  // The event topic ($aws/events/subscriptions/unsubscribed/<id>: 4 levels, 36 bytes) must be valid.
  return mqtt::check_topic_name(client_id, 1024 - 36, 16 - 4) == mqtt::topic_name_error::none;
}

std::string lifecycle::presence(const broker::session_info& s, bool connected, broker::disconnect_reason why,
                                bool client_initiated, std::int64_t now_ms) const {
  auto o = common_fields(s, connected ? "connected" : "disconnected", now_ms);
  if (connected) {
    o["ipAddress"] = ip_of(s.connection.remote);
  } else {
    o["clientInitiatedDisconnect"] = client_initiated;
    o["disconnectReason"] = broker::to_string(why);
  }
  o["versionNumber"] = s.connection_number;
  return json::serialize(o);
}

std::string lifecycle::subscriptions(const broker::session_info& s, bool subscribed,
                                     std::span<const std::string> filters, std::int64_t now_ms) const {
  auto o = common_fields(s, subscribed ? "subscribed" : "unsubscribed", now_ms);
  json::array topics;
  for (const auto& f : filters) topics.emplace_back(f);
  o["topics"] = std::move(topics);
  return json::serialize(o);
}

void lifecycle::publish(std::string topic, std::string payload) {
  broker_.publish_event(std::move(topic), std::move(payload), 0);
}

void lifecycle::on_connected(const broker::session_info& s) {
  if (!eligible(s.client_id)) return;
  publish(fmt::format("$aws/events/presence/connected/{}", s.client_id),
          presence(s, true, {}, false, clock_.wall_ms()));
}

void lifecycle::on_disconnected(const broker::session_info& s, broker::disconnect_reason why, bool client_initiated) {
  if (!eligible(s.client_id)) return;
  publish(fmt::format("$aws/events/presence/disconnected/{}", s.client_id),
          presence(s, false, why, client_initiated, clock_.wall_ms()));
}

void lifecycle::on_subscribed(const broker::session_info& s, std::span<const std::string> filters) {
  if (!eligible(s.client_id)) return;
  publish(fmt::format("$aws/events/subscriptions/subscribed/{}", s.client_id),
          subscriptions(s, true, filters, clock_.wall_ms()));
}

void lifecycle::on_unsubscribed(const broker::session_info& s, std::span<const std::string> filters) {
  if (!eligible(s.client_id)) return;
  publish(fmt::format("$aws/events/subscriptions/unsubscribed/{}", s.client_id),
          subscriptions(s, false, filters, clock_.wall_ms()));
}

}  // namespace fleetcore::events
