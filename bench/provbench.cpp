// provbench: fleet provisioning by claim, end to end, devices per second (issue 14).
//
//   provbench --port P --ca ca.crt --claim-cert claim.crt --claim-key claim.key --template T
//             [--devices N] [--concurrency C] [--threads K] [--seconds S] [--first F] [--connect-only]
//
// N simulated devices, at most C in progress at once, spread over K client threads (one io_context
// each). Device k (k = F .. F+N-1), as the AWS IoT Device SDKs' fleet provisioning samples do:
//   1. mutual TLS with the claim certificate (one ssl::context shared by every device), MQTT 3.1.1
//      CONNECT as `prov-<k>`, SUBSCRIBE to `$aws/certificates/create/json/+` and
//      `$aws/provisioning-templates/T/provision/json/+` (SUBACK awaited);
//   2. PUBLISH QoS 1 `$aws/certificates/create/json` (empty), wait for `.../accepted`: certificateId,
//      certificatePem, privateKey, certificateOwnershipToken;
//   3. PUBLISH QoS 1 `$aws/provisioning-templates/T/provision/json` with the token and
//      `{"SerialNumber": "<k>"}`, wait for `.../accepted`: thingName; DISCONNECT;
//   4. a new TLS connection presenting the new certificate and key (set on that connection's SSL
//      object, from the same context), CONNECT as thingName: done when CONNACK's return code is 0.
// Latency is step 1's TCP connect to step 4's CONNACK; the median of each part is printed too
// (step_p50_ms: claim TLS, claim CONNECT, SUBSCRIBE, create, register, own TLS, own CONNECT). Any
// /rejected, refused CONNECT or SUBSCRIBE, I/O error or per-device timeout is a failure, the first
// ones printed on stderr with the reason.
// --connect-only is the reference: step 1's TLS connect + CONNECT/CONNACK with the claim certificate,
// then DISCONNECT, nothing else (what a reconnect alone costs).
//
// Bounded: no device starts after --seconds; devices still running then get --timeout more seconds
// and count as unfinished if they do not make it. Prints one line:
//   provision devices=N concurrency=C threads=K done=D failures=F unfinished=U not_started=M wall_s=W
//             devices_per_s=R p50_ms=.. p99_ms=.. client_cpu_ms_per_device=.. step_p50_ms=claim_tls:..,...
#include "mqtt/codec.hpp"

#include <CLI/CLI.hpp>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/json.hpp>
#include <boost/system/result.hpp>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
namespace ssl = asio::ssl;
namespace json = boost::json;
using tcp = asio::ip::tcp;
using clock_type = std::chrono::steady_clock;
using boost::system::error_code;
using namespace fleetcore;

namespace {

constexpr auto v311 = mqtt::protocol_version::v311;
constexpr std::uint32_t k_max_packet = 1 << 20;
constexpr std::size_t k_failures_printed = 20;

/// The steps of one device, timed separately (the end of each is the start of the next).
enum step : std::size_t {
  step_claim_tls,
  step_claim_connect,
  step_subscribe,
  step_create,
  step_register,
  step_own_tls,
  step_own_connect,
  k_steps
};
constexpr const char* k_step_names[k_steps] = {"claim_tls", "claim_connect", "subscribe", "create",
                                               "register", "own_tls", "own_connect"};

struct options {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8883;
  std::string ca, claim_cert, claim_key, template_name = "bench";
  std::size_t devices = 2000, concurrency = 64, threads = 1, first = 0;
  double seconds = 60, timeout = 30;
  bool connect_only = false;
};

/// What one lane (a coroutine provisioning devices one after another) counted. Touched only by its
/// thread until the threads are joined.
struct tally {
  std::uint64_t done = 0, failed = 0, unfinished = 0;
  std::vector<double> latency_ms;
  std::vector<double> step_ms[k_steps];
  clock_type::time_point last_done{};
};

/// What every lane reads, and the next device index they take from.
struct shared_run {
  const options& opt;
  tcp::endpoint endpoint;
  ssl::context& claim;
  clock_type::time_point deadline;
  std::atomic<std::size_t> next{0};
  std::atomic<std::size_t> printed{0};
};

void report_failure(shared_run& run, std::size_t k, const std::string& why) {
  if (run.printed.fetch_add(1, std::memory_order_relaxed) < k_failures_printed)
    std::fprintf(stderr, "device %zu: %s\n", k, why.c_str());
}

struct x509_free {
  void operator()(X509* x) const noexcept { X509_free(x); }
};
struct pkey_free {
  void operator()(EVP_PKEY* k) const noexcept { EVP_PKEY_free(k); }
};
struct bio_free {
  void operator()(BIO* b) const noexcept { BIO_free(b); }
};

/// An MQTT 3.1.1 client connection over TLS: packets out through the repo's encoder, in through its
/// decoder. One coroutine uses it at a time; `close` may come from the device's watchdog.
class connection {
 public:
  connection(const asio::any_io_executor& ex, ssl::context& ctx) : stream_(ex, ctx) {}

