#include "server/server.hpp"

#include "api/api_server.hpp"
#include "api/device_https.hpp"
#include "api/registry_api.hpp"
#include "broker/publish_api.hpp"
#include "events/module.hpp"
#include "platform/service.hpp"
#include "jobs/module.hpp"
#include "objects/s3_api.hpp"
#include "ota/module.hpp"
#include "provisioning/module.hpp"
#include "rules/engine.hpp"
#include "telemetry/module.hpp"
#include "shadow/module.hpp"
#include "auth/pki.hpp"
#include "auth/policy_access.hpp"
#include "broker/broker.hpp"
#include "cluster/nats_link.hpp"
#include "common/log.hpp"
#include "registry/registry_access.hpp"
#include "storage/postgres_store.hpp"
#include "storage/sqlite_store.hpp"
#include "transport/http_server.hpp"
#include "transport/listener.hpp"
#include "transport/tls.hpp"

#include <boost/asio/signal_set.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/json.hpp>
#include <fmt/ranges.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <functional>
#include <iterator>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

namespace fleetcore::server {

namespace {

using tcp = boost::asio::ip::tcp;

/// The addresses and port of a listener spec (`host:port`, `[v6]:port`).
struct listen_spec {
  std::vector<transport::bind_address> addrs;
  std::uint16_t port;
};
listen_spec resolve(const std::string& spec) {
  auto e = parse_endpoint(spec);
  return {transport::bind_addresses(e.host), e.port};
}

/// "addr1 addr2" for the log, ["addr1","addr2"] for listeners.json.
std::vector<std::string> addresses(const std::vector<tcp::endpoint>& eps) {
  std::vector<std::string> out;
  for (const auto& ep : eps) out.push_back(transport::to_string(ep));
  return out;
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

/// The data directory holds keys and secrets. Created 0700 when fleetcore creates it; an existing
/// one is never chmod-ed (it may be shared, or a symlink), but one that others may write to is
/// refused: they could replace the CA, the database or the admin keys.
void prepare_data_dir(const std::filesystem::path& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    if (dir.has_parent_path() && !dir.parent_path().empty()) std::filesystem::create_directories(dir.parent_path());
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
      throw std::runtime_error("cannot create data directory " + dir.string() + ": " + std::strerror(errno));
    return;
  }
  if (!S_ISDIR(st.st_mode)) throw std::runtime_error("data directory " + dir.string() + " is not a directory");
  if (st.st_mode & (S_IWGRP | S_IWOTH))
    throw std::runtime_error(fmt::format("data directory {} is writable by other users (mode {:04o}): use a "
                                         "directory of its own, e.g. a new one that fleetcore creates 0700",
                                         dir.string(), st.st_mode & 07777));
  if (st.st_mode & (S_IRWXG | S_IRWXO))
    FC_LOG_WARN("server.data_dir_shared", "dir={} mode={:04o} note=\"readable by other users; keys inside are 0600\"",
                dir.string(), st.st_mode & 07777);
}

/// Every device connection is a descriptor: take the hard limit, not the default 1024 soft limit.
void raise_descriptor_limit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  if (rl.rlim_cur < rl.rlim_max) {
    rlim_t before = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) rl.rlim_cur = before;
  }
  FC_LOG_INFO("server.descriptors", "limit={}", static_cast<std::uint64_t>(rl.rlim_cur));
}

/// The host name as a node id: letters, digits, '-' and '_' ("node-1.example" → "node-1-example").
std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof(buf) - 1) != 0 || !buf[0]) return "fleetcore";
  std::string id(buf);
  for (auto& c : id)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) c = '-';
  return id.substr(0, 64);
}

/// The embedded SQLite database, or PostgreSQL when `storage` is a PostgreSQL URL or conninfo.
std::unique_ptr<storage::group_commit_store> open_store(const server_config& cfg) {
  const std::string& s = cfg.storage;
  if (s.empty() || s == "sqlite") return std::make_unique<storage::sqlite_store>(cfg.data_dir / "db");
  if (s.starts_with("postgresql://") || s.starts_with("postgres://")) {
    auto store = std::make_unique<storage::postgres_store>(s);
    FC_LOG_INFO("server.storage", "backend=postgresql");  // not the URL: it may hold a password
    return store;
  }
  if (s.starts_with("postgresql:")) return std::make_unique<storage::postgres_store>(s.substr(11));
  throw std::runtime_error("storage: '" + s + "' is neither 'sqlite' nor a postgresql:// URL");
}

}  // namespace

