// fcbench: an MQTT load generator for side-by-side broker benchmarks. One io_context per thread, many
// clients per thread, batched writes, and a decoder fast path for PUBLISH so the tool is not the
// bottleneck. Every run is bounded in time and count and stops by itself.
//
//   fcbench throughput --port P [--sub-port P2] --scenario fanin|fanout|pairs --clients N --qos Q --size B --seconds S
//   fcbench latency    --port P --rate R --qos Q --size B --seconds S
//   fcbench idle       --port P --clients N --hold S          (open N idle connections, hold them)
//   fcbench connect    --port P --clients N --seconds S        (CONNECT/DISCONNECT loop)
#include "frames.hpp"
#include "mqtt/codec.hpp"

#include <CLI/CLI.hpp>
#include <boost/asio.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using clock_type = std::chrono::steady_clock;
using namespace fleetcore;

namespace {

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now().time_since_epoch()).count();
}

struct stats {
  std::atomic<std::uint64_t> sent{0};
  std::atomic<std::uint64_t> received{0};
  std::atomic<std::uint64_t> connected{0};
  std::atomic<std::uint64_t> errors{0};
  std::atomic<bool> measuring{false};
  std::atomic<bool> stop{false};
  std::mutex lat_mutex;
  std::vector<std::int64_t> latencies;  // ns, sampled while measuring
};

struct options {
  std::string host = "127.0.0.1";
  std::uint16_t port = 1883;
  std::uint16_t sub_port = 0;  // subscribers' port, if not `port` (another node of a cluster)
  std::uint8_t qos = 0;
  std::size_t size = 64;
  std::size_t window = 64;  // QoS 1 publisher inflight
  double rate = 0;          // messages/s per publisher, 0 = as fast as possible
  bool latency = false;
  bool json = false;  // JSON telemetry payloads ({"temp":..,"hum":..}, padded) instead of bytes (throughput)
};

/// One MQTT 3.1.1 client: publisher, subscriber, or idle.
class client : public std::enable_shared_from_this<client> {
 public:
  enum class role { publisher, subscriber, idle };
  client(asio::io_context& io, const options& o, stats& st, std::string id, role r, std::string topic)
      : sock_(io), timer_(io), opt_(o), st_(st), id_(std::move(id)), role_(r), topic_(std::move(topic)) {}

  std::function<void()> on_ready;  // after CONNACK (+ SUBACK)

  void start() {
    sock_.async_connect({asio::ip::make_address(opt_.host), opt_.port}, [self = shared_from_this()](auto ec) {
      if (ec) return self->fail();
      self->sock_.set_option(tcp::no_delay(true));
      mqtt::connect_packet c;
      c.version = mqtt::protocol_version::v311;
      c.client_id = self->id_;
      c.keep_alive = 600;
      mqtt::encode(c, mqtt::protocol_version::v311, self->out_);
      self->flush();
      self->read();
    });
  }

  asio::any_io_executor executor() { return sock_.get_executor(); }
  void start_on_own_thread() {
    asio::post(sock_.get_executor(), [self = shared_from_this()] { self->start(); });
  }

  void begin_publishing() {
    started_ = clock_type::now();
    publishing_ = true;
    pump();
  }

  void close() {
    // Reset instead of FIN: the CONNECT-rate loop would otherwise exhaust the loopback ephemeral
    // ports with TIME_WAIT sockets and measure that instead of the broker.
    closing_ = true;
    boost::system::error_code ec;
    sock_.set_option(asio::socket_base::linger(true, 0), ec);
    sock_.close(ec);
  }

 private:
  void fail() {
    st_.errors++;
    close();
  }

  void read() {
    sock_.async_read_some(asio::buffer(rbuf_.data() + rlen_, rbuf_.size() - rlen_),
                          [self = shared_from_this()](auto ec, std::size_t n) {
                            if (ec) {
                              if (!self->st_.stop && !self->closing_) self->st_.errors++;
                              return;
                            }
                            self->rlen_ += n;
                            self->parse();
                            self->read();
                          });
  }

