// streambench: MQTT-based file delivery to a fleet downloading at once.
//
//   streambench --port P --devices N --stream S --size BYTES [--block L] [--per-request K] [--limit-s T]
//
// N devices connect (client id and thing `bench-<k>`, at most 100 CONNECTs outstanding), subscribe
// at QoS 0 to their stream's data/cbor and rejected/cbor, then the tool prints `ready` and waits for a
// line on stdin (the caller samples the server's memory then). Every device then downloads file 0 of
// stream S (BYTES long) as the FreeRTOS OTA agent does, in CBOR: GetStream requests of K blocks of L
// bytes from an offset, the next request once the K blocks of the previous one arrived, until it has
// every block. Prints the time until every device has the whole file, blocks/s and MB/s delivered.
// Bounded in time: gives up after T seconds.
#include "frames.hpp"
#include "mqtt/codec.hpp"

#include <CLI/CLI.hpp>
#include <boost/asio.hpp>

#include <chrono>
#include <cstdio>
#include <cstring>
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
  std::size_t devices = 1000;
  std::string stream = "bench-stream";
  std::uint64_t size = 1 << 20;
  std::uint32_t block = 4096;
  std::uint32_t per_request = 32;
  double limit_s = 300;
};

struct shared_stats {
  std::size_t connecting = 0, ready = 0, done = 0;
  std::uint64_t blocks = 0, bytes = 0, rejected = 0, errors = 0;
  bool stop = false;
  clock_type::time_point last_done;
};

/// A CBOR unsigned integer head of major type `major` (0: integer, 2: byte string, 3: text).
void cbor_head(std::string& out, unsigned major, std::uint64_t v) {
  const auto m = static_cast<char>(major << 5);
  if (v < 24) {
    out += static_cast<char>(m | static_cast<char>(v));
  } else if (v < 256) {
    out += static_cast<char>(m | 24);
    out += static_cast<char>(v);
  } else if (v < 65536) {
    out += static_cast<char>(m | 25);
    out += static_cast<char>(v >> 8);
    out += static_cast<char>(v);
  } else {
    out += static_cast<char>(m | 26);
    for (int s = 24; s >= 0; s -= 8) out += static_cast<char>(v >> s);
  }
}

/// The block id and payload length of a data/cbor answer {f, l, i, p} (single-letter keys).
bool parse_block(const std::uint8_t* p, std::size_t n, std::uint64_t& id, std::uint64_t& length) {
  std::size_t at = 0;
  auto head = [&](unsigned& major, std::uint64_t& v) {
    if (at >= n) return false;
    major = p[at] >> 5;
    unsigned info = p[at++] & 31;
    if (info < 24) {
      v = info;
      return true;
    }
    const std::size_t bytes = info == 24 ? 1 : info == 25 ? 2 : info == 26 ? 4 : info == 27 ? 8 : 0;
    if (!bytes || at + bytes > n) return false;
    v = 0;
    for (std::size_t k = 0; k < bytes; ++k) v = v << 8 | p[at++];
    return true;
  };
  unsigned major = 0;
  std::uint64_t entries = 0;
  if (!head(major, entries) || major != 5) return false;
  bool got_id = false, got_payload = false;
  for (std::uint64_t e = 0; e < entries; ++e) {
    std::uint64_t v = 0;
    if (!head(major, v) || major != 3 || v != 1 || at >= n) return false;
    const char key = static_cast<char>(p[at++]);
    if (!head(major, v)) return false;
    if (major == 2 || major == 3) {
      if (key == 'p') {
        length = v;
        got_payload = true;
      }
      at += v;
    } else if (key == 'i') {
      id = v;
      got_id = true;
    }
  }
  return got_id && got_payload && at <= n;
}

class device : public std::enable_shared_from_this<device> {
 public:
  device(asio::io_context& io, const options& o, shared_stats& st, std::size_t index)
      : sock_(io), opt_(o), st_(st), thing_("bench-" + std::to_string(index)),
        base_("$aws/things/" + thing_ + "/streams/" + o.stream + "/"),
        total_blocks_((o.size + o.block - 1) / o.block) {}

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

