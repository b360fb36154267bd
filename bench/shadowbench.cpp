// shadowbench: durable shadow updates per second and update-to-accepted latency over MQTT.
//
//   shadowbench --port P --things N --clients C --window W --seconds S
//
// Client i owns things i, i+C, i+2C, ... (named bench-<k>); it subscribes to their
// update/accepted and update/rejected topics, then keeps W update requests in flight, each for its
// next thing in turn, with a clientToken that maps the accepted document back to its send time. An
// accepted document is published only after the change is durable, so accepted/s is the durable
// update rate. A warm-up first creates every shadow; the measurement starts after it. Bounded in time.
#include "frames.hpp"
#include "mqtt/codec.hpp"

#include <CLI/CLI.hpp>
#include <boost/asio.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using clock_type = std::chrono::steady_clock;
using namespace fleetcore;

namespace {

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now().time_since_epoch()).count();
}

struct shared_stats {
  std::uint64_t accepted = 0, rejected = 0, errors = 0, ready = 0;
  bool measuring = false, stop = false;
  std::vector<std::int64_t> latencies;
};

struct options {
  std::uint16_t port = 1883;
  std::size_t things = 1000, clients = 20, window = 32;
  double seconds = 10, max_warmup = 120;
};

class client : public std::enable_shared_from_this<client> {
 public:
  client(asio::io_context& io, const options& o, shared_stats& st, std::size_t index)
      : sock_(io), opt_(o), st_(st), index_(index) {
    for (std::size_t k = index; k < o.things; k += o.clients) things_.push_back("bench-" + std::to_string(k));
    sent_at_.resize(1 << 16);
  }

  void start() {
    sock_.async_connect({asio::ip::make_address("127.0.0.1"), opt_.port}, [self = shared_from_this()](auto ec) {
      if (ec) return self->fail("connect");
      self->sock_.set_option(tcp::no_delay(true));
      mqtt::connect_packet c;
      c.version = mqtt::protocol_version::v311;
      c.client_id = "shadowbench-" + std::to_string(self->index_);
      c.keep_alive = 600;
      mqtt::encode(c, mqtt::protocol_version::v311, self->out_);
      self->flush();
      self->read();
    });
  }

  void go() {
    for (std::size_t i = 0; i < opt_.window; ++i) send_update();
  }

  std::size_t thing_count() const { return things_.size(); }

 private:
  void fail(const char* what) {
    if (!st_.stop) {
      ++st_.errors;
      std::fprintf(stderr, "client %zu: %s\n", index_, what);
    }
    boost::system::error_code ec;
    sock_.close(ec);
  }

  void subscribe_all() {
    // Both response topics of every owned thing, 100 filters per SUBSCRIBE.
    std::uint16_t id = 1;
    for (std::size_t i = 0; i < things_.size(); i += 50) {
      mqtt::subscribe_packet s;
      s.packet_id = id++;
      for (std::size_t k = i; k < std::min(i + 50, things_.size()); ++k) {
        s.subscriptions.push_back({"$aws/things/" + things_[k] + "/shadow/update/accepted", 0});
        s.subscriptions.push_back({"$aws/things/" + things_[k] + "/shadow/update/rejected", 0});
      }
      mqtt::encode(s, mqtt::protocol_version::v311, out_);
      ++subacks_pending_;
    }
    flush();
  }

  void send_update() {
    if (st_.stop) return;
    const std::string& thing = things_[next_thing_++ % things_.size()];
    std::uint64_t seq = seq_++;
    sent_at_[seq & 0xFFFF] = now_ns();
    mqtt::publish_packet p;
    p.topic = "$aws/things/" + thing + "/shadow/update";
    p.payload = "{\"state\":{\"reported\":{\"seq\":" + std::to_string(seq) + ",\"temp\":" +
                std::to_string(seq % 40) + "}},\"clientToken\":\"" + std::to_string(seq) + "\"}";
    mqtt::encode(p, mqtt::protocol_version::v311, out_);
    flush();
  }

  void on_response(const std::uint8_t* body, std::size_t len, bool accepted) {
    std::string_view payload(reinterpret_cast<const char*>(body), len);
    auto pos = payload.find("\"clientToken\":\"");
    if (pos == std::string_view::npos) return fail("response without clientToken");
    std::uint64_t seq = std::strtoull(payload.data() + pos + 15, nullptr, 10);
    if (st_.measuring) {
      if (accepted) {
        ++st_.accepted;
        st_.latencies.push_back(now_ns() - sent_at_[seq & 0xFFFF]);
      } else {
        ++st_.rejected;
      }
    } else if (accepted) {
      ++warm_accepted_;
    }
    send_update();
  }