  SSL* native() { return stream_.native_handle(); }

  asio::awaitable<error_code> open(const tcp::endpoint& ep) {
    auto [ec] = co_await stream_.next_layer().async_connect(ep, asio::as_tuple(asio::use_awaitable));
    if (ec) co_return ec;
    stream_.next_layer().set_option(tcp::no_delay(true), ec);
    auto [hec] = co_await stream_.async_handshake(ssl::stream_base::client, asio::as_tuple(asio::use_awaitable));
    co_return hec;
  }

  asio::awaitable<error_code> send(const mqtt::packet& p) {
    out_.clear();
    mqtt::encode(p, v311, out_);
    auto [ec, n] = co_await asio::async_write(stream_, asio::buffer(out_), asio::as_tuple(asio::use_awaitable));
    co_return ec;
  }

  /// The next packet from the server; a QoS 1 PUBLISH is acknowledged before it is returned.
  asio::awaitable<boost::system::result<mqtt::packet>> receive() {
    for (;;) {
      if (len_ > 0) {
        auto d = mqtt::decode({in_.data(), len_}, v311, k_max_packet);
        if (d.state == mqtt::decode_result::status::error)
          co_return boost::system::errc::make_error_code(boost::system::errc::bad_message);
        if (d.state == mqtt::decode_result::status::ok) {
          std::memmove(in_.data(), in_.data() + d.consumed, len_ - d.consumed);
          len_ -= d.consumed;
          if (const auto* pub = std::get_if<mqtt::publish_packet>(&d.pkt); pub && pub->qos == 1) {
            mqtt::ack_packet ack;
            ack.packet_id = pub->packet_id;
            if (auto ec = co_await send(ack)) co_return ec;
          }
          co_return std::move(d.pkt);
        }
      }
      if (len_ == in_.size()) in_.resize(in_.size() * 2);
      auto [ec, n] = co_await stream_.async_read_some(asio::buffer(in_.data() + len_, in_.size() - len_),
                                                      asio::as_tuple(asio::use_awaitable));
      if (ec) co_return ec;
      len_ += n;
    }
  }

  /// Closes the socket at once (no TLS close_notify: the device is done or given up on).
  void close() {
    error_code ec;
    stream_.next_layer().close(ec);
  }

 private:
  ssl::stream<tcp::socket> stream_;
  std::vector<std::uint8_t> out_, in_ = std::vector<std::uint8_t>(4096);
  std::size_t len_ = 0;
};

/// The connection a device is using, closed by its watchdog when the device takes too long.
struct watched {
  std::optional<connection> conn;
  bool timed_out = false;
  clock_type::time_point ended[k_steps]{};

