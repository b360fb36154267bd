// jobsbench: how fast a job reaches a connected fleet, and durable execution updates per second.
//
//   jobsbench --port P --devices N --job J [--window W] [--seconds S]
//
// N devices connect (client id and thing `bench-<k>`, at most 100 CONNECTs outstanding, as a fleet
// reconnecting would not all be refused), each subscribes to its notify-next and to its update
// replies, then the tool prints `ready` and waits for a line on stdin: the caller creates job J then.
// Phase 1 measures from that line until every device got a notify-next naming J. Phase 2: every device
// keeps W updates of its execution in flight (IN_PROGRESS with a progress counter in statusDetails);
// an update is accepted only once stored, so accepted/s over S seconds is the durable update rate.
// Bounded in time: each phase gives up after its limit.
#include "frames.hpp"
#include "mqtt/codec.hpp"

#include <CLI/CLI.hpp>
#include <boost/asio.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using clock_type = std::chrono::steady_clock;
using namespace fleetcore;

namespace {

struct options {
  std::uint16_t port = 1883;
  std::size_t devices = 1000, window = 1;
  std::string job = "bench-job";
  double seconds = 5;
};

struct shared_stats {
  std::size_t connected = 0, ready = 0, notified = 0, connecting = 0;
  std::uint64_t accepted = 0, rejected = 0, errors = 0;
  bool updating = false, measuring = false, stop = false;
  clock_type::time_point last_notify;
};

class device : public std::enable_shared_from_this<device> {
 public:
  device(asio::io_context& io, const options& o, shared_stats& st, std::size_t index)
      : sock_(io), opt_(o), st_(st), thing_("bench-" + std::to_string(index)) {}

  void start() {
    ++st_.connecting;
    sock_.async_connect({asio::ip::make_address("127.0.0.1"), opt_.port}, [self = shared_from_this()](auto ec) {
      if (ec) return self->fail("connect");
      self->sock_.set_option(tcp::no_delay(true));
      mqtt::connect_packet c;
      c.version = mqtt::protocol_version::v311;
      c.client_id = self->thing_;
      c.keep_alive = 600;
      mqtt::encode(c, mqtt::protocol_version::v311, self->out_);
      self->flush();
      self->read();
    });
  }

  void start_updates() {
    for (std::size_t i = 0; i < opt_.window; ++i) send_update();
  }

 private:
  void fail(const char* what) {
    if (!st_.stop) {
      ++st_.errors;
      if (st_.errors < 10) std::fprintf(stderr, "%s: %s\n", thing_.c_str(), what);
    }
    boost::system::error_code ec;
    sock_.close(ec);
  }

  void send_update() {
    if (st_.stop) return;
    mqtt::publish_packet p;
    p.topic = "$aws/things/" + thing_ + "/jobs/" + opt_.job + "/update";
    p.payload = "{\"status\":\"IN_PROGRESS\",\"statusDetails\":{\"progress\":\"" + std::to_string(++seq_) + "\"}}";
    mqtt::encode(p, mqtt::protocol_version::v311, out_);
    flush();
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
      case 2: {
        if (len < 2 || body[1] != 0) return fail("connack");
        --st_.connecting;
        ++st_.connected;
        mqtt::subscribe_packet s;
        s.packet_id = 1;
        s.subscriptions.push_back({"$aws/things/" + thing_ + "/jobs/notify-next", 0});
        s.subscriptions.push_back({"$aws/things/" + thing_ + "/jobs/" + opt_.job + "/update/+", 0});
        mqtt::encode(s, mqtt::protocol_version::v311, out_);
        flush();
        break;
      }
      case 9:
        ++st_.ready;
        break;
      case 3: {
        std::size_t tlen = std::size_t(body[0]) << 8 | body[1];
        std::string_view topic(reinterpret_cast<const char*>(body + 2), tlen);
        std::size_t off = 2 + tlen + (((h >> 1) & 3) ? 2 : 0);
        std::string_view payload(reinterpret_cast<const char*>(body + off), len - off);
        if (topic.ends_with("/notify-next")) {
          if (!notified_ && payload.find("\"jobId\":\"" + opt_.job + "\"") != std::string_view::npos) {
            notified_ = true;
            ++st_.notified;
            st_.last_notify = clock_type::now();
          }
        } else if (topic.ends_with("/accepted")) {
          if (st_.measuring) ++st_.accepted;
          send_update();
        } else if (topic.ends_with("/rejected")) {
          if (st_.measuring) ++st_.rejected;
          send_update();
        }
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

  tcp::socket sock_;
  const options& opt_;
  shared_stats& st_;
  std::string thing_;
  bool notified_ = false;
  std::uint64_t seq_ = 0;
  std::vector<std::uint8_t> out_, wbuf_, rbuf_ = std::vector<std::uint8_t>(4096);
  std::size_t rlen_ = 0;
  bool writing_ = false;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"jobsbench: a job's notify-next to a connected fleet, and durable execution updates/s"};
  options o;
  app.add_option("--port", o.port)->required();
  app.add_option("--devices", o.devices);
  app.add_option("--job", o.job);
  app.add_option("--window", o.window, "updates in flight per device");
  app.add_option("--seconds", o.seconds);
  CLI11_PARSE(app, argc, argv);

  asio::io_context io;
  shared_stats st;
  std::vector<std::shared_ptr<device>> devices;
  auto run_until = [&](auto done, double limit_s) {
    auto deadline = clock_type::now() + std::chrono::duration<double>(limit_s);
    while (!done() && clock_type::now() < deadline) io.run_for(std::chrono::milliseconds(5));
    return done();
  };
  // Connect with at most 100 CONNECTs outstanding.
  auto connect_start = clock_type::now();
  for (std::size_t i = 0; i < o.devices; ++i) {
    if (!run_until([&] { return st.connecting < 100 || st.errors; }, 30) || st.errors) {
      std::fprintf(stderr, "connecting failed at device %zu\n", i);
      return 1;
    }
    devices.push_back(std::make_shared<device>(io, o, st, i));
    devices.back()->start();
  }
  if (!run_until([&] { return st.ready == o.devices; }, 60)) {
    std::fprintf(stderr, "%zu of %zu devices subscribed\n", st.ready, o.devices);
    return 1;
  }
  double connect_s = std::chrono::duration<double>(clock_type::now() - connect_start).count();
  std::printf("ready\n");
  std::fflush(stdout);
  std::string line;
  std::getline(std::cin, line);  // the caller creates the job now
  auto go = clock_type::now();
  bool all = run_until([&] { return st.notified == o.devices; }, 120);
  double notified_s = std::chrono::duration<double>((all ? st.last_notify : clock_type::now()) - go).count();

  for (auto& d : devices) d->start_updates();
  run_until([] { return false; }, 1.0);  // warm-up
  st.measuring = true;
  auto t0 = clock_type::now();
  run_until([] { return false; }, o.seconds);
  st.measuring = false;
  double secs = std::chrono::duration<double>(clock_type::now() - t0).count();
  st.stop = true;
  std::printf("jobs devices=%zu connect_s=%.1f notified=%zu notified_all_s=%.2f window=%zu updates_per_s=%.0f rejected=%llu errors=%llu\n",
              o.devices, connect_s, st.notified, notified_s, o.window, st.accepted / secs,
              static_cast<unsigned long long>(st.rejected), static_cast<unsigned long long>(st.errors));
  return all && !st.errors ? 0 : 1;
}
