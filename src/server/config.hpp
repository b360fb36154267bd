#pragma once
#include "broker/config.hpp"
#include "provisioning/module.hpp"
#include "rules/settings.hpp"
#include "telemetry/store.hpp"
#include "transport/acceptor.hpp"

#include <filesystem>
#include <optional>
#include <string>

namespace fleetcore::server {

/// Everything `fleetcore serve` needs. Read from a TOML file (docs/configuration.md), then flags.
struct server_config {
  std::filesystem::path data_dir = "./data";
  /// Where the state lives: empty (or "sqlite") for the embedded SQLite database in <data_dir>/db,
  /// or a PostgreSQL URL (`postgresql://user@host/db`) or libpq conninfo prefixed with `postgresql:`.
  std::string storage;
  std::string log_level = "info";
  /// Cluster mode: the NATS servers the nodes talk through (empty: a single node), this node's id
  /// (default: the host name) and the cluster's name (its NATS subjects are under fc.<name>).
  std::string cluster_nats;
  std::string node_id;
  std::string cluster_name = "fleetcore";
  unsigned workers = 0;  // 0 = one per core
  // Listener addresses as host:port; empty disables the listener. `localhost` binds 127.0.0.1 and
  // ::1; `[::]` every interface, IPv6 and IPv4 on one socket (see transport::bind_addresses).
  std::string mqtt = "localhost:1883";     // plain TCP, for local development
  std::string mqtts = "[::]:8883";         // TLS, client certificate required
  std::string wss = "[::]:8443";           // MQTT over WebSocket over TLS, path /mqtt
  std::string metrics = "localhost:9100";  // HTTP /metrics and /healthz
  std::string api = "localhost:9443";      // HTTPS control-plane API (SigV4)
  /// Connections of the device listeners that have not authenticated yet.
  transport::admission::limits admission;
  // Server certificate and key; empty = issued by the built-in CA in <data_dir>/tls.
  std::filesystem::path tls_cert, tls_key;
  /// How long a device may resume its TLS session (a ticket's lifetime, and how often the keys that seal
  /// tickets rotate); 0 turns resumption off.
  std::uint32_t tls_session_lifetime_s = 86400;
  /// Whether the keys that seal tickets are kept in <data_dir>/tls/ticket-keys (0600) so that tickets
  /// survive a restart, or in memory only.
  bool tls_persist_ticket_keys = true;
  /// Key type of the built-in CA when it is first created: "ec" (P-256) or "rsa".
  std::string ca_key_type = "ec";
  /// Validity of certificates the built-in CA issues (CreateKeysAndCertificate, from CSR).
  int certificate_days = 365;
  /// AWS waits 5 minutes between DeprecateThingType and DeleteThingType.
  double thing_type_delete_wait_s = 300;
  /// Host name DescribeEndpoint returns.
  std::string endpoint_host = "localhost";
  /// AWS-shaped identifiers used in ARNs.
  std::string aws_region = "us-east-1";
  std::string aws_account_id = "000000000000";
  /// What authorizes clients of the plain `mqtt` listener, which have no certificate: the registry
  /// policy named `plain_policy`, else the policy document in `plain_policy_file`, else everything
  /// is allowed (development default).
  std::string plain_policy;
  std::filesystem::path plain_policy_file;
  /// Device shadow limits (AWS's by default).
  std::size_t shadow_max_document_bytes = 8 * 1024;
  int shadow_max_inflight_per_client = 10;
  rules::settings rules;
  provisioning::settings provisioning;
  telemetry::settings telemetry;
  broker::config broker;
};

/// Reads a TOML configuration file over the defaults. Throws std::runtime_error with the file, line
/// and key on a syntax error, an unknown key or a value of the wrong type.
server_config load_config(const std::filesystem::path& file);

struct endpoint_spec {
  std::string host;
  std::uint16_t port;
};
/// Parses "host:port" or "[v6]:port"; an empty host is "::" (every interface). Throws
/// std::invalid_argument.
endpoint_spec parse_endpoint(const std::string& s);

}  // namespace fleetcore::server