  void end(step s) { ended[s] = clock_type::now(); }
};

std::string describe(const error_code& ec, const watched& w) { return w.timed_out ? "timeout" : ec.message(); }

/// CONNECT as `client_id`; an empty string when CONNACK accepted it, else why not.
asio::awaitable<std::string> mqtt_connect(connection& c, const std::string& client_id, const watched& w) {
  mqtt::connect_packet p;
  p.version = v311;
  p.client_id = client_id;
  p.keep_alive = 60;
  if (auto ec = co_await c.send(p)) co_return "CONNECT: " + describe(ec, w);
  auto r = co_await c.receive();
  if (!r) co_return "CONNACK: " + describe(r.error(), w);
  const auto* ack = std::get_if<mqtt::connack_packet>(&*r);
  if (!ack) co_return "CONNACK expected, got packet " + std::to_string(r->index());
  if (ack->reason != mqtt::reason_code::success)
    co_return "CONNACK refused " + client_id + ": reason " + std::to_string(static_cast<int>(ack->reason));
  co_return std::string();
}

/// Waits for the answer on `<request>/accepted` or `<request>/rejected`, skipping PUBACKs; the
/// accepted payload as a JSON object, or the reason it is not one (a rejection's payload included).
using answer = boost::system::result<json::object, std::string>;
asio::awaitable<answer> await_answer(connection& c, const std::string& request, const watched& w) {
  for (;;) {
    auto r = co_await c.receive();
    if (!r) co_return request + ": " + describe(r.error(), w);
    const auto* pub = std::get_if<mqtt::publish_packet>(&*r);
    if (!pub) {
      if (std::holds_alternative<mqtt::ack_packet>(*r)) continue;
      co_return request + ": unexpected packet " + std::to_string(r->index());
    }
    if (pub->topic == request + "/rejected") co_return request + " rejected: " + pub->payload;
    if (pub->topic != request + "/accepted") continue;
    error_code ec;
    auto v = json::parse(pub->payload, ec);
    if (ec || !v.is_object()) co_return request + " accepted, but not a JSON object: " + pub->payload;
    co_return std::move(v.as_object());
  }
}

std::string member(const json::object& o, std::string_view name) {
  const auto* v = o.if_contains(name);
  return v && v->is_string() ? std::string(v->get_string()) : std::string();
}

/// Sets the certificate and private key a device was given on its connection's SSL object.
std::string use_identity(SSL* ssl, const std::string& cert_pem, const std::string& key_pem) {
  std::unique_ptr<BIO, bio_free> cb(BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size())));
  std::unique_ptr<X509, x509_free> cert(cb ? PEM_read_bio_X509(cb.get(), nullptr, nullptr, nullptr) : nullptr);
  std::unique_ptr<BIO, bio_free> kb(BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size())));
  std::unique_ptr<EVP_PKEY, pkey_free> key(kb ? PEM_read_bio_PrivateKey(kb.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!cert || !key) return "the new certificate or private key is not PEM";
  if (SSL_use_certificate(ssl, cert.get()) != 1 || SSL_use_PrivateKey(ssl, key.get()) != 1 ||
      SSL_check_private_key(ssl) != 1)
    return "the new certificate and private key do not go together";
  return {};
}

/// One device, end to end; an empty string when it is done, else why it failed.
asio::awaitable<std::string> provision_device(shared_run& run, std::size_t k, watched& w) {
  const options& o = run.opt;
  auto ex = co_await asio::this_coro::executor;
  w.conn.emplace(ex, run.claim);
  connection& claim = *w.conn;
  if (auto ec = co_await claim.open(run.endpoint)) co_return "claim TLS: " + describe(ec, w);
  w.end(step_claim_tls);
  if (auto why = co_await mqtt_connect(claim, "prov-" + std::to_string(k), w); !why.empty()) co_return why;
  w.end(step_claim_connect);
  if (o.connect_only) {
    co_await claim.send(mqtt::disconnect_packet{});
    claim.close();
    co_return std::string();
  }

  const std::string create = "$aws/certificates/create/json";
  const std::string provision = "$aws/provisioning-templates/" + o.template_name + "/provision/json";
  mqtt::subscribe_packet s;
  s.packet_id = 1;
  s.subscriptions.push_back({create + "/+", 1});
  s.subscriptions.push_back({provision + "/+", 1});
  if (auto ec = co_await claim.send(s)) co_return "SUBSCRIBE: " + describe(ec, w);
  for (;;) {
    auto r = co_await claim.receive();
    if (!r) co_return "SUBACK: " + describe(r.error(), w);
    const auto* ack = std::get_if<mqtt::suback_packet>(&*r);
    if (!ack) continue;
    for (auto rc : ack->reasons)
      if (static_cast<int>(rc) >= 0x80) co_return "SUBSCRIBE refused: reason " + std::to_string(static_cast<int>(rc));
    break;
  }
  w.end(step_subscribe);

  mqtt::publish_packet p;
  p.qos = 1;
  p.packet_id = 2;
  p.topic = create;
  if (auto ec = co_await claim.send(p)) co_return "PUBLISH create: " + describe(ec, w);
  auto made = co_await await_answer(claim, create, w);
  if (!made) co_return made.error();
  const std::string cert_pem = member(*made, "certificatePem"), key_pem = member(*made, "privateKey");
  const std::string token = member(*made, "certificateOwnershipToken");
  if (cert_pem.empty() || key_pem.empty() || token.empty())
    co_return "create accepted without certificatePem, privateKey or certificateOwnershipToken";
  w.end(step_create);

  p.packet_id = 3;
  p.topic = provision;
  p.payload = json::serialize(json::object{{"certificateOwnershipToken", token},
                                           {"parameters", json::object{{"SerialNumber", std::to_string(k)}}}});
  if (auto ec = co_await claim.send(p)) co_return "PUBLISH provision: " + describe(ec, w);
  auto registered = co_await await_answer(claim, provision, w);
  if (!registered) co_return registered.error();
  const std::string thing = member(*registered, "thingName");
  if (thing.empty()) co_return "provision accepted without thingName";
  w.end(step_register);
  co_await claim.send(mqtt::disconnect_packet{});
  claim.close();

  // The device's own identity from now on: same context, the new certificate on this SSL object.
  w.conn.emplace(ex, run.claim);
  if (w.timed_out) co_return "timeout";  // the watchdog fired between the two connections
  connection& own = *w.conn;
  if (auto why = use_identity(own.native(), cert_pem, key_pem); !why.empty()) co_return why;
  if (auto ec = co_await own.open(run.endpoint)) co_return "TLS with the new certificate: " + describe(ec, w);
  w.end(step_own_tls);
  if (auto why = co_await mqtt_connect(own, thing, w); !why.empty()) co_return why;
  w.end(step_own_connect);
  co_await own.send(mqtt::disconnect_packet{});
  own.close();
  co_return std::string();
}

