// stormbench: a fleet of mutual-TLS devices that all reconnect at once when their broker dies (issue 15).
//
//   stormbench --port P --ca ca.crt --cert dev.crt --key dev.key --devices N
//              [--threads K] [--ramp S] [--jitter S] [--seconds S] [--tls 1.3|1.2] [--ws]
//
// N devices (client ids storm-<i>, all presenting the same certificate, whose policy allows them)
// connect over TLS, spread over --ramp seconds: MQTT 3.1.1 CONNECT (clean, keep alive 300), CONNACK,
// then they sit idle, reading (--ws: MQTT over a WebSocket, /mqtt with subprotocol mqtt, on that TLS
// connection). When a connection drops (the broker was killed), its device waits a
// uniform random delay in [0, --jitter] and reconnects, offering its last TLS session as real devices
// do; a failed attempt (refused, reset, handshake or CONNACK error) retries after an exponential
// back-off (100 ms doubling to 2 s, jittered). A line a second on stderr tells how many are connected.
// Ends when every device is connected again after a storm (plus one second), or after --seconds.
// Prints one line:
//   storm devices=N connected=C initial_s=A drops=D all_back_s=B attempts=T failed=F
//         failed_tcp=.. failed_tls=.. failed_mqtt=.. resumed=R
// initial_s: from start until all N were first connected; all_back_s: from the first drop seen until
// all N were connected again (includes the broker's restart); attempts: reconnection attempts after
// the first drop, failed: those that failed (failed_tcp: no TCP connection, the broker not listening
// yet; failed_tls: the handshake broke; failed_mqtt: no CONNACK 0); resumed: reconnections that
// resumed their TLS session.
#include <CLI/CLI.hpp>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
namespace ssl = asio::ssl;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using clock_type = std::chrono::steady_clock;
using boost::system::error_code;

namespace {

struct run_state {
  std::size_t devices = 0;
  double jitter = 1;
  bool ws = false;
  tcp::endpoint endpoint;
  ssl::context* tls = nullptr;
  clock_type::time_point start, deadline;
  std::atomic<long> connected{0}, drops{0}, attempts{0}, failed{0}, resumed{0};
  std::atomic<long> failed_tcp{0}, failed_tls{0}, failed_mqtt{0};  // where failed attempts broke
  std::atomic<std::int64_t> first_drop_ns{0}, initial_done_ns{0}, all_back_ns{0};
  std::atomic<bool> done{false};
  std::atomic<int> reasons_printed{0};

  std::int64_t since_start_ns() const {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now() - start).count();
  }
  void note_connected() {
    const long now_connected = ++connected;
    if (now_connected != static_cast<long>(devices)) return;
    if (first_drop_ns.load() == 0) {
      initial_done_ns = since_start_ns();
    } else if (all_back_ns.load() == 0) {
      all_back_ns = since_start_ns();
    }
  }
};

std::string connect_packet(const std::string& client_id) {
  std::string body = std::string("\x00\x04MQTT\x04\x02\x01\x2c", 10);  // clean session, keep alive 300 s
  body += static_cast<char>(client_id.size() >> 8);
  body += static_cast<char>(client_id.size() & 0xff);
  body += client_id;
  return std::string(1, '\x10') + static_cast<char>(body.size()) + body;
}

struct session_free {
  void operator()(SSL_SESSION* s) const noexcept { SSL_SESSION_free(s); }
};

