#include "server/server.hpp"

#include "api/api_server.hpp"
#include "api/device_https.hpp"
#include "api/services.hpp"
#include "shadow/shadow_service.hpp"
#include "auth/pki.hpp"
#include "auth/policy_access.hpp"
#include "broker/broker.hpp"
#include "common/log.hpp"
#include "registry/registry_access.hpp"
#include "storage/sqlite_store.hpp"
#include "transport/http_server.hpp"
#include "transport/listener.hpp"
#include "transport/tls.hpp"

#include <boost/asio/signal_set.hpp>
#include <boost/asio/thread_pool.hpp>

#include <fcntl.h>
#include <fstream>
#include <sys/file.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

namespace fleetcore::server {

namespace {

using tcp = boost::asio::ip::tcp;

tcp::endpoint resolve(const std::string& spec) {
  auto e = parse_endpoint(spec);
  boost::system::error_code ec;
  auto addr = boost::asio::ip::make_address(e.host == "localhost" ? "127.0.0.1" : e.host, ec);
  if (ec) throw std::invalid_argument("bad address '" + e.host + "'");
  return {addr, e.port};
}

std::string to_string(const tcp::endpoint& ep) {
  auto a = ep.address();
  return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(ep.port());
}

/// One fleetcore per data directory: a second one would corrupt nothing (SQLite locks) but would
/// fight over ports and sessions, so refuse early with a clear message.
int lock_data_dir(const std::filesystem::path& dir) {
  auto path = dir / "LOCK";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0 || ::flock(fd, LOCK_EX | LOCK_NB) != 0)
    throw std::runtime_error("data directory " + dir.string() + " is in use by another fleetcore");
  return fd;
}

}  // namespace