  void parse() {
    std::size_t pos = bench::for_each_packet(rbuf_.data(), rlen_, [this](std::uint8_t h, const std::uint8_t* body,
                                                                           std::size_t len) { on_packet(h, body, len); });
    std::memmove(rbuf_.data(), rbuf_.data() + pos, rlen_ - pos);
    rlen_ -= pos;
    if (rlen_ == rbuf_.size()) rbuf_.resize(rbuf_.size() * 2);
  }

  void on_packet(std::uint8_t h, const std::uint8_t* body, std::size_t len) {
    switch (h >> 4) {
      case 2:  // CONNACK
        if (len < 2 || body[1] != 0) return fail();
        st_.connected++;
        if (role_ == role::subscriber) {
          mqtt::subscribe_packet s;
          s.packet_id = 1;
          s.subscriptions.push_back({topic_, opt_.qos});
          mqtt::encode(s, mqtt::protocol_version::v311, out_);
          flush();
        } else if (on_ready) {
          on_ready();
        }
        break;
      case 9:  // SUBACK
        if (on_ready) on_ready();
        break;
      case 3: {  // PUBLISH
        std::uint8_t qos = (h >> 1) & 3;
        std::size_t tlen = std::size_t(body[0]) << 8 | body[1];
        std::size_t off = 2 + tlen;
        if (qos) {
          std::uint8_t ack[4] = {0x40, 2, body[off], body[off + 1]};
          out_.insert(out_.end(), ack, ack + 4);
          off += 2;
          flush();
        }
        if (st_.measuring) {
          st_.received.fetch_add(1, std::memory_order_relaxed);
          if (opt_.latency && len - off >= 8) {
            std::int64_t t;
            std::memcpy(&t, body + off, 8);
            std::lock_guard lock(st_.lat_mutex);
            st_.latencies.push_back(now_ns() - t);
          }
        }
        break;
      }
      case 4:  // PUBACK
        if (inflight_) --inflight_;
        pump();
        break;
      default: break;
    }
  }

  void append_publish() {
    const std::size_t remaining = 2 + topic_.size() + (opt_.qos ? 2 : 0) + opt_.size;
    out_.push_back(static_cast<std::uint8_t>(0x30 | (opt_.qos << 1)));
    std::uint32_t v = static_cast<std::uint32_t>(remaining);
    do {
      std::uint8_t b = v & 0x7F;
      v >>= 7;
      out_.push_back(static_cast<std::uint8_t>(b | (v ? 0x80 : 0)));
    } while (v);
    out_.push_back(static_cast<std::uint8_t>(topic_.size() >> 8));
    out_.push_back(static_cast<std::uint8_t>(topic_.size()));
    out_.insert(out_.end(), topic_.begin(), topic_.end());
    if (opt_.qos) {
      pid_ = static_cast<std::uint16_t>(pid_ % 65535 + 1);
      out_.push_back(static_cast<std::uint8_t>(pid_ >> 8));
      out_.push_back(static_cast<std::uint8_t>(pid_));
      ++inflight_;
    }
    std::size_t at = out_.size();
    out_.resize(at + opt_.size, opt_.json ? ' ' : 'x');
    if (opt_.json) {  // what devices send and rules read; whitespace pads it to --size
      char doc[64];
      int n = std::snprintf(doc, sizeof doc, R"({"temp":%u,"hum":%u})", static_cast<unsigned>(published_ % 100),
                            static_cast<unsigned>(published_ % 60));
      std::memcpy(out_.data() + at, doc, std::min<std::size_t>(static_cast<std::size_t>(n), opt_.size));
    } else if (opt_.size >= 8) {
      std::int64_t t = now_ns();
      std::memcpy(out_.data() + at, &t, 8);
    }
    if (st_.measuring) st_.sent.fetch_add(1, std::memory_order_relaxed);
    ++published_;
  }

