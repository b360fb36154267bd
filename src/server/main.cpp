#include "api/admin_keys.hpp"
#include "auth/pki.hpp"
#include "cli/api_client.hpp"
#include "common/log.hpp"
#include "server/config.hpp"
#include "server/server.hpp"
#include "signer/signer_service.hpp"

#include <CLI/CLI.hpp>

#include <csignal>
#include <fstream>
#include <iostream>

int main(int argc, char** argv) {
  using namespace fleetcore;
  CLI::App app{"fleetcore: a self-hosted IoT platform speaking AWS IoT's protocols"};
  app.require_subcommand(1);

  auto* serve = app.add_subcommand("serve", "Run the platform (MQTT broker and its listeners)");
  std::string config_file, data_dir, storage, cluster_nats, node_id, endpoint_host, mqtt, mqtts, wss, metrics, api, log_level;
  std::optional<unsigned> workers;
  serve->add_option("-c,--config", config_file, "TOML configuration file")->check(CLI::ExistingFile);
  serve->add_option("--data-dir", data_dir, "Directory for the database, keys and certificates (default ./data)");
  serve->add_option("--storage", storage,
                    "Where the state lives: 'sqlite' (embedded, in the data directory; the default) or a "
                    "PostgreSQL URL postgresql://user@host:port/db");
  serve->add_option("--cluster-nats", cluster_nats,
                    "Cluster mode: the NATS servers the nodes talk through (nats://host:4222); needs a shared "
                    "PostgreSQL --storage");
  serve->add_option("--node-id", node_id, "This node's id in the cluster (default: the host name)");
  serve->add_option("--endpoint-host", endpoint_host,
                    "The devices' endpoint that DescribeEndpoint returns (a cluster's load balancer)");
  serve->add_option("--mqtt", mqtt, "Plain MQTT listener host:port, or 'off' (default 127.0.0.1:1883)");
  serve->add_option("--mqtts", mqtts, "MQTT over TLS listener host:port, or 'off' (default 0.0.0.0:8883)");
  serve->add_option("--wss", wss, "MQTT over secure WebSocket listener host:port, or 'off' (default 0.0.0.0:8443)");
  serve->add_option("--metrics", metrics, "HTTP /metrics listener host:port, or 'off' (default 127.0.0.1:9100)");
  serve->add_option("--api", api, "HTTPS control-plane API host:port, or 'off' (default 127.0.0.1:9443)");
  serve->add_option("--log-level", log_level, "trace, debug, info, warn, error");
  serve->add_option("--workers", workers, "I/O worker threads (default: one per core)");

  auto* cert = app.add_subcommand("cert", "Development certificates");
  cert->require_subcommand(1);
  auto* issue = cert->add_subcommand("issue", "Issue a client certificate signed by the built-in CA (register it, e.g. with RegisterCertificate, before it can connect)");
  std::string cn, out_dir, cert_data_dir = "./data";
  int days = 365;
  issue->add_option("--cn", cn, "Common name (the device's thing name / client id)")->required();
  issue->add_option("--out", out_dir, "Directory for <cn>.crt and <cn>.key")->required();
  issue->add_option("--data-dir", cert_data_dir, "The server's data directory (its tls/ holds the CA)");
  issue->add_option("--days", days, "Validity in days");

  auto* admin = app.add_subcommand("admin", "Administration of the control-plane API");
  admin->require_subcommand(1);
  auto* create_key = admin->add_subcommand("create-key", "Create an admin access key for SigV4-signed API requests");
  std::string key_data_dir = "./data";
  create_key->add_option("--data-dir", key_data_dir, "The server's data directory");

  auto* device = app.add_subcommand("device", "First steps with a device (through the running server's API)");
  device->require_subcommand(1);
  auto* device_create = device->add_subcommand(
      "create", "Create a thing with an ACTIVE certificate, the least-privilege thing policy, and write its files");
  std::string device_name, device_out, device_data_dir = "./data";
  device_create->add_option("--name", device_name, "Thing name (= MQTT client id)")->required();
  device_create->add_option("--out", device_out, "Directory for <name>.cert.pem, <name>.private.key, root-CA.crt")
      ->required();
  device_create->add_option("--data-dir", device_data_dir, "The running server's data directory");

  auto* telemetry = app.add_subcommand("telemetry", "The telemetry store (through the running server's API)");
  telemetry->require_subcommand(1);
  auto* telemetry_query = telemetry->add_subcommand(
      "query", "Run a Timestream query, e.g. 'SELECT * FROM \"db\".\"table\" WHERE time > ago(1h) LIMIT 10'");
  std::string query_text, query_data_dir = "./data";
  telemetry_query->add_option("query", query_text, "The query (Timestream SQL subset, docs/telemetry.md)")->required();
  telemetry_query->add_option("--data-dir", query_data_dir, "The running server's data directory");
  auto* bootstrap_cmd = app.add_subcommand("bootstrap", "The bootstrap flow: devices known by an identifier and a secret");
  bootstrap_cmd->require_subcommand(1);
  auto* bootstrap_register = bootstrap_cmd->add_subcommand(
      "register", "Register devices (one {\"deviceId\", \"secret\", \"parameters\"} per line) through the running server's API");
  std::string bootstrap_file, bootstrap_template, bootstrap_data_dir = "./data";
  bootstrap_register->add_option("--file", bootstrap_file, "Newline-delimited JSON")->required()->check(CLI::ExistingFile);
  bootstrap_register->add_option("--template", bootstrap_template, "The fleet provisioning template that provisions them")
      ->required();
  bootstrap_register->add_option("--data-dir", bootstrap_data_dir, "The running server's data directory");
  auto* signer_cmd = app.add_subcommand("signer", "Code signing for OTA updates");
  signer_cmd->require_subcommand(1);
  auto* signer_import = signer_cmd->add_subcommand(
      "import", "Import a code-signing certificate and its ECDSA P-256 key; prints the certificate ARN that "
                "signing profiles name (PutSigningProfile's signingMaterial.certificateArn)");
  std::string sign_cert, sign_key, signer_data_dir = "./data", signer_config;
  signer_import->add_option("--cert", sign_cert, "PEM certificate")->required()->check(CLI::ExistingFile);
  signer_import->add_option("--key", sign_key, "PEM private key (ECDSA P-256)")->required()->check(CLI::ExistingFile);
  signer_import->add_option("--data-dir", signer_data_dir, "The server's data directory");
  signer_import->add_option("-c,--config", signer_config, "The server's configuration file (its region and account)")
      ->check(CLI::ExistingFile);
  app.add_subcommand("version", "Print the version")->callback([] { std::cout << "fleetcore 0.1.0\n"; });

  CLI11_PARSE(app, argc, argv);

  try {
    if (*serve) {
      server::server_config cfg = config_file.empty() ? server::server_config{} : server::load_config(config_file);
      auto flag = [](std::string& field, const std::string& value) {
        if (!value.empty()) field = value == "off" ? "" : value;
      };
      if (!data_dir.empty()) cfg.data_dir = data_dir;
      if (!storage.empty()) cfg.storage = storage;
      if (!cluster_nats.empty()) cfg.cluster_nats = cluster_nats;
      if (!node_id.empty()) cfg.node_id = node_id;
      if (!endpoint_host.empty()) cfg.endpoint_host = endpoint_host;
      flag(cfg.mqtt, mqtt);
      flag(cfg.mqtts, mqtts);
      flag(cfg.wss, wss);
      flag(cfg.metrics, metrics);
      flag(cfg.api, api);
      if (!log_level.empty()) cfg.log_level = log_level;
      if (workers) cfg.workers = *workers;
      common::init_logging(cfg.log_level);
      std::signal(SIGPIPE, SIG_IGN);
      return server::serve(cfg);
    }
    if (*device_create) return cli::create_device(device_data_dir, device_name, device_out);
    if (*telemetry_query) return cli::telemetry_query(query_data_dir, query_text);
    if (*bootstrap_register) return cli::register_bootstrap(bootstrap_data_dir, bootstrap_file, bootstrap_template);
    if (*create_key) {
      std::filesystem::create_directories(key_data_dir);
      auto k = api::admin_keys(key_data_dir).create();
      std::cout << "{\"AccessKeyId\": \"" << k.id << "\", \"SecretAccessKey\": \"" << k.secret << "\"}\n";
      return 0;
    }
    if (*signer_import) {
      auto cfg = signer_config.empty() ? server::server_config{} : server::load_config(signer_config);
      auto read = [](const std::string& path) {
        std::ifstream f(path);
        return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
      };
      auto id = signer::signer_service::import_certificate(std::filesystem::path(signer_data_dir) / "signer",
                                                           read(sign_cert), read(sign_key));
      std::cout << "{\"CertificateArn\": \"arn:aws:acm:" << cfg.aws_region << ":" << cfg.aws_account_id
                << ":certificate/" << id << "\"}\n";
      return 0;
    }
    if (*issue) {
      auto pki = auth::ensure_dev_pki(std::filesystem::path(cert_data_dir) / "tls");
      auth::issue_client_cert(pki, cn, out_dir, days);
      std::cout << "wrote " << (std::filesystem::path(out_dir) / (cn + ".crt")).string() << ", "
                << (std::filesystem::path(out_dir) / (cn + ".key")).string() << " (CA: " << pki.ca_cert.string()
                << ")\n";
      return 0;
    }
  } catch (const std::exception& e) {
    std::cerr << "fleetcore: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
