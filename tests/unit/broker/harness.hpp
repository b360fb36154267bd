#pragma once
// The protocol machine (client_connection + broker) through a fake transport: bytes in, bytes out, no
// sockets, no threads; time is a manual clock. The test thread acts as the broker's only worker and
// runs its handlers with poll(). Shared by the broker's unit tests.
#include "broker/broker.hpp"
#include "common/clock.hpp"
#include "mqtt/codec.hpp"

#include <gtest/gtest.h>

#include <boost/asio/post.hpp>

#include <algorithm>
#include <deque>
#include <map>

namespace fleetcore::broker::harness {

using mqtt::reason_code;

/// Keeps nothing and acknowledges every batch at once, or, while `hold`, when the test commits them.
class null_store final : public storage::store {
 public:
  storage::snapshot load() override { return {}; }
  std::vector<storage::document> load_documents(const std::string&) override { return {}; }
  void load_session(std::string client_id, session_read done) override {
    for (const auto& r : node_sessions)
      if (r.client_id == client_id) return done(r, true);
    done(std::nullopt, true);
  }
  void load_node_sessions(std::string node, sessions_read done) override {
    std::vector<storage::session_record> held;
    for (const auto& r : node_sessions)
      if (r.node == node) held.push_back(r);
    done(std::move(held), true);
  }
  void submit(std::vector<storage::operation> ops, std::function<void(bool)> done) override {
    for (auto& op : ops) written.push_back(std::move(op));
    if (!done) return;
    if (hold)
      pending.push_back(std::move(done));
    else
      done(true);
  }
  void flush() override {}
  /// Makes every held batch durable, in order (or fails them all, as a lost database would).
  void commit(bool durable = true) {
    auto batches = std::move(pending);
    pending.clear();
    for (auto& done : batches) done(durable);
  }
  bool hold = false;
  std::vector<std::function<void(bool)>> pending;
  /// What load_node_sessions and load_session read.
  std::vector<storage::session_record> node_sessions;
  /// Every operation submitted, in order.
  std::vector<storage::operation> written;
  /// How many of `written` are an `Op`.
  template <class Op>
  std::size_t count() const {
    return static_cast<std::size_t>(
        std::count_if(written.begin(), written.end(), [](const auto& op) { return std::holds_alternative<Op>(op); }));
  }
};

/// Records what the broker writes and whether it closed the stream.
class fake_connection final : public client_connection {
 public:
  using client_connection::client_connection;

  void feed(const mqtt::packet& p, mqtt::protocol_version v = mqtt::protocol_version::v5) {
    auto bytes = mqtt::encode(p, v);
    on_data(bytes);
  }
  /// The packets written so far, split on their fixed headers.
  std::deque<std::vector<std::uint8_t>> packets() const {
    std::deque<std::vector<std::uint8_t>> out;
    std::size_t i = 0;
    while (i < written.size()) {
      std::size_t len = 0, mult = 1, j = i + 1;
      while (true) {
        len += (written[j] & 0x7F) * mult;
        mult *= 128;
        if (!(written[j++] & 0x80)) break;
      }
      out.emplace_back(written.begin() + i, written.begin() + j + len);
      i = j + len;
    }
    return out;
  }
  std::vector<std::uint8_t> written;
  bool closed = false;

 protected:
  void write_buffers(std::vector<boost::asio::const_buffer> buffers) override {
    for (const auto& b : buffers) {
      auto* p = static_cast<const std::uint8_t*>(b.data());
      written.insert(written.end(), p, p + b.size());
    }
    boost::asio::post(home().io(), [self = shared_from_this()] {
      static_cast<fake_connection&>(*self).on_write_done({});
    });
  }
  void close_transport() override {
    closed = true;
    boost::asio::post(home().io(), [self = shared_from_this()] { self->on_transport_closed(); });
  }
  void start_reading() override {}

 public:
  using client_connection::transport_ready;
};

/// Records the connection hook points.
struct recorder final : broker_hook {
  std::vector<std::string> events;
  std::map<std::string, std::uint64_t> session_ids;
  void on_connected(const session_info& s) override {
    events.push_back("connected " + std::string(s.client_id));
    session_ids[std::string(s.client_id)] = s.session_id;
  }
  void on_disconnected(const session_info& s, disconnect_reason why, bool client) override {
    events.push_back("disconnected " + std::string(s.client_id) + " " + std::string(to_string(why)) +
                     (client ? " client" : ""));
  }
  void on_subscribed(const session_info& s, std::span<const std::string> f) override {
    events.push_back("subscribed " + std::string(s.client_id) + " " + f.front());
  }
};

inline connection_info make_info() {
  connection_info i;
  i.listener = "mqtt";
  i.remote = "127.0.0.1:5000";
  return i;
}

class broker_fixture : public ::testing::Test {
 protected:
  broker_fixture() : b_(config{}, clock_, store_, policy_, 1) {
    b_.add_hook(hooks_);
    b_.workers().front()->adopt_current_thread();
  }
  worker& w() { return *b_.workers().front(); }
  /// `d` later on the manual clock: `c`'s timeouts checked, what they posted run.
  void later(fake_connection& c, std::chrono::milliseconds d) {
    clock_.advance(d);
    c.check_timeouts(clock_.now());
    run();
  }
  void run() {
    for (int i = 0; i < 100; ++i) {
      w().io().restart();
      if (w().io().poll() == 0) return;
    }
  }
  std::shared_ptr<fake_connection> open() {
    auto c = std::make_shared<fake_connection>(b_, w(), make_info());
    w().connections().insert(c);
    return c;
  }
  std::shared_ptr<fake_connection> connect(const std::string& id, std::uint16_t keep_alive = 60,
                                           mqtt::protocol_version v = mqtt::protocol_version::v5,
                                           std::uint32_t session_expiry = 0) {
    auto c = open();
    mqtt::connect_packet p;
    p.version = v;
    p.client_id = id;
    p.keep_alive = keep_alive;
    if (session_expiry) {
      p.clean_start = false;
      p.props.session_expiry_interval = session_expiry;
    }
    c->feed(p, v);
    run();
    auto pk = c->packets();
    EXPECT_FALSE(pk.empty());
    EXPECT_EQ(pk.front()[0], 0x20);  // CONNACK
    c->written.clear();
    return c;
  }

  /// `c` subscribes to `filter`; its SUBACK is checked and cleared.
  void subscribe(fake_connection& c, const std::string& filter, std::uint8_t qos) {
    mqtt::subscribe_packet s;
    s.packet_id = 7;
    s.subscriptions.push_back({filter, qos});
    c.feed(s);
    run();
    auto pk = c.packets();
    ASSERT_FALSE(pk.empty());
    EXPECT_EQ(pk.front()[0], 0x90);  // SUBACK
    c.written.clear();
  }
  static mqtt::publish_packet publish_of(std::string topic, std::string payload, std::uint8_t qos,
                                         std::uint16_t packet_id) {
    mqtt::publish_packet m;
    m.qos = qos;
    m.topic = std::move(topic);
    m.payload = std::move(payload);
    m.packet_id = packet_id;
    return m;
  }

  common::manual_clock clock_;
  null_store store_;
  allow_all_policy policy_;
  recorder hooks_;
  broker b_;
};

}  // namespace fleetcore::broker::harness