/// Takes device indices until there are none left or the deadline passed.
asio::awaitable<void> lane(shared_run& run, tally& t) {
  auto ex = co_await asio::this_coro::executor;
  for (;;) {
    if (clock_type::now() >= run.deadline) co_return;
    const std::size_t i = run.next.fetch_add(1, std::memory_order_relaxed);
    if (i >= run.opt.devices) co_return;
    const std::size_t k = run.opt.first + i;
    auto w = std::make_shared<watched>();
    asio::steady_timer watchdog(ex, std::chrono::duration_cast<clock_type::duration>(
                                        std::chrono::duration<double>(run.opt.timeout)));
    watchdog.async_wait([w](const error_code& ec) {
      if (ec || !w->conn) return;
      w->timed_out = true;
      w->conn->close();
    });
    const auto t0 = clock_type::now();
    std::string why = co_await provision_device(run, k, *w);
    watchdog.cancel();
    if (w->conn) w->conn->close();
    if (why.empty()) {
      ++t.done;
      t.last_done = clock_type::now();
      t.latency_ms.push_back(std::chrono::duration<double, std::milli>(t.last_done - t0).count());
      auto from = t0;
      for (std::size_t s = 0; s < k_steps; ++s) {
        if (w->ended[s] == clock_type::time_point{}) continue;  // --connect-only
        t.step_ms[s].push_back(std::chrono::duration<double, std::milli>(w->ended[s] - from).count());
        from = w->ended[s];
      }
    } else {
      ++t.failed;
      report_failure(run, k, why);
    }
  }
}

/// CPU seconds (user + system) this process has used, every thread.
double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto s = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
  return s(u.ru_utime) + s(u.ru_stime);
}