  void pump() {
    if (role_ != role::publisher || !publishing_ || st_.stop) return;
    if (opt_.rate > 0) {
      // Paced: send what the schedule says is due, then sleep until the next one.
      auto due = static_cast<std::uint64_t>(
          std::chrono::duration<double>(clock_type::now() - started_).count() * opt_.rate);
      while (published_ < due && (opt_.qos == 0 || inflight_ < opt_.window)) append_publish();
      flush();
      timer_.expires_after(std::chrono::microseconds(static_cast<long>(1e6 / opt_.rate)));
      timer_.async_wait([self = shared_from_this()](auto ec) {
        if (!ec) self->pump();
      });
      return;
    }
    if (opt_.qos == 0) {
      // As fast as the socket takes it: refill when the previous write has completed.
      if (writing_) return;
      while (out_.size() < 32 * 1024) append_publish();
      flush();
      return;
    }
    while (inflight_ < opt_.window) append_publish();
    flush();
  }

  void flush() {
    if (writing_ || out_.empty()) return;
    writing_ = true;
    wbuf_.swap(out_);
    out_.clear();
    asio::async_write(sock_, asio::buffer(wbuf_), [self = shared_from_this()](auto ec, std::size_t) {
      self->writing_ = false;
      if (ec) {
        if (!self->st_.stop) self->st_.errors++;
        return;
      }
      if (self->role_ == role::publisher && self->opt_.qos == 0 && self->opt_.rate == 0)
        self->pump();
      else
        self->flush();
    });
  }

  tcp::socket sock_;
  asio::steady_timer timer_;
  const options& opt_;
  stats& st_;
  std::string id_;
  role role_;
  std::string topic_;
  std::vector<std::uint8_t> rbuf_ = std::vector<std::uint8_t>(64 * 1024);
  std::size_t rlen_ = 0;
  std::vector<std::uint8_t> out_, wbuf_;
  bool writing_ = false;
  bool publishing_ = false;
  bool closing_ = false;
  std::size_t inflight_ = 0;
  std::uint16_t pid_ = 0;
  std::uint64_t published_ = 0;
  clock_type::time_point started_;
};

struct pool {
  explicit pool(unsigned threads) : ios(threads) {}
  std::vector<asio::io_context> ios;
  std::vector<std::thread> threads;
  std::vector<std::shared_ptr<client>> clients;
  std::size_t next = 0;
  asio::io_context& pick() { return ios[next++ % ios.size()]; }
  /// Subscribers get thread 0 to themselves, so flooding publishers cannot starve their reads.
  asio::io_context& for_role(bool subscriber) {
    if (ios.size() == 1 || subscriber) return ios[0];
    return ios[1 + next++ % (ios.size() - 1)];
  }
  void run() {
    for (auto& io : ios) threads.emplace_back([&io] {
        auto guard = asio::make_work_guard(io);
        io.run();
      });
  }
  void stop() {
    for (auto& io : ios) io.stop();
    for (auto& t : threads) t.join();
  }
};

