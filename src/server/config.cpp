#include "server/config.hpp"

#include <toml++/toml.h>

#include <functional>
#include <map>
#include <stdexcept>

namespace fleetcore::server {

namespace {

template <typename T>
std::function<void(const toml::node&)> setter(T& field, const std::string& key) {
  return [&field, key](const toml::node& n) {
    if constexpr (std::is_same_v<T, bool>) {
      auto v = n.value<bool>();
      if (!v) throw std::runtime_error(key + ": expected a boolean");
      field = *v;
    } else if constexpr (std::is_integral_v<T>) {
      auto v = n.value<std::int64_t>();
      if (!v || *v < 0 || static_cast<std::uint64_t>(*v) > std::numeric_limits<T>::max())
        throw std::runtime_error(key + ": expected an integer in range");
      field = static_cast<T>(*v);
    } else if constexpr (std::is_floating_point_v<T>) {
      auto v = n.value<double>();
      if (!v || *v < 0) throw std::runtime_error(key + ": expected a non-negative number");
      field = *v;
    } else {
      auto v = n.value<std::string>();
      if (!v) throw std::runtime_error(key + ": expected a string");
      field = *v;
    }
  };
}

}  // namespace

server_config load_config(const std::filesystem::path& file) {
  server_config c;
  toml::table root;
  try {
    root = toml::parse_file(file.string());
  } catch (const toml::parse_error& e) {
    throw std::runtime_error(file.string() + ":" + std::to_string(e.source().begin.line) + ": " +
                             std::string(e.description()));
  }
  std::string data_dir, cert, key, plain_policy;
  auto& b = c.broker;
  std::map<std::string, std::function<void(const toml::node&)>> keys = {
      {"server.data_dir", setter(data_dir, "server.data_dir")},
      {"server.log_level", setter(c.log_level, "server.log_level")},
      {"server.storage", setter(c.storage, "server.storage")},
      {"server.workers", setter(c.workers, "server.workers")},
      {"cluster.nats", setter(c.cluster_nats, "cluster.nats")},
      {"cluster.node_id", setter(c.node_id, "cluster.node_id")},
      {"cluster.name", setter(c.cluster_name, "cluster.name")},
      {"listeners.mqtt", setter(c.mqtt, "listeners.mqtt")},
      {"listeners.mqtts", setter(c.mqtts, "listeners.mqtts")},
      {"listeners.wss", setter(c.wss, "listeners.wss")},
      {"listeners.metrics", setter(c.metrics, "listeners.metrics")},
      {"listeners.api", setter(c.api, "listeners.api")},
      {"tls.cert", setter(cert, "tls.cert")},
      {"tls.key", setter(key, "tls.key")},
      {"tls.ca_key_type", setter(c.ca_key_type, "tls.ca_key_type")},
      {"tls.session_lifetime_s", setter(c.tls_session_lifetime_s, "tls.session_lifetime_s")},
      {"tls.persist_ticket_keys", setter(c.tls_persist_ticket_keys, "tls.persist_ticket_keys")},
      {"registry.certificate_days", setter(c.certificate_days, "registry.certificate_days")},
      {"registry.thing_type_delete_wait_s", setter(c.thing_type_delete_wait_s, "registry.thing_type_delete_wait_s")},
      {"registry.endpoint_host", setter(c.endpoint_host, "registry.endpoint_host")},
      {"auth.plain_policy", setter(c.plain_policy, "auth.plain_policy")},
      {"shadow.max_document_bytes", setter(c.shadow_max_document_bytes, "shadow.max_document_bytes")},
      {"shadow.max_inflight_per_client", setter(c.shadow_max_inflight_per_client, "shadow.max_inflight_per_client")},
      {"rules.max_inbox", setter(c.rules.max_inbox, "rules.max_inbox")},
      {"rules.max_rule_queue", setter(c.rules.max_rule_queue, "rules.max_rule_queue")},
      {"rules.max_republish_depth", setter(c.rules.max_republish_depth, "rules.max_republish_depth")},
      {"rules.http_retry_for_s", setter(c.rules.http_retry_for_s, "rules.http_retry_for_s")},
      {"rules.http_connections", setter(c.rules.http_connections, "rules.http_connections")},
      {"rules.http_timeout_ms", setter(c.rules.http_timeout_ms, "rules.http_timeout_ms")},
      {"rules.http_ca_file", setter(c.rules.http_ca_file, "rules.http_ca_file")},
      {"rules.allow_plain_http", setter(c.rules.allow_plain_http, "rules.allow_plain_http")},
      {"provisioning.hook_ca_file", setter(c.provisioning.hooks.ca_file, "provisioning.hook_ca_file")},
      {"provisioning.bootstrap_per_address_per_s",
       setter(c.provisioning.bootstrap.per_address_per_s, "provisioning.bootstrap_per_address_per_s")},
      {"provisioning.bootstrap_per_address_burst",
       setter(c.provisioning.bootstrap.per_address_burst, "provisioning.bootstrap_per_address_burst")},
      {"provisioning.bootstrap_global_per_s", setter(c.provisioning.bootstrap.global_per_s, "provisioning.bootstrap_global_per_s")},
      {"provisioning.bootstrap_global_burst", setter(c.provisioning.bootstrap.global_burst, "provisioning.bootstrap_global_burst")},
      {"provisioning.hooks",
       [&c](const toml::node& n) {
         const auto* table = n.as_table();
         if (!table) throw std::runtime_error("provisioning.hooks: expected a table of \"<targetArn>\" = \"https://...\"");
         for (auto& [arn, url] : *table) {
           auto u = url.value<std::string>();
           if (!u || !u->starts_with("https://"))
             throw std::runtime_error("provisioning.hooks.\"" + std::string(arn.str()) + "\": expected an https:// URL");
           c.provisioning.hooks.targets[std::string(arn.str())] = *u;
         }
       }},
      {"telemetry.retention_hours", setter(c.telemetry.retention_hours, "telemetry.retention_hours")},
      {"telemetry.query_timeout_ms", setter(c.telemetry.query_timeout_ms, "telemetry.query_timeout_ms")},
      {"aws.region", setter(c.aws_region, "aws.region")},
      {"aws.account_id", setter(c.aws_account_id, "aws.account_id")},
      {"auth.plain_policy_file", setter(plain_policy, "auth.plain_policy_file")},
      {"limits.max_pending_connections", setter(c.admission.max_pending, "limits.max_pending_connections")},
      {"limits.max_pending_connections_per_address",
       setter(c.admission.max_pending_per_address, "limits.max_pending_connections_per_address")},
      {"limits.max_packet_size", setter(b.max_packet_size, "limits.max_packet_size")},
      {"limits.max_topic_length", setter(b.max_topic_length, "limits.max_topic_length")},
      {"limits.max_topic_levels", setter(b.max_topic_levels, "limits.max_topic_levels")},
      {"limits.max_subscriptions_per_client", setter(b.max_subscriptions_per_client, "limits.max_subscriptions_per_client")},
      {"limits.max_inflight", setter(b.max_inflight, "limits.max_inflight")},
      {"limits.receive_maximum", setter(b.receive_maximum, "limits.receive_maximum")},
      {"limits.max_queued_messages", setter(b.max_queued_messages, "limits.max_queued_messages")},
      {"limits.max_queued_bytes", setter(b.max_queued_bytes, "limits.max_queued_bytes")},
      {"limits.max_publish_rate", setter(b.max_publish_rate, "limits.max_publish_rate")},
      {"limits.topic_alias_maximum", setter(b.topic_alias_maximum, "limits.topic_alias_maximum")},
      {"limits.max_keep_alive", setter(b.max_keep_alive, "limits.max_keep_alive")},
      {"limits.max_connections_per_s", setter(b.max_connect_rate, "limits.max_connections_per_s")},
      {"limits.max_connections_per_s_per_address",
       setter(b.max_connect_rate_per_address, "limits.max_connections_per_s_per_address")},
      {"limits.max_session_expiry", setter(b.max_session_expiry, "limits.max_session_expiry")},
      {"limits.max_client_id_length", setter(b.max_client_id_length, "limits.max_client_id_length")},
      {"limits.max_outbound_bytes", setter(b.max_outbound_bytes, "limits.max_outbound_bytes")},
      {"limits.pressure_high_bytes", setter(b.pressure_high_bytes, "limits.pressure_high_bytes")},
      {"limits.pressure_low_bytes", setter(b.pressure_low_bytes, "limits.pressure_low_bytes")},
      {"limits.congestion_queue_length", setter(b.congestion_queue_length, "limits.congestion_queue_length")},
      {"limits.slow_consumer_grace_ms", setter(b.slow_consumer_grace_ms, "limits.slow_consumer_grace_ms")},
      {"mqtt.retain_available", setter(b.retain_available, "mqtt.retain_available")},
      {"mqtt.wildcard_subscription_available", setter(b.wildcard_subscription_available, "mqtt.wildcard_subscription_available")},
      {"mqtt.shared_subscription_available", setter(b.shared_subscription_available, "mqtt.shared_subscription_available")},
      {"mqtt.subscription_identifier_available", setter(b.subscription_identifier_available, "mqtt.subscription_identifier_available")},
  };
  for (auto& [section, node] : root) {
    const auto* table = node.as_table();
    if (!table) throw std::runtime_error(file.string() + ": '" + std::string(section.str()) + "' must be a table");
    for (auto& [k, v] : *table) {
      std::string full = std::string(section.str()) + "." + std::string(k.str());
      auto it = keys.find(full);
      if (it == keys.end())
        throw std::runtime_error(file.string() + ":" + std::to_string(v.source().begin.line) + ": unknown key " + full);
      try {
        it->second(v);
      } catch (const std::runtime_error& e) {
        throw std::runtime_error(file.string() + ":" + std::to_string(v.source().begin.line) + ": " + e.what());
      }
    }
  }
  if (!data_dir.empty()) c.data_dir = data_dir;
  if (c.tls_session_lifetime_s > 604800)  // RFC 8446 4.6.1: a ticket lives at most seven days
    throw std::runtime_error(file.string() + ": tls.session_lifetime_s must be at most 604800 (seven days)");
  c.tls_cert = cert;
  c.tls_key = key;
  if (c.ca_key_type != "ec" && c.ca_key_type != "rsa")
    throw std::runtime_error(file.string() + ": tls.ca_key_type must be \"ec\" or \"rsa\"");
  c.plain_policy_file = plain_policy;
  return c;
}

endpoint_spec parse_endpoint(const std::string& s) {
  std::size_t colon = s.rfind(':');
  if (colon == std::string::npos || colon + 1 == s.size()) throw std::invalid_argument("expected host:port, got '" + s + "'");
  std::string host = s.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host.empty()) host = "::";
  unsigned long port;
  try {
    std::size_t used;
    port = std::stoul(s.substr(colon + 1), &used);
    if (used != s.size() - colon - 1 || port > 65535) throw std::invalid_argument("port");
  } catch (const std::exception&) {
    throw std::invalid_argument("bad port in '" + s + "'");
  }
  return {host, static_cast<std::uint16_t>(port)};
}

}  // namespace fleetcore::server