double percentile(std::vector<double>& v, double q) {
  if (v.empty()) return 0;
  auto at = static_cast<std::size_t>(q * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(at), v.end());
  return v[at];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"provbench: fleet provisioning by claim, end to end, devices per second"};
  options o;
  app.add_option("--host", o.host, "the mqtts listener's address");
  app.add_option("--port", o.port, "the mqtts listener's port")->required();
  app.add_option("--ca", o.ca, "the CA that signed the server's certificate (PEM)")->required();
  app.add_option("--claim-cert", o.claim_cert, "the claim certificate (PEM)")->required();
  app.add_option("--claim-key", o.claim_key, "the claim certificate's private key (PEM)")->required();
  app.add_option("--template", o.template_name, "the fleet provisioning template");
  app.add_option("--devices", o.devices, "devices to provision");
  app.add_option("--concurrency", o.concurrency, "devices in progress at once")->check(CLI::PositiveNumber);
  app.add_option("--threads", o.threads, "client threads (one io_context each)")->check(CLI::Range(1, 64));
  app.add_option("--first", o.first, "serial number of the first device (prov-<k>, SerialNumber <k>)");
  app.add_option("--seconds", o.seconds, "no device starts after this");
  app.add_option("--timeout", o.timeout, "a device still unfinished after this many seconds fails");
  app.add_flag("--connect-only", o.connect_only, "reference: TLS with the claim certificate and CONNECT, nothing else");
  CLI11_PARSE(app, argc, argv);

  ssl::context claim(ssl::context::tls_client);
  error_code ec;
  claim.load_verify_file(o.ca, ec);
  if (!ec) claim.use_certificate_chain_file(o.claim_cert, ec);
  if (!ec) claim.use_private_key_file(o.claim_key, ssl::context::pem, ec);
  if (ec) {
    std::fprintf(stderr, "claim credentials: %s\n", ec.message().c_str());
    return 2;
  }
  claim.set_verify_mode(ssl::verify_peer);
  auto address = asio::ip::make_address(o.host, ec);
  if (ec) {
    std::fprintf(stderr, "--host %s: %s\n", o.host.c_str(), ec.message().c_str());
    return 2;
  }

  const auto start = clock_type::now();
  shared_run run{o, {address, o.port}, claim,
                 start + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(o.seconds))};
  const std::size_t lanes = std::min(o.concurrency, o.devices);
  const std::size_t threads = std::min(o.threads, std::max<std::size_t>(lanes, 1));
  std::vector<tally> tallies(lanes);
  std::vector<std::unique_ptr<asio::io_context>> ios;
  for (std::size_t i = 0; i < threads; ++i) ios.push_back(std::make_unique<asio::io_context>(1));
  for (std::size_t l = 0; l < lanes; ++l) asio::co_spawn(*ios[l % threads], lane(run, tallies[l]), asio::detached);
  // Every lane stops taking devices at the deadline; a device running then has `timeout` to finish.
  const auto limit = run.deadline + std::chrono::duration_cast<clock_type::duration>(
                                        std::chrono::duration<double>(o.timeout + 1));
  std::vector<std::thread> workers;
  for (auto& io : ios)
    workers.emplace_back([&io, limit] {
      io->run_until(limit);
      io->stop();
    });
  for (auto& t : workers) t.join();

  tally all;
  for (auto& t : tallies) {
    all.done += t.done;
    all.failed += t.failed;
    all.last_done = std::max(all.last_done, t.last_done);
    all.latency_ms.insert(all.latency_ms.end(), t.latency_ms.begin(), t.latency_ms.end());
    for (std::size_t s = 0; s < k_steps; ++s)
      all.step_ms[s].insert(all.step_ms[s].end(), t.step_ms[s].begin(), t.step_ms[s].end());
  }
  std::string steps;
  for (std::size_t s = 0; s < k_steps; ++s) {
    if (all.step_ms[s].empty()) continue;
    char one[64];
    std::snprintf(one, sizeof one, "%s%s:%.1f", steps.empty() ? "" : ",", k_step_names[s],
                  percentile(all.step_ms[s], 0.5));
    steps += one;
  }
  const std::size_t started = std::min(run.next.load(), o.devices);
  all.unfinished = started - all.done - all.failed;
  const auto end = all.unfinished || all.done == 0 ? clock_type::now() : all.last_done;
  const double wall = std::chrono::duration<double>(end - start).count();
  std::printf("%s devices=%zu concurrency=%zu threads=%zu done=%llu failures=%llu unfinished=%llu not_started=%zu "
              "wall_s=%.2f devices_per_s=%.1f p50_ms=%.1f p99_ms=%.1f client_cpu_ms_per_device=%.2f step_p50_ms=%s\n",
              o.connect_only ? "connect" : "provision", o.devices, lanes, threads,
              static_cast<unsigned long long>(all.done), static_cast<unsigned long long>(all.failed),
              static_cast<unsigned long long>(all.unfinished), o.devices - started, wall,
              static_cast<double>(all.done) / wall, percentile(all.latency_ms, 0.5), percentile(all.latency_ms, 0.99),
              all.done ? cpu_seconds() * 1000 / static_cast<double>(all.done) : 0.0, steps.c_str());
  return all.failed || all.unfinished ? 1 : 0;
}