bool wait_until(const std::function<bool()>& pred, double seconds) {
  auto deadline = clock_type::now() + std::chrono::duration<double>(seconds);
  while (clock_type::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return pred();
}

int run_traffic(const options& o, const std::string& scenario, std::size_t n, double seconds, unsigned threads,
                double warmup) {
  stats st;
  pool p(threads);
  std::atomic<std::size_t> ready{0};
  std::vector<std::shared_ptr<client>> pubs, subs;
  options sub_o = o;
  if (o.sub_port) sub_o.port = o.sub_port;
  auto add = [&](client::role r, std::string id, std::string topic) {
    const bool sub = r == client::role::subscriber;
    auto c = std::make_shared<client>(p.for_role(sub), sub ? sub_o : o, st, std::move(id), r, std::move(topic));
    c->on_ready = [&ready] { ready++; };
    (r == client::role::publisher ? pubs : subs).push_back(c);
    p.clients.push_back(c);
  };
  std::size_t expected_fanout = 1;
  if (scenario == "fanin") {
    add(client::role::subscriber, "sub-0", "bench/in/+");
    for (std::size_t i = 0; i < n; ++i) add(client::role::publisher, "pub-" + std::to_string(i), "bench/in/" + std::to_string(i));
  } else if (scenario == "fanout") {
    for (std::size_t i = 0; i < n; ++i) add(client::role::subscriber, "sub-" + std::to_string(i), "bench/out");
    add(client::role::publisher, "pub-0", "bench/out");
    expected_fanout = n;
  } else if (scenario == "pairs") {
    for (std::size_t i = 0; i < n; ++i) {
      add(client::role::subscriber, "sub-" + std::to_string(i), "bench/pair/" + std::to_string(i));
      add(client::role::publisher, "pub-" + std::to_string(i), "bench/pair/" + std::to_string(i));
    }
  } else {
    std::fprintf(stderr, "unknown scenario %s\n", scenario.c_str());
    return 2;
  }
  p.run();
  auto setup_start = clock_type::now();
  // Subscribers first, so nothing published is missed.
  for (auto& c : subs) c->start_on_own_thread();
  if (!wait_until([&] { return ready >= subs.size(); }, 60)) {
    std::fprintf(stderr, "subscribers not ready (%zu/%zu)\n", ready.load(), subs.size());
    p.stop();
    return 1;
  }
  std::fprintf(stderr, "subscribers ready after %.3fs\n", std::chrono::duration<double>(clock_type::now() - setup_start).count());
  for (auto& c : pubs) c->start_on_own_thread();
  if (!wait_until([&] { return ready >= subs.size() + pubs.size(); }, 60)) {
    std::fprintf(stderr, "publishers not ready\n");
    p.stop();
    return 1;
  }
  std::fprintf(stderr, "ready after %.2fs\n", std::chrono::duration<double>(clock_type::now() - setup_start).count());
  for (auto& c : pubs) asio::post(c->executor(), [c] { c->begin_publishing(); });
  std::this_thread::sleep_for(std::chrono::duration<double>(warmup));
  st.measuring = true;
  auto t0 = clock_type::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  st.measuring = false;
  double elapsed = std::chrono::duration<double>(clock_type::now() - t0).count();
  st.stop = true;
  for (auto& c : p.clients) asio::post(c->executor(), [c] { c->close(); });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  p.stop();
  std::fprintf(stderr, "stopped after %.2fs\n", std::chrono::duration<double>(clock_type::now() - setup_start).count());
  double recv_rate = st.received / elapsed;
  double sent_rate = st.sent / elapsed;
  std::printf("scenario=%s clients=%zu qos=%u size=%zu received_per_s=%.0f sent_per_s=%.0f delivery_ratio=%.3f errors=%lu",
              scenario.c_str(), n, o.qos, o.size, recv_rate, sent_rate,
              sent_rate > 0 ? recv_rate / (sent_rate * double(expected_fanout)) : 0.0,
              static_cast<unsigned long>(st.errors.load()));
  if (o.latency && !st.latencies.empty()) {
    auto& l = st.latencies;
    std::sort(l.begin(), l.end());
    auto pct = [&](double q) { return l[std::min(l.size() - 1, static_cast<std::size_t>(q * double(l.size())))] / 1e3; };
    std::printf(" latency_us_p50=%.0f p99=%.0f p999=%.0f samples=%zu", pct(0.5), pct(0.99), pct(0.999), l.size());
  }
  std::printf("\n");
  return 0;
}

int run_idle(const options& o, std::size_t n, double hold, unsigned threads) {
  stats st;
  pool p(threads);
  std::atomic<std::size_t> ready{0};
  for (std::size_t i = 0; i < n; ++i) {
    auto c = std::make_shared<client>(p.pick(), o, st, "idle-" + std::to_string(i), client::role::idle, "");
    c->on_ready = [&ready] { ready++; };
    p.clients.push_back(c);
  }
  p.run();
  // Connect in waves so the listen backlog never overflows.
  for (std::size_t i = 0; i < n; i += 500) {
    for (std::size_t j = i; j < std::min(n, i + 500); ++j) {
      auto c = p.clients[j];
      asio::post(p.ios[j % p.ios.size()], [c] { c->start(); });
    }
    wait_until([&] { return ready + st.errors >= std::min(n, i + 500); }, 30);
  }
  std::printf("idle connected=%zu errors=%lu\n", ready.load(), static_cast<unsigned long>(st.errors.load()));
  std::fflush(stdout);
  std::this_thread::sleep_for(std::chrono::duration<double>(hold));
  st.stop = true;
  for (auto& c : p.clients) asio::post(p.ios[0], [c] { c->close(); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  p.stop();
  return ready == n ? 0 : 1;
}

int run_connect(const options& o, std::size_t concurrency, double seconds, unsigned threads) {
  // Each slot connects, waits for CONNACK, closes, and starts again until time is up.
  stats st;
  pool p(threads);
  std::atomic<std::uint64_t> done{0};
  auto deadline = clock_type::now() + std::chrono::duration<double>(seconds);
  std::function<void(std::size_t, std::uint64_t)> loop = [&](std::size_t slot, std::uint64_t gen) {
    if (clock_type::now() >= deadline) return;
    auto& io = p.ios[slot % p.ios.size()];
    auto c = std::make_shared<client>(io, o, st, "conn-" + std::to_string(slot) + "-" + std::to_string(gen),
                                      client::role::idle, "");
    std::weak_ptr<client> weak = c;
    c->on_ready = [&, weak, slot, gen] {
      done++;
      if (auto self = weak.lock()) self->close();
      loop(slot, gen + 1);
    };
    c->start();  // kept alive by its own pending operations
  };
  p.run();
  auto t0 = clock_type::now();
  for (std::size_t i = 0; i < concurrency; ++i) asio::post(p.ios[i % p.ios.size()], [&, i] { loop(i, 0); });
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  double elapsed = std::chrono::duration<double>(clock_type::now() - t0).count();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  p.stop();
  std::printf("connect concurrency=%zu connects_per_s=%.0f errors=%lu\n", concurrency, done / elapsed,
              static_cast<unsigned long>(st.errors.load()));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"fcbench: MQTT load generator"};
  app.require_subcommand(1);
  options o;
  std::string scenario = "fanin";
  std::size_t clients = 50;
  double seconds = 5, warmup = 1, hold = 3;
  unsigned threads = 2;
  int qos = 0;
  for (auto* sub : {app.add_subcommand("throughput", "messages/s delivered to subscribers"),
                    app.add_subcommand("latency", "latency percentiles at a fixed offered rate"),
                    app.add_subcommand("idle", "hold N idle connections"),
                    app.add_subcommand("connect", "CONNECTs per second")}) {
    sub->add_option("--host", o.host);
    sub->add_option("--port", o.port)->required();
    sub->add_option("--sub-port", o.sub_port, "subscribers connect here (another node of a cluster)");
    sub->add_option("--qos", qos)->check(CLI::Range(0, 1));
    sub->add_option("--size", o.size);
    sub->add_flag("--json", o.json, "JSON payloads ({\"temp\":N,\"hum\":N} padded with spaces), throughput only");
    sub->add_option("--clients", clients);
    sub->add_option("--seconds", seconds);
    sub->add_option("--warmup", warmup);
    sub->add_option("--threads", threads);
    sub->add_option("--scenario", scenario);
    sub->add_option("--rate", o.rate, "total offered messages/s (latency)");
    sub->add_option("--window", o.window);
    sub->add_option("--hold", hold);
  }
  CLI11_PARSE(app, argc, argv);
  o.qos = static_cast<std::uint8_t>(qos);
  auto* cmd = app.get_subcommands().front();
  if (cmd->get_name() == "throughput") return run_traffic(o, scenario, clients, seconds, threads, warmup);
  if (cmd->get_name() == "latency") {
    o.latency = true;
    o.rate = o.rate / double(clients);  // per publisher
    return run_traffic(o, "pairs", clients, seconds, threads, warmup);
  }
  if (cmd->get_name() == "idle") return run_idle(o, clients, hold, threads);
  return run_connect(o, clients, seconds, threads);
}