  void download() { request(); }

 private:
  void fail(const char* what) {
    if (!st_.stop) {
      ++st_.errors;
      if (st_.errors < 10) std::fprintf(stderr, "%s: %s\n", thing_.c_str(), what);
    }
    boost::system::error_code ec;
    sock_.close(ec);
  }

  void request() {
    if (st_.stop || next_ >= total_blocks_) return;
    expected_ = std::min<std::uint64_t>(opt_.per_request, total_blocks_ - next_);
    std::string cbor;
    cbor_head(cbor, 5, 4);
    for (auto [key, value] : {std::pair{'f', std::uint64_t(0)}, std::pair{'l', std::uint64_t(opt_.block)},
                              std::pair{'o', next_}, std::pair{'n', expected_}}) {
      cbor_head(cbor, 3, 1);
      cbor += key;
      cbor_head(cbor, 0, value);
    }
    mqtt::publish_packet p;
    p.topic = base_ + "get/cbor";
    p.payload = std::move(cbor);
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
        mqtt::subscribe_packet s;
        s.packet_id = 1;
        s.subscriptions.push_back({base_ + "data/cbor", 0});
        s.subscriptions.push_back({base_ + "rejected/cbor", 0});
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
        if (topic.ends_with("/rejected/cbor")) {
          ++st_.rejected;
          return fail("rejected");
        }
        std::uint64_t id = 0, length = 0;
        if (!parse_block(body + off, len - off, id, length)) return fail("block");
        ++st_.blocks;
        st_.bytes += length;
        if (--expected_ > 0) return;
        next_ += opt_.per_request;
        if (next_ >= total_blocks_) {
          ++st_.done;
          st_.last_done = clock_type::now();
          return;
        }
        request();
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
  std::string thing_, base_;
  std::uint64_t total_blocks_, next_ = 0, expected_ = 0;
  std::vector<std::uint8_t> out_, wbuf_, rbuf_ = std::vector<std::uint8_t>(16384);
  std::size_t rlen_ = 0;
  bool writing_ = false;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"streambench: a file delivered over MQTT streams to a fleet at once"};
  options o;
  app.add_option("--port", o.port)->required();
  app.add_option("--devices", o.devices);
  app.add_option("--stream", o.stream);
  app.add_option("--size", o.size, "bytes of the stream's file 0");
  app.add_option("--block", o.block, "block size (256-131072)");
  app.add_option("--per-request", o.per_request, "blocks per GetStream request");
  app.add_option("--limit-s", o.limit_s, "give up after this many seconds");
  CLI11_PARSE(app, argc, argv);

  asio::io_context io;
  shared_stats st;
  std::vector<std::shared_ptr<device>> devices;
  auto run_until = [&](auto done, double limit_s) {
    auto deadline = clock_type::now() + std::chrono::duration<double>(limit_s);
    while (!done() && clock_type::now() < deadline) io.run_for(std::chrono::milliseconds(5));
    return done();
  };
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
  std::printf("ready\n");
  std::fflush(stdout);
  std::string line;
  std::getline(std::cin, line);
  auto go = clock_type::now();
  for (auto& d : devices) d->download();
  bool all = run_until([&] { return st.done == o.devices || st.errors; }, o.limit_s) && !st.errors;
  double secs = std::chrono::duration<double>((all ? st.last_done : clock_type::now()) - go).count();
  st.stop = true;
  std::printf("streams devices=%zu size=%llu block=%u per_request=%u all_s=%.2f blocks_per_s=%.0f mb_per_s=%.1f "
              "done=%zu rejected=%llu errors=%llu\n",
              o.devices, static_cast<unsigned long long>(o.size), o.block, o.per_request, secs, st.blocks / secs,
              st.bytes / secs / 1e6, st.done, static_cast<unsigned long long>(st.rejected),
              static_cast<unsigned long long>(st.errors));
  return all ? 0 : 1;
}