int serve(const server_config& cfg) {
  prepare_data_dir(cfg.data_dir);
  raise_descriptor_limit();
  int lock_fd = lock_data_dir(cfg.data_dir);

  // The built-in CA issues device certificates (CreateKeysAndCertificate) and, unless configured,
  // the server certificate of the TLS listeners and the API.
  auto pki = auth::ensure_dev_pki(cfg.data_dir / "tls", cfg.ca_key_type);
  transport::tls_files tls{cfg.tls_cert.empty() ? pki.server_cert : cfg.tls_cert,
                           cfg.tls_key.empty() ? pki.server_key : cfg.tls_key, pki.ca_cert};

  auto owned_store = open_store(cfg);
  auto& store = *owned_store;
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
    reg.observe([refresh](const std::vector<registry::change>&) mutable { refresh(); });
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
  const std::string node = cfg.node_id.empty() ? host_name() : cfg.node_id;
  auto broker_cfg = cfg.broker;
  if (!cfg.cluster_nats.empty()) broker_cfg.node_id = node;
  broker::broker b(broker_cfg, clock, store, policy, workers);
  // Cluster mode: the other nodes share the PostgreSQL database and talk through NATS.
  std::unique_ptr<cluster::nats_link> link;
  if (!cfg.cluster_nats.empty()) {
    if (!cfg.storage.starts_with("postgres"))
      throw std::runtime_error("cluster mode (cluster.nats) needs the nodes' shared PostgreSQL storage (--storage postgresql://...)");
    link = std::make_unique<cluster::nats_link>(cluster::config{cfg.cluster_nats, cfg.cluster_name, node}, b);
    b.set_cluster(link.get());
  }
  b.load();
  common::registry metrics;
  b.register_metrics(metrics);
  if (link) link->register_metrics(metrics);
  metrics.add_gauge_fn([] { return 1.0; }, "fleetcore_node_info", fmt::format("node=\"{}\"", node),
                       "This node's id (cluster.node_id, by default the host name).");
  store.register_metrics(metrics);
  reg.register_metrics(metrics);
  cert_policy.register_metrics(metrics);
  if (plain_policy) plain_policy->register_metrics(metrics);
  // In a cluster, registry changes made on any node apply on every node (its revocations disconnect
  // the devices here; its policies authorize here), on the control thread like local ones.
  if (link)
    reg.replicate = [&link](const std::vector<storage::operation>& writes) { link->publish_documents(writes); };
  // A revoked or deactivated certificate loses its connections at once, on every listener.
  reg.observe([&b](const std::vector<registry::change>& changes) {
    for (const auto& c : changes)
      if (const auto* d = std::get_if<registry::certificate_disabled>(&c))
        b.disconnect_if([id = d->id](const auth::connection_info& conn) { return conn.certificate_id == id; },
                        mqtt::reason_code::not_authorized);
  });

  // The services, in order: each attaches itself to the core (hooks, observers, metrics) and names
  // the operations it answers. A new service is one line here.
  platform::core core{clock, store, reg, b, metrics, cfg.data_dir};
  shadow::limits shadow_limits;
  shadow_limits.max_document_bytes = cfg.shadow_max_document_bytes;
  shadow_limits.max_inflight_per_client = cfg.shadow_max_inflight_per_client;
  auto shadows = std::make_unique<shadow::module>(core, shadow_limits);
  auto& shadow_service = shadows->shadows();
  // Shadows are shared in a cluster too: each change a compare-and-set in the store, then sent to the others.
  if (link)
    shadow_service.replicate = [&link](const std::vector<storage::operation>& writes) { link->publish_documents(writes); };
  rules::shadow_reader read_shadow = [&s = shadow_service](std::string_view thing, std::string_view name) {
    auto r = s.call(shadow::operation::get, std::string(thing), std::string(name), {}).get();
    boost::system::error_code ec;
    auto doc = r.status == 200 ? boost::json::parse(r.body, ec) : boost::json::value();
    return !ec && doc.is_object() ? std::optional<boost::json::value>(std::move(doc)) : std::nullopt;
  };
  std::vector<std::unique_ptr<platform::service>> services;
  services.push_back(std::move(shadows));
  services.push_back(std::make_unique<events::module>(core));
  auto telemetry = std::make_unique<telemetry::module>(core, cfg.telemetry);
  auto& telemetry_store = telemetry->store();
  services.push_back(std::move(telemetry));
  auto rules_engine = std::make_unique<rules::engine>(core, cfg.rules, std::move(read_shadow), &telemetry_store);
  auto& destinations = rules_engine->rule_destinations();
  if (link) {
    // What another node committed goes to its owner here: shadows, rules and destinations, or the
    // registry (on its control thread). Rules and destinations changed here go to the others.
    auto& rules = *rules_engine;
    auto& s = shadow_service;
    rules.set_replicate([&link](const std::vector<storage::operation>& writes) { link->publish_documents(writes); });
    link->on_documents = [&reg, &s, &rules](std::vector<storage::operation> writes) {
      const auto kind_of = [](const storage::operation& o) -> std::string_view {
        if (const auto* put = std::get_if<storage::op::put_document>(&o)) return put->doc.kind;
        if (const auto* del = std::get_if<storage::op::delete_document>(&o)) return del->kind;
        return {};
      };
      std::vector<storage::operation> shadow_writes, registry_writes;
      for (auto& w : writes) {
        const auto kind = kind_of(w);
        if (kind == shadow::shadow_service::document_kind)
          shadow_writes.push_back(std::move(w));
        else if (rules::engine::replicated_kind(kind))
          rules.apply_replica(w);
        else
          registry_writes.push_back(std::move(w));
      }
      if (!shadow_writes.empty()) s.apply_replica(std::move(shadow_writes));
      if (!registry_writes.empty()) reg.defer([&reg, w = std::move(registry_writes)] { reg.apply_replica(w); });
    };
    // A gone node's rule inbox entries run here when this node is its heir.
    link->on_heir = [&rules](const std::string& gone) { rules.inherit(gone); };
  }
  services.push_back(std::move(rules_engine));
  // The object store is made with the api listener, below; jobs reach it through these links.
  std::unique_ptr<objects::s3_api> s3;
  const objects::links object_links = objects::s3_api::links_to(s3);
  auto jobs_module = std::make_unique<jobs::module>(core, jobs::settings{}, object_links);
  auto& jobs_service = jobs_module->service();
  services.push_back(std::move(jobs_module));
  // OTA updates are built on the API thread after CreateOTAUpdate answers.
  std::unique_ptr<api::api_server> api_server;
  services.push_back(std::make_unique<ota::module>(core, object_links, jobs_service, [&api_server](std::function<void()> fn) {
    if (api_server) api_server->post(std::move(fn));
  }));
  auto provisioning_module = std::make_unique<provisioning::module>(core, cfg.provisioning, object_links);
  auto& bootstrap = provisioning_module->bootstrap();
  services.push_back(std::move(provisioning_module));

  transport::client_cert_check check = [&reg](X509* leaf) {
    auto verdict = reg.check_client_certificate(leaf);
    if (verdict != registry::cert_check::accepted)
      FC_LOG_INFO("tls.client_refused", "certificate={} reason={}", auth::certificate_id(leaf).substr(0, 12),
                  registry::to_string(verdict));
    return verdict == registry::cert_check::accepted;
  };

  api::admin_keys keys(cfg.data_dir);
  std::optional<boost::asio::thread_pool> control_pool;
  std::optional<boost::asio::ssl::context> api_tls;
  if (!cfg.api.empty()) {
    if (keys.ensure_initial(cfg.aws_region))
      FC_LOG_INFO("api.admin_key_created", "credentials={}", (cfg.data_dir / "aws-credentials").string());
    api_tls.emplace(transport::make_https_context(tls));
    auto where = resolve(cfg.api);
    api_server = std::make_unique<api::api_server>(where.addrs, where.port, &*api_tls, keys, clock);
    api_server->require_region(cfg.aws_region);
    api_server->serve(api::registry_operations(reg));
    api_server->serve(broker::publish_operations(b));
    for (auto& svc : services) api_server->serve(svc->operations());
    api_server->serve_capability_url("/confirmdestination/", [&destinations](std::string_view token) {
      return destinations.enable_by_url(token);
    });
    // fleetcore's bootstrap flow: the admin registers devices (signed), devices get certificates (unsigned).
    api_server->serve_extension("/fleetcore/bootstrap-identities", true,
                                [&bootstrap](std::string_view method, std::string_view rest, std::string_view body,
                                             std::string_view) { return bootstrap.admin(method, rest, body); });
    api_server->serve_extension("/fleetcore/bootstrap/certificate", false,
                                [&bootstrap](std::string_view method, std::string_view rest, std::string_view body,
                                             std::string_view peer) {
                                  if (!rest.empty())
                                    return common::aws_response::not_found("no such fleetcore bootstrap endpoint");
                                  return bootstrap.device(method, body, peer);
                                });
    // The object store (S3 API) answers the requests signed for s3 on the same listener.
    s3 = std::make_unique<objects::s3_api>(
        store, clock, [&keys](std::string_view id) { return keys.secret_of(id); }, cfg.data_dir / "objects",
        objects::s3_settings{cfg.aws_region});
    s3->load();
    s3->set_public_endpoint(fmt::format("{}:{}", cfg.endpoint_host.empty() ? "localhost" : cfg.endpoint_host,
                                        api_server->local_endpoints().front().port()));
    s3->register_metrics(metrics);
    api_server->serve_streams(
        [](std::string_view, std::string_view target, const api::api_server::head_view& headers) {
          return objects::s3_api::is_s3(target, headers);
        },
        [&s3](std::shared_ptr<common::http_exchange> x) { s3->handle(std::move(x)); });
    api_server->register_metrics(metrics);
    reg.defer = [&api_server](std::function<void()> fn) {
      if (api_server) api_server->post(std::move(fn));  // none once the server is going away
    };
  } else {
    // Without the API thread, registry changes (JIT registration) run on a control thread of their own.
    control_pool.emplace(1);
    reg.defer = [&control_pool](std::function<void()> fn) { boost::asio::post(*control_pool, std::move(fn)); };
  }

  std::optional<transport::session_tickets> tickets;
  if (cfg.tls_session_lifetime_s > 0) {
    tickets.emplace(clock, std::chrono::seconds(cfg.tls_session_lifetime_s), check,
                    cfg.tls_persist_ticket_keys ? cfg.data_dir / "tls" / "ticket-keys" : std::filesystem::path());
    tickets->register_metrics(metrics);
  }
  std::optional<boost::asio::ssl::context> tls_ctx;
  if (!cfg.mqtts.empty() || !cfg.wss.empty())
    tls_ctx.emplace(transport::make_server_context(tls, &check, tickets ? &*tickets : nullptr));

  transport::admission admission(cfg.admission);
  admission.register_metrics(metrics);
  std::vector<std::unique_ptr<transport::listener>> listeners;
  auto add = [&](const std::string& spec, transport::listener_kind kind) {
    if (spec.empty()) return static_cast<transport::listener*>(nullptr);
    auto where = resolve(spec);
    listeners.push_back(std::make_unique<transport::listener>(
        b, kind, where.addrs, where.port, kind == transport::listener_kind::mqtt ? nullptr : &*tls_ctx, admission));
    listeners.back()->register_metrics(metrics);
    return listeners.back().get();
  };
  add(cfg.mqtt, transport::listener_kind::mqtt);
  add(cfg.mqtts, transport::listener_kind::mqtts);
  auto* wss = add(cfg.wss, transport::listener_kind::wss);
  // Devices' HTTPS requests (publish, shadows) on the wss port, authorized by their certificate;
  // answered on the API thread, which may wait for a commit.
  if (wss && api_server) {
    wss->set_https_handler(
        [&](transport::https_request r, const auth::connection_info& peer, std::function<void(transport::https_reply)> reply) {
          api_server->post([&, r = std::move(r), peer = peer, reply = std::move(reply)] {
            reply(api::device_request(cert_policy, api_server->operations(), r.method, r.target, r.headers, r.body,
                                      peer));
          });
        });
  }

  std::atomic<bool> listening{false}, draining{false};
  std::function<std::string()> not_ready = [&]() -> std::string {
    if (draining) return "draining";
    if (!listening) return "starting";
    if (link) return link->problem();
    return {};
  };
  std::unique_ptr<transport::http_server> http;
  if (!cfg.metrics.empty()) {
    auto where = resolve(cfg.metrics);
    http = std::make_unique<transport::http_server>(
        b.workers().front()->io(), where.addrs, where.port, [&metrics, &not_ready](const std::string& method, const std::string& target) {
          transport::http_reply r;
          if (method != "GET") return transport::http_reply{405, "text/plain", "method not allowed\n"};
          if (target == "/metrics") {
            r.content_type = "text/plain; version=0.0.4; charset=utf-8";
            r.body = metrics.render();
          } else if (target == "/healthz") {
            r.body = "ok\n";
          } else if (target == "/readyz") {
            // For a load balancer: this node takes devices (its listeners are up, it is not draining,
            // and in a cluster it is connected to NATS).
            auto why = not_ready();
            if (!why.empty()) r = {503, "text/plain", why + "\n"};
            else r.body = "ready\n";
          } else {
            r = {404, "text/plain", "not found\n"};
          }
          return r;
        });
  }

  if (!cfg.mqtt.empty()) {
    for (const auto& a : resolve(cfg.mqtt).addrs)
      if (!a.address.is_loopback())
        FC_LOG_WARN("listener.insecure",
                    "proto=mqtt addr={} note=\"plain TCP without authentication is for local development\"", cfg.mqtt);
  }

  b.start();
  if (link) link->start();
  for (auto& svc : services) svc->start();
  // Where each listener ended up (port 0 picks a free one, the same on all of a listener's
  // addresses): logged, and written for tools and tests as {"proto": "first address", ...,
  // "addresses": {"proto": [every address], ...}}.
  boost::json::object first, all;
  auto ready = [&](std::string_view proto, const std::vector<tcp::endpoint>& eps) {
    auto list = addresses(eps);
    FC_LOG_INFO("listener.ready", "proto={} addr={}", proto, fmt::join(list, ","));
    first[proto] = list.front();
    boost::json::array a;
    for (auto& s : list) a.emplace_back(s);
    all[proto] = std::move(a);
  };
  for (auto& l : listeners) {
    l->start();
    ready(transport::to_string(l->kind()), l->local_endpoints());
  }
  if (api_server) {
    api_server->start();
    ready("api", api_server->local_endpoints());
    // The enableUrl of destination confirmations names this API (its certificate is for localhost
    // unless tls.cert says otherwise).
    destinations.set_api_url(fmt::format("https://{}:{}", cfg.endpoint_host.empty() ? "localhost" : cfg.endpoint_host,
                                         api_server->local_endpoints().front().port()));
  }
  if (http) {
    http->start();
    ready("metrics", http->local_endpoints());
  }
  first["addresses"] = std::move(all);
  listening = true;
  // The handler is installed before listeners.json announces readiness: a supervisor (or a test) that
  // sends SIGTERM as soon as it sees the file must get a clean stop, not the default action.
  boost::asio::io_context signals_io;
  boost::asio::signal_set signals(signals_io, SIGINT, SIGTERM);
  {
    auto tmp = cfg.data_dir / "listeners.json.tmp";
    std::ofstream(tmp) << boost::json::serialize(first) << "\n";
    std::filesystem::rename(tmp, cfg.data_dir / "listeners.json");
  }
  FC_LOG_INFO("server.ready", "data_dir={} workers={}", cfg.data_dir.string(), workers);

  signals.async_wait([](const boost::system::error_code&, int sig) {
    FC_LOG_INFO("server.stopping", "signal={}", sig);
  });
  signals_io.run();

  draining = true;
  for (auto& l : listeners) l->stop();
  if (http) http->stop();
  if (api_server) api_server->stop();
  if (control_pool) control_pool->join();
  for (auto it = services.rbegin(); it != services.rend(); ++it) (*it)->stop();
  // The devices' connections close first (they reconnect to the other nodes, which take their
  // sessions over from the store); then this node says goodbye.
  b.stop();
  if (link) link->stop();
  std::filesystem::remove(cfg.data_dir / "listeners.json");
  FC_LOG_INFO("server.stopped", "");
  ::close(lock_fd);
  return 0;
}

}  // namespace fleetcore::server