int serve(const server_config& cfg) {
  std::filesystem::create_directories(cfg.data_dir);
  ::chmod(cfg.data_dir.c_str(), 0700);
  int lock_fd = lock_data_dir(cfg.data_dir);

  // The built-in CA issues device certificates (CreateKeysAndCertificate) and, unless configured,
  // the server certificate of the TLS listeners and the API.
  auto pki = auth::ensure_dev_pki(cfg.data_dir / "tls", cfg.ca_key_type);
  transport::tls_files tls{cfg.tls_cert.empty() ? pki.server_cert : cfg.tls_cert,
                           cfg.tls_key.empty() ? pki.server_key : cfg.tls_key, pki.ca_cert};

  storage::sqlite_store store(cfg.data_dir / "db");
  common::system_clock_source clock;
  registry::settings rs{cfg.aws_region, cfg.aws_account_id, cfg.endpoint_host, cfg.certificate_days,
                        cfg.thing_type_delete_wait_s};
  registry::registry reg(rs, store, clock, auth::read_cert(pki.ca_cert), auth::read_key(pki.ca_key));

  // Certificate clients (mqtts, wss) are authorized by the policies of their certificate and thing.
  // Plain-TCP clients have none: a registry policy named in the configuration, a policy file, or
  // (development) everything.
  registry::registry_access cert_policy(reg);
  auth::allow_all_policy allow_all;
  auth::listener_access policy(allow_all);
  policy.set("mqtts", cert_policy);
  policy.set("wss", cert_policy);
  std::optional<auth::policy_access> plain_policy;
  if (!cfg.plain_policy.empty()) {
    plain_policy.emplace(cfg.aws_region, cfg.aws_account_id, std::vector<auth::policy_document>{});
    // Replaced only when the policy's default version changes: other registry changes keep the plain
    // connections' cached decisions.
    auto refresh = [&reg, &plain_policy, name = cfg.plain_policy,
                    current = std::shared_ptr<const auth::policy_document>()]() mutable {
      auto p = reg.policy_named(name);
      if (p == current) return;
      current = p;
      std::vector<auth::policy_document> docs;
      if (p) docs.push_back(*p);
      plain_policy->set_policies(std::move(docs));
    };
    refresh();
    reg.changed = refresh;
    if (!reg.policy_named(cfg.plain_policy))
      FC_LOG_WARN("auth.plain_policy_missing", "policy={} note=\"plain-TCP clients are denied until it is created\"",
                  cfg.plain_policy);
    policy.set("mqtt", *plain_policy);
  } else if (!cfg.plain_policy_file.empty()) {
    std::ifstream in(cfg.plain_policy_file);
    if (!in) throw std::runtime_error("cannot read " + cfg.plain_policy_file.string());
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::string error;
    auto doc = auth::policy_document::parse(text, error);
    if (!doc) throw std::runtime_error(cfg.plain_policy_file.string() + ": MalformedPolicy: " + error);
    plain_policy.emplace(cfg.aws_region, cfg.aws_account_id, std::vector<auth::policy_document>{std::move(*doc)});
    policy.set("mqtt", *plain_policy);
  } else if (!cfg.mqtt.empty()) {
    FC_LOG_WARN("auth.allow_all", "listener=mqtt note=\"no plain_policy: every action of plain-TCP clients is allowed\"");
  }
  unsigned workers = cfg.workers ? cfg.workers : std::max(1u, std::thread::hardware_concurrency());
  broker::broker b(cfg.broker, clock, store, policy, workers);
  b.load();
  shadow::limits shadow_limits;
  shadow_limits.max_document_bytes = cfg.shadow_max_document_bytes;
  shadow_limits.max_inflight_per_client = cfg.shadow_max_inflight_per_client;
  shadow::shadow_service shadows(store, clock, shadow_limits);
  shadows.publish = [&b](std::string topic, std::string payload) {
    b.publish_event(std::move(topic), std::move(payload), 1);
  };
  b.add_hook(shadows);

  common::registry metrics;
  b.register_metrics(metrics);
  store.register_metrics(metrics);
  reg.register_metrics(metrics);
  shadows.register_metrics(metrics);
  cert_policy.register_metrics(metrics);
  if (plain_policy) plain_policy->register_metrics(metrics);

  reg.publish_event = [&b](std::string topic, std::string payload) { b.publish_event(std::move(topic), std::move(payload)); };
  reg.certificate_disabled = [&b](const std::string& id) {
    b.disconnect_if([id](const auth::connection_info& c) { return c.certificate_id == id; },
                    mqtt::reason_code::not_authorized);
  };
  transport::client_cert_check check = [&reg](X509* leaf) {
    auto verdict = reg.check_client_certificate(leaf);
    if (verdict != registry::cert_check::accepted)
      FC_LOG_INFO("tls.client_refused", "certificate={} reason={}", auth::certificate_id(leaf).substr(0, 12),
                  registry::to_string(verdict));
    return verdict == registry::cert_check::accepted;
  };

  api::admin_keys keys(cfg.data_dir);
  std::optional<boost::asio::thread_pool> control_pool;
  std::unique_ptr<api::api_server> api_server;
  std::optional<boost::asio::ssl::context> api_tls;
  if (!cfg.api.empty()) {
    if (keys.ensure_initial(cfg.aws_region))
      FC_LOG_INFO("api.admin_key_created", "credentials={}", (cfg.data_dir / "aws-credentials").string());
    api_tls.emplace(transport::make_https_context(tls));
    api_server = std::make_unique<api::api_server>(resolve(cfg.api), &*api_tls, keys, clock);
    api_server->serve("iot", api::control_plane(reg));
    api_server->serve("iotdata", api::data_plane(shadows, b));
    api_server->register_metrics(metrics);
    reg.defer = [&api_server](std::function<void()> fn) { api_server->post(std::move(fn)); };
  } else {
    // Without the API thread, registry changes (JIT registration) run on a control thread of their own.
    control_pool.emplace(1);
    reg.defer = [&control_pool](std::function<void()> fn) { boost::asio::post(*control_pool, std::move(fn)); };
  }

  std::optional<boost::asio::ssl::context> tls_ctx;
  if (!cfg.mqtts.empty() || !cfg.wss.empty()) tls_ctx.emplace(transport::make_server_context(tls, &check));

  std::vector<std::unique_ptr<transport::listener>> listeners;
  auto add = [&](const std::string& spec, transport::listener_kind kind) {
    if (spec.empty()) return;
    listeners.push_back(std::make_unique<transport::listener>(
        b, kind, resolve(spec), kind == transport::listener_kind::mqtt ? nullptr : &*tls_ctx));
  };
  add(cfg.mqtt, transport::listener_kind::mqtt);
  add(cfg.mqtts, transport::listener_kind::mqtts);
  add(cfg.wss, transport::listener_kind::wss);
  // Devices' HTTPS requests (publish, shadows) on the wss port, authorized by their certificate;
  // answered on the API thread, which may wait for a commit.
  api::api_server::handler device_data_plane = api::data_plane(shadows, b);
  if (!cfg.wss.empty() && api_server) {
    listeners.back()->set_https_handler(
        [&](transport::https_request r, const auth::connection_info& peer, std::function<void(transport::https_reply)> reply) {
          api_server->post([&, r = std::move(r), peer = peer, reply = std::move(reply)] {
            auto res = api::device_request(cert_policy, device_data_plane, r.method, r.target, r.headers,
                                           r.body, peer);
            reply({res.status, std::move(res.body), std::move(res.error_type)});
          });
        });
  }

  std::unique_ptr<transport::http_server> http;
  if (!cfg.metrics.empty()) {
    http = std::make_unique<transport::http_server>(
        b.workers().front()->io(), resolve(cfg.metrics), [&metrics](const std::string& method, const std::string& target) {
          transport::http_reply r;
          if (method != "GET") return transport::http_reply{405, "text/plain", "method not allowed\n"};
          if (target == "/metrics") {
            r.content_type = "text/plain; version=0.0.4; charset=utf-8";
            r.body = metrics.render();
          } else if (target == "/healthz") {
            r.body = "ok\n";
          } else {
            r = {404, "text/plain", "not found\n"};
          }
          return r;
        });
  }

  if (!cfg.mqtt.empty() && !resolve(cfg.mqtt).address().is_loopback())
    FC_LOG_WARN("listener.insecure", "proto=mqtt addr={} note=\"plain TCP without authentication is for local development\"",
                cfg.mqtt);

  b.start();
  shadows.start();
  // Where each listener ended up (port 0 picks a free one): logged, and written for tools and tests.
  std::string json = "{";
  for (auto& l : listeners) {
    l->start();
    auto ep = to_string(l->local_endpoint());
    FC_LOG_INFO("listener.ready", "proto={} addr={}", transport::to_string(l->kind()), ep);
    json += fmt::format("{}\"{}\":\"{}\"", json.size() > 1 ? "," : "", transport::to_string(l->kind()), ep);
  }
  if (api_server) {
    api_server->start();
    auto ep = to_string(api_server->local_endpoint());
    FC_LOG_INFO("listener.ready", "proto=api addr={}", ep);
    json += fmt::format("{}\"api\":\"{}\"", json.size() > 1 ? "," : "", ep);
  }
  if (http) {
    http->start();
    auto ep = to_string(http->local_endpoint());
    FC_LOG_INFO("listener.ready", "proto=metrics addr={}", ep);
    json += fmt::format("{}\"metrics\":\"{}\"", json.size() > 1 ? "," : "", ep);
  }
  json += "}\n";
  {
    auto tmp = cfg.data_dir / "listeners.json.tmp";
    std::ofstream(tmp) << json;
    std::filesystem::rename(tmp, cfg.data_dir / "listeners.json");
  }
  FC_LOG_INFO("server.ready", "data_dir={} workers={}", cfg.data_dir.string(), workers);

  boost::asio::io_context signals_io;
  boost::asio::signal_set signals(signals_io, SIGINT, SIGTERM);
  signals.async_wait([](const boost::system::error_code&, int sig) {
    FC_LOG_INFO("server.stopping", "signal={}", sig);
  });
  signals_io.run();

  for (auto& l : listeners) l->stop();
  if (http) http->stop();
  if (api_server) api_server->stop();
  if (control_pool) control_pool->join();
  shadows.stop();
  b.stop();
  std::filesystem::remove(cfg.data_dir / "listeners.json");
  FC_LOG_INFO("server.stopped", "");
  ::close(lock_fd);
  return 0;
}

}  // namespace fleetcore::server