  void read() {
    sock_.async_read_some(asio::buffer(rbuf_.data() + rlen_, rbuf_.size() - rlen_),
                          [self = shared_from_this()](auto ec, std::size_t n) {
                            if (ec) return self->fail("read");
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
      case 2:
        if (len < 2 || body[1] != 0) return fail("connack");
        subscribe_all();
        break;
      case 9:
        if (--subacks_pending_ == 0) ++st_.ready;
        break;
      case 3: {
        std::size_t tlen = std::size_t(body[0]) << 8 | body[1];
        std::string_view topic(reinterpret_cast<const char*>(body + 2), tlen);
        std::size_t off = 2 + tlen + (((h >> 1) & 3) ? 2 : 0);
        on_response(body + off, len - off, topic.ends_with("/accepted"));
        break;
      }
      default: break;
    }
  }

  void flush() {
    if (writing_ || out_.empty()) return;
    writing_ = true;
    wbuf_.swap(out_);
    asio::async_write(sock_, asio::buffer(wbuf_), [self = shared_from_this()](auto ec, std::size_t) {
      self->writing_ = false;
      self->wbuf_.clear();
      if (ec) return self->fail("write");
      self->flush();
    });
  }

 public:
  std::uint64_t warm_accepted_ = 0;

 private:
  tcp::socket sock_;
  const options& opt_;
  shared_stats& st_;
  std::size_t index_;
  std::vector<std::string> things_;
  std::vector<std::int64_t> sent_at_;
  std::size_t next_thing_ = 0;
  std::uint64_t seq_ = 0;
  int subacks_pending_ = 0;
  std::vector<std::uint8_t> out_, wbuf_, rbuf_ = std::vector<std::uint8_t>(1 << 16);
  std::size_t rlen_ = 0;
  bool writing_ = false;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"shadowbench: durable shadow updates/s and update-to-accepted latency"};
  options o;
  app.add_option("--port", o.port)->required();
  app.add_option("--things", o.things);
  app.add_option("--clients", o.clients);
  app.add_option("--window", o.window, "update requests in flight per client");
  app.add_option("--seconds", o.seconds);
  CLI11_PARSE(app, argc, argv);
  o.clients = std::min(o.clients, o.things);

  asio::io_context io;
  shared_stats st;
  std::vector<std::shared_ptr<client>> clients;
  for (std::size_t i = 0; i < o.clients; ++i) {
    clients.push_back(std::make_shared<client>(io, o, st, i));
    clients.back()->start();
  }
  auto run_until = [&](auto done, double limit_s) {
    auto deadline = clock_type::now() + std::chrono::duration<double>(limit_s);
    while (!done() && clock_type::now() < deadline) io.run_for(std::chrono::milliseconds(20));
    return done();
  };
  if (!run_until([&] { return st.ready == o.clients; }, 60)) {
    std::fprintf(stderr, "subscriptions not acknowledged in time\n");
    return 1;
  }
  for (auto& c : clients) c->go();
  // Warm-up: every shadow created (each client went once through its things), then one more second.
  auto warmed = [&] {
    for (auto& c : clients)
      if (c->warm_accepted_ < c->thing_count()) return false;
    return true;
  };
  if (!run_until(warmed, o.max_warmup)) {
    std::fprintf(stderr, "warm-up did not finish\n");
    return 1;
  }
  run_until([] { return false; }, 1.0);
  st.measuring = true;
  auto t0 = clock_type::now();
  run_until([] { return false; }, o.seconds);
  st.measuring = false;
  double secs = std::chrono::duration<double>(clock_type::now() - t0).count();
  st.stop = true;
  std::sort(st.latencies.begin(), st.latencies.end());
  auto pct = [&](double p) {
    if (st.latencies.empty()) return 0.0;
    return st.latencies[std::min(st.latencies.size() - 1, static_cast<std::size_t>(p * st.latencies.size()))] / 1e6;
  };
  std::printf("shadow things=%zu clients=%zu window=%zu updates_per_s=%.0f p50_ms=%.2f p99_ms=%.2f rejected=%llu errors=%llu\n",
              o.things, o.clients, o.window, st.accepted / secs, pct(0.5), pct(0.99),
              static_cast<unsigned long long>(st.rejected), static_cast<unsigned long long>(st.errors));
  return st.errors ? 1 : 0;
}