/// One device for the whole run: connect, sit until dropped, reconnect after a jittered delay.
asio::awaitable<void> device(run_state& run, std::size_t index, clock_type::duration start_after) {
  auto ex = co_await asio::this_coro::executor;
  asio::steady_timer timer(ex);
  std::mt19937_64 rng(index * 7919 + 17);
  const std::string packet = connect_packet("storm-" + std::to_string(index));
  std::unique_ptr<SSL_SESSION, session_free> session;
  bool after_drop = false;
  auto backoff = std::chrono::milliseconds(100);
  timer.expires_after(start_after);
  co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  while (clock_type::now() < run.deadline && !run.done) {
    if (after_drop) run.attempts++;
    ssl::stream<tcp::socket> stream(ex, *run.tls);
    if (session) SSL_set_session(stream.native_handle(), session.get());
    auto [ec] = co_await stream.next_layer().async_connect(run.endpoint, asio::as_tuple(asio::use_awaitable));
    const bool tcp_up = !ec;
    if (!ec) {
      stream.next_layer().set_option(tcp::no_delay(true), ec);
      std::tie(ec) = co_await stream.async_handshake(ssl::stream_base::client, asio::as_tuple(asio::use_awaitable));
    }
    std::size_t n = 0;
    std::array<unsigned char, 64> in{};
    const bool tls_up = !ec;
    // --ws: MQTT over a WebSocket on that TLS connection (path /mqtt, subprotocol mqtt).
    std::optional<websocket::stream<ssl::stream<tcp::socket>&>> ws;
    beast::flat_buffer frames;
    if (!ec && run.ws) {
      ws.emplace(stream);
      ws->set_option(websocket::stream_base::decorator([](websocket::request_type& req) {
        req.set(beast::http::field::sec_websocket_protocol, "mqtt");
      }));
      std::tie(ec) = co_await ws->async_handshake("localhost", "/mqtt", asio::as_tuple(asio::use_awaitable));
      if (!ec) ws->binary(true);
    }
    if (!ec && ws) {
      std::tie(ec, n) = co_await ws->async_write(asio::buffer(packet), asio::as_tuple(asio::use_awaitable));
      if (!ec) std::tie(ec, n) = co_await ws->async_read(frames, asio::as_tuple(asio::use_awaitable));
      if (!ec) asio::buffer_copy(asio::buffer(in.data(), 4), frames.data());
    } else if (!ec) {
      std::tie(ec, n) = co_await asio::async_write(stream, asio::buffer(packet), asio::as_tuple(asio::use_awaitable));
      if (!ec) std::tie(ec, n) = co_await asio::async_read(stream, asio::buffer(in.data(), 4), asio::as_tuple(asio::use_awaitable));
    }
    if (ec || in[0] != 0x20 || in[3] != 0) {
      if (after_drop) {
        run.failed++;
        (tls_up ? run.failed_mqtt : tcp_up ? run.failed_tls : run.failed_tcp)++;
        if (tls_up && run.reasons_printed++ < 5)  // what cut a connection after its handshake
          std::fprintf(stderr, "device %zu: after TLS: %s, CONNACK %02x %02x %02x %02x, %.1fs\n", index,
                       ec ? ec.message().c_str() : "ok", in[0], in[1], in[2], in[3], run.since_start_ns() / 1e9);
      }
      std::uniform_int_distribution<long> spread(backoff.count() / 2, backoff.count());
      timer.expires_after(std::chrono::milliseconds(spread(rng)));
      backoff = std::min(backoff * 2, std::chrono::milliseconds(2000));
      co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
      continue;
    }
    backoff = std::chrono::milliseconds(100);
    if (after_drop && SSL_session_reused(stream.native_handle())) run.resumed++;
    session.reset(SSL_get1_session(stream.native_handle()));
    run.note_connected();
    // Idle until the broker goes away (or the run ends: the socket closes with the process).
    if (ws) {
      while (!ec) std::tie(ec, n) = co_await ws->async_read(frames, asio::as_tuple(asio::use_awaitable));
    } else {
      std::tie(ec, n) = co_await stream.async_read_some(asio::buffer(in), asio::as_tuple(asio::use_awaitable));
      while (!ec) std::tie(ec, n) = co_await stream.async_read_some(asio::buffer(in), asio::as_tuple(asio::use_awaitable));
    }
    // The broker vanished without close_notify. OpenSSL would then mark the session not resumable
    // (TLS 1.2's rule); TLS 1.3 devices keep their ticket, as RFC 8446 allows.
    SSL_set_shutdown(stream.native_handle(), SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    run.connected--;
    if (run.done) co_return;
    run.drops++;
    std::int64_t zero = 0;
    run.first_drop_ns.compare_exchange_strong(zero, run.since_start_ns());
    after_drop = true;
    std::uniform_real_distribution<double> jitter(0, run.jitter);
    timer.expires_after(std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(jitter(rng))));
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"a fleet of mutual-TLS devices reconnecting at once"};
  int port = 0, threads = 2;
  std::size_t devices = 1000;
  double ramp = 10, jitter = 1, seconds = 120;
  std::string ca, cert, key, version = "1.3";
  app.add_option("--port", port)->required();
  app.add_option("--ca", ca)->required();
  app.add_option("--cert", cert)->required();
  app.add_option("--key", key)->required();
  app.add_option("--devices", devices);
  app.add_option("--threads", threads);
  app.add_option("--ramp", ramp);
  app.add_option("--jitter", jitter);
  app.add_option("--seconds", seconds);
  app.add_option("--tls", version)->check(CLI::IsMember({"1.2", "1.3"}));
  bool ws = false;
  app.add_flag("--ws", ws, "MQTT over a WebSocket (path /mqtt, subprotocol mqtt) on the TLS connection");
  CLI11_PARSE(app, argc, argv);

  ssl::context tls(version == "1.2" ? ssl::context::tlsv12_client : ssl::context::tlsv13_client);
  error_code ec;
  tls.load_verify_file(ca, ec);
  if (!ec) tls.use_certificate_file(cert, ssl::context::pem, ec);
  if (!ec) tls.use_private_key_file(key, ssl::context::pem, ec);
  if (ec) {
    std::fprintf(stderr, "stormbench: %s\n", ec.message().c_str());
    return 2;
  }
  tls.set_verify_mode(ssl::verify_peer);
  SSL_CTX_set_mode(tls.native_handle(), SSL_MODE_NO_AUTO_CHAIN | SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_session_cache_mode(tls.native_handle(), SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);

  run_state run;
  run.devices = devices;
  run.jitter = jitter;
  run.ws = ws;
  run.endpoint = tcp::endpoint(asio::ip::make_address("127.0.0.1"), static_cast<std::uint16_t>(port));
  run.tls = &tls;
  run.start = clock_type::now();
  run.deadline = run.start + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(seconds));

  std::vector<std::unique_ptr<asio::io_context>> ios;
  for (int t = 0; t < threads; ++t) ios.push_back(std::make_unique<asio::io_context>(1));
  for (std::size_t i = 0; i < devices; ++i) {
    auto delay = std::chrono::duration_cast<clock_type::duration>(
        std::chrono::duration<double>(ramp * static_cast<double>(i) / static_cast<double>(devices)));
    asio::co_spawn(*ios[i % ios.size()], device(run, i, delay), asio::detached);
  }
  std::vector<std::thread> pool;
  for (auto& io : ios) pool.emplace_back([&io] { io->run(); });

  // Status once a second; stop one second after the fleet is whole again, or at the deadline.
  while (clock_type::now() < run.deadline) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    std::fprintf(stderr, "t=%.0fs connected=%ld drops=%ld attempts=%ld failed=%ld\n", run.since_start_ns() / 1e9,
                 run.connected.load(), run.drops.load(), run.attempts.load(), run.failed.load());
    if (run.all_back_ns.load() && run.since_start_ns() - run.all_back_ns.load() > 1'000'000'000) break;
  }
  run.done = true;
  std::printf("storm devices=%zu connected=%ld initial_s=%.2f drops=%ld all_back_s=%.2f attempts=%ld failed=%ld "
              "failed_tcp=%ld failed_tls=%ld failed_mqtt=%ld resumed=%ld\n",
              devices, run.connected.load(), run.initial_done_ns.load() / 1e9, run.drops.load(),
              run.all_back_ns.load() ? (run.all_back_ns.load() - run.first_drop_ns.load()) / 1e9 : -1.0,
              run.attempts.load(), run.failed.load(), run.failed_tcp.load(), run.failed_tls.load(),
              run.failed_mqtt.load(), run.resumed.load());
  std::fflush(stdout);
  std::_Exit(0);  // thousands of open connections: leave them to the kernel
}
