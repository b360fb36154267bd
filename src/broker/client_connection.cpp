// A client connection: bytes in and out, packet dispatch, refusals, close and timeouts. The handlers of
// CONNECT, PUBLISH and SUBSCRIBE live in client_connect.cpp, client_publish.cpp and client_subscribe.cpp.
#include "broker/client_connection.hpp"

#include "broker/broker.hpp"
#include "common/log.hpp"
#include "mqtt/wire.hpp"

namespace fleetcore::broker {

using mqtt::reason_code;
using mqtt::protocol_version;

namespace {

/// The lifecycle-event reason of a disconnect the server initiated (or a lost connection).
disconnect_reason disconnect_reason_of(reason_code rc) {
  switch (rc) {
    case reason_code::session_taken_over: return disconnect_reason::duplicate_client_id;
    case reason_code::keep_alive_timeout: return disconnect_reason::keep_alive_timeout;
    case reason_code::not_authorized: return disconnect_reason::auth_error;
    case reason_code::server_shutting_down: return disconnect_reason::server_initiated;
    case reason_code::unspecified_error: return disconnect_reason::connection_lost;  // transport closed
    case reason_code::quota_exceeded:
    case reason_code::message_rate_too_high: return disconnect_reason::throttled;
    case reason_code::implementation_specific_error: return disconnect_reason::server_error;
    default: return disconnect_reason::client_error;  // malformed packets, protocol errors, limits
  }
}

connect_result classify(reason_code rc) {
  switch (rc) {
    case reason_code::success: return connect_result::success;
    case reason_code::malformed_packet:
    case reason_code::protocol_error: return connect_result::protocol_error;
    case reason_code::unsupported_protocol_version: return connect_result::unsupported_version;
    case reason_code::client_identifier_not_valid: return connect_result::bad_client_id;
    case reason_code::not_authorized: return connect_result::not_authorized;
    case reason_code::bad_authentication_method: return connect_result::bad_auth_method;
    case reason_code::server_unavailable:
    case reason_code::server_busy: return connect_result::server_unavailable;
    case reason_code::connection_rate_exceeded: return connect_result::rate_limited;
    default: return connect_result::other;
  }
}

}  // namespace

// --- output ---

void client_connection::out_batch::append(const std::uint8_t* p, std::size_t n) {
  if (!segments.empty() && segments.back().ext == nullptr &&
      segments.back().off + segments.back().len == arena.size()) {
    segments.back().len += n;
  } else {
    segments.push_back({nullptr, arena.size(), n});
  }
  arena.insert(arena.end(), p, p + n);
  bytes += n;
}

void client_connection::out_batch::append_ref(std::string_view s) {
  if (s.empty()) return;
  segments.push_back({reinterpret_cast<const std::uint8_t*>(s.data()), 0, s.size()});
  bytes += s.size();
}

void client_connection::out_batch::clear() {
  segments.clear();
  refs.clear();
  bytes = 0;
  // Idle connections should not keep a large arena.
  if (arena.capacity() > 64 * 1024) {
    std::vector<std::uint8_t>().swap(arena);
  } else {
    arena.clear();
  }
}

void client_connection::out_batch::release() {
  clear();
  std::vector<std::uint8_t>().swap(arena);
  std::vector<segment>().swap(segments);
  std::vector<message_ptr>().swap(refs);
}

client_connection::client_connection(broker& b, worker& w, connection_info info)
    : broker_(b), worker_(w), info_(std::move(info)) {
  last_rx_ = opened_ = broker_.clock().now();
  broker_.stats().connections.add();
}

client_connection::~client_connection() { broker_.stats().connections.sub(); }

void client_connection::send(const mqtt::packet& p) {
  if (state_ == state::closed) return;
  thread_local std::vector<std::uint8_t> buf;
  buf.clear();
  mqtt::encode(p, version_, buf);
  pending_.append(buf.data(), buf.size());
  request_flush();
}

bool client_connection::send_publish(const delivery& d, std::uint16_t packet_id, bool dup) {
  if (state_ != state::connected) return true;  // closing: the message stays inflight/queued
  const message& m = *d.msg;
  const bool v5 = version_ == protocol_version::v5;
  // Per-recipient MQTT 5 properties (remaining expiry, subscription identifiers) go in front of the
  // message's shared ones. Both buffers are reused, so sending allocates nothing once warm.
  thread_local std::vector<std::uint8_t> props, head;
  props.clear();
  // Topic aliases toward the client, up to its Topic Alias Maximum (and ours): a topic's first
  // message carries the topic and the alias it gets, the following ones only the alias. Aliases go
  // to topics first come, first served, and stay for the connection.
  std::string_view topic = m.topic;
  std::uint16_t alias = 0;
  bool new_alias = false;
  if (client_alias_max_) {
    if (!out_aliases_) out_aliases_ = std::make_unique<std::map<std::string, std::uint16_t, std::less<>>>();
    if (auto it = out_aliases_->find(m.topic); it != out_aliases_->end()) {
      alias = it->second;
      topic = {};
    } else if (out_aliases_->size() < client_alias_max_) {
      alias = static_cast<std::uint16_t>(out_aliases_->size() + 1);
      new_alias = true;
    }
  }
  if (v5) {
    mqtt::wire::writer w(props);
    if (alias) {
      w.u8(0x23);
      w.u16(alias);
    }
    if (m.expiry_at_ms) {
      std::int64_t left = (m.expiry_at_ms - broker_.clock().wall_ms() + 999) / 1000;
      w.u8(0x02);
      w.u32(static_cast<std::uint32_t>(std::max<std::int64_t>(left, 1)));
    }
    for (auto id : d.subscription_ids) {
      w.u8(0x0B);
      w.varint(id);
    }
  }
  const std::size_t all_props = props.size() + (v5 ? m.forward_props.size() : 0);
  const std::size_t remaining = 2 + topic.size() + (d.qos ? 2 : 0) +
                                (v5 ? mqtt::wire::varint_size(static_cast<std::uint32_t>(all_props)) + all_props : 0) +
                                m.payload.size();
  if (remaining > mqtt::wire::max_varint ||
      mqtt::fixed_header_size(static_cast<std::uint32_t>(remaining)) + remaining > client_max_packet_)
    return false;
  if (new_alias) out_aliases_->emplace(m.topic, alias);

  // Fixed header, topic, packet id and property length are copied; properties and payload shared.
  head.clear();
  mqtt::wire::writer h(head);
  h.u8(static_cast<std::uint8_t>(0x30 | (dup ? 0x08 : 0) | (d.qos << 1) | (d.retain ? 1 : 0)));
  h.varint(static_cast<std::uint32_t>(remaining));
  h.binary(topic);
  if (d.qos) h.u16(packet_id);
  if (v5) {
    h.varint(static_cast<std::uint32_t>(all_props));
    head.insert(head.end(), props.begin(), props.end());
  }
  pending_.append(head.data(), head.size());
  if (v5) pending_.append_ref(m.forward_props);
  pending_.append_ref(m.payload);
  pending_.refs.push_back(d.msg);
  request_flush();
  if (session_ && !session_->congested_since.load(std::memory_order_relaxed) &&
      outbound_bytes() * 2 >= broker_.cfg().max_outbound_bytes)
    broker_.update_congestion(*session_);
  return true;
}

void client_connection::send_pubrel(std::uint16_t packet_id) {
  send(mqtt::ack_packet{mqtt::packet_type::pubrel, packet_id, reason_code::success, {}});
}

void client_connection::request_flush() {
  // Cork: everything produced while this handler runs (a whole read batch of publishes, say) goes
  // out in one write, after it returns.
  if (flush_scheduled_ || write_in_flight_ || state_ == state::closed) return;
  flush_scheduled_ = true;
  worker_.post([self = shared_from_this()] {
    self->flush_scheduled_ = false;
    self->flush();
  });
}

void client_connection::flush() {
  if (write_in_flight_ || pending_.bytes == 0 || state_ == state::closed) return;
  std::swap(pending_, writing_);
  writing_bytes_ = writing_.bytes;
  std::vector<boost::asio::const_buffer> bufs;
  bufs.reserve(writing_.segments.size());
  for (const auto& s : writing_.segments)
    bufs.emplace_back(s.ext ? s.ext : writing_.arena.data() + s.off, s.len);
  write_in_flight_ = true;
  broker_.stats().bytes_out.inc(writing_bytes_);
  write_buffers(std::move(bufs));
}

void client_connection::on_write_done(const boost::system::error_code& ec) {
  write_in_flight_ = false;
  writing_.clear();
  writing_bytes_ = 0;
  if (ec) {
    if (state_ != state::closed) close_transport();
    return;
  }
  if (state_ == state::closing) {
    if (pending_.bytes) {
      flush();
    } else {
      close_transport();
    }
    return;
  }
  flush();
  if (session_ && session_->congested_since.load(std::memory_order_relaxed)) broker_.update_congestion(*session_);
}

// --- input ---

std::optional<std::size_t> client_connection::decode_packets(std::span<const std::uint8_t> data) {
  std::size_t used = 0;
  while (!read_paused_ && state_ != state::closing && state_ != state::closed) {
    auto r = mqtt::decode(data.subspan(used), version_, broker_.cfg().max_packet_size);
    if (r.state == mqtt::decode_result::status::need_more) break;
    if (r.state == mqtt::decode_result::status::error) {
      protocol_violation(r.error, "decode");
      return std::nullopt;
    }
    used += r.consumed;
    // Paused (back-pressure, rate limit, CONNECT in progress) or closing: what follows is kept.
    if (!handle(r.pkt)) break;
  }
  return used;
}

bool client_connection::wants_input() const noexcept {
  return !read_paused_ && state_ != state::connecting && state_ != state::closing && state_ != state::closed;
}

bool client_connection::on_data(std::span<const std::uint8_t> data) {
  if (state_ == state::closing || state_ == state::closed) return false;
  input_guard guard(in_input_);
  broker_.stats().bytes_in.inc(data.size());
  last_rx_ = broker_.clock().now();
  if (!rbuf_.empty()) {
    rbuf_.insert(rbuf_.end(), data.begin(), data.end());
    return process();
  }
  // Decode straight from the transport's buffer; keep only what was not consumed.
  auto used = decode_packets(data);
  if (!used || state_ == state::closing || state_ == state::closed) return false;
  rbuf_.assign(data.begin() + static_cast<std::ptrdiff_t>(*used), data.end());
  return wants_input();
}

bool client_connection::process() {
  input_guard guard(in_input_);
  auto used = decode_packets(rbuf_);
  if (!used || state_ == state::closed) return false;
  rbuf_.erase(rbuf_.begin(), rbuf_.begin() + static_cast<std::ptrdiff_t>(*used));
  if (rbuf_.empty() && rbuf_.capacity() > 4096) std::vector<std::uint8_t>().swap(rbuf_);
  return wants_input();
}

void client_connection::resume_reading() {
  if (!read_paused_ || state_ == state::closing || state_ == state::closed) return;
  read_paused_ = false;
  if (!rbuf_.empty() && !process()) return;
  if (!read_paused_) start_reading();
}

bool client_connection::handle(mqtt::packet& p) {
  if (state_ == state::awaiting_connect) {
    if (auto* c = std::get_if<mqtt::connect_packet>(&p)) {
      handle_connect(*c);
      return state_ == state::connected;  // stop reading until the session is attached
    }
    protocol_violation(reason_code::protocol_error, "first packet is not CONNECT");
    return false;
  }
  if (state_ != state::connected) return false;
  return std::visit(
      [&](auto& pkt) -> bool {
        using T = std::decay_t<decltype(pkt)>;
        if constexpr (std::is_same_v<T, mqtt::publish_packet>) {
          handle_publish(pkt);
          // Back-pressure: stop reading a publisher while memory is tight or a recipient of what it
          // just sent is congested. Not while it owes us acknowledgements (it could not drain).
          if (state_ == state::connected && !read_paused_ && session_ && session_->inflight.empty() &&
              (blocked() || broker_.under_pressure())) {
            broker_.stats().pressure_pauses.inc();
            read_paused_ = true;
            broker_.pause_for_pressure(*this);
          }
        } else if constexpr (std::is_same_v<T, mqtt::ack_packet>) {
          handle_ack(pkt);
        } else if constexpr (std::is_same_v<T, mqtt::subscribe_packet>) {
          handle_subscribe(pkt);
        } else if constexpr (std::is_same_v<T, mqtt::unsubscribe_packet>) {
          handle_unsubscribe(pkt);
        } else if constexpr (std::is_same_v<T, mqtt::pingreq_packet>) {
          send(mqtt::pingresp_packet{});
        } else if constexpr (std::is_same_v<T, mqtt::disconnect_packet>) {
          handle_disconnect(pkt);
          return false;
        } else if constexpr (std::is_same_v<T, mqtt::connect_packet>) {
          protocol_violation(reason_code::protocol_error, "second CONNECT");  // [MQTT-3.1.0-2]
          return false;
        } else {
          // AUTH without an authentication method, or a packet only a server sends.
          protocol_violation(reason_code::protocol_error, "unexpected packet");
          return false;
        }
        return state_ == state::connected && !read_paused_;
      },
      p);
}

void client_connection::protocol_violation(reason_code rc, std::string_view what) {
  broker_.stats().protocol_errors.inc();
  FC_LOG_INFO("mqtt.protocol_violation", "listener={} remote={} client={} rc=0x{:02x} reason=\"{}\" what=\"{}\"",
              info_.listener, info_.remote, common::untrusted(client_id_), static_cast<int>(rc), mqtt::to_string(rc), what);
  if (state_ == state::awaiting_connect) {
    broker_.stats().connects[static_cast<std::size_t>(classify(rc))].inc();
    if (rc == reason_code::unsupported_protocol_version) {
      // Answer in the version the client can read: a 3.1.1 CONNACK with return code 1 [MQTT-3.1.2-2].
      version_ = protocol_version::v311;
      send(mqtt::connack_packet{false, rc, {}});
      state_ = state::closing;
      read_paused_ = true;
      drain_and_close();
      return;
    }
  }
  close(rc);
}

void client_connection::refuse(reason_code rc, bool answer) {
  broker_.stats().connects[static_cast<std::size_t>(classify(rc))].inc();
  FC_LOG_INFO("mqtt.connect_refused", "listener={} remote={} client={} rc=0x{:02x}", info_.listener, info_.remote,
              common::untrusted(client_id_), static_cast<int>(rc));
  if (answer) {
    mqtt::connack_packet ack{false, rc, {}};
    if (version_ == protocol_version::v5) ack.props.reason_string = std::string(mqtt::to_string(rc));
    send(ack);
    connack_sent_ = true;
  }
  will_.reset();
  state_ = state::closing;
  read_paused_ = true;
  drain_and_close();
}

void client_connection::handle_disconnect(const mqtt::disconnect_packet& p) {
  client_disconnected_ = true;
  if (version_ == protocol_version::v5) {
    if (p.props.session_expiry_interval) {
      if (session_expiry_ == 0 && *p.props.session_expiry_interval != 0)
        return protocol_violation(reason_code::protocol_error, "session expiry raised from 0");  // [MQTT-3.14.2-2]
      session_expiry_ = std::min(*p.props.session_expiry_interval, broker_.cfg().max_session_expiry);
      session_->expiry_interval = session_expiry_;
    }
    if (p.reason == reason_code::disconnect_with_will) {
      close(reason_code::success);  // keeps the will
      return;
    }
  }
  normal_disconnect_ = true;
  will_.reset();  // [MQTT-3.14.4-3]
  close(reason_code::success);
}

void client_connection::close(reason_code rc) {
  if (state_ == state::closing || state_ == state::closed) return;
  const bool was_connected = state_ == state::connected;
  if (was_connected && version_ == protocol_version::v5 && static_cast<std::uint8_t>(rc) >= 0x80) {
    mqtt::disconnect_packet d{rc, {}};
    d.props.reason_string = std::string(mqtt::to_string(rc));
    send(d);
  }
  state_ = state::closing;
  read_paused_ = true;
  if (was_connected && session_) {
    auto why = client_disconnected_ ? disconnect_reason::client_initiated : disconnect_reason_of(rc);
    for (auto* h : broker_.hooks()) h->on_disconnected(hook_view(), why, client_disconnected_);
  }
  if (session_) {
    auto s = std::move(session_);
    broker_.detach(*s, normal_disconnect_ ? nullptr : std::move(will_));
  }
  will_.reset();
  drain_and_close();
}

session_info client_connection::hook_view() const {
  return {client_id_, info_, session_ ? session_->incarnation : 0, connection_number_};
}

void client_connection::drain_and_close() {
  // Writes what is pending (a DISCONNECT or CONNACK with the reason); on_write_done() then closes.
  if (write_in_flight_) return;
  if (pending_.bytes)
    flush();
  else
    close_transport();
}

void client_connection::on_transport_closed() {
  if (state_ == state::closed) return;
  if (state_ != state::closing) {
    // The peer went away without DISCONNECT: the will is published.
    close(reason_code::unspecified_error);
  }
  state_ = state::closed;
  pending_.clear();
  auto self = shared_from_this();
  worker_.connections().erase(self);
}

void client_connection::transport_ready() {
  opened_ = broker_.clock().now();
  transport_ready_ = true;
}

void client_connection::check_timeouts(std::chrono::steady_clock::time_point now) {
  using namespace std::chrono;
  // A transport's handshakes (TLS, WebSocket upgrade) may wait behind thousands of others when a fleet
  // reconnects at once: 30 s from accept for them, then 10 s for CONNECT.
  if (state_ == state::awaiting_connect && now - opened_ > (transport_ready_ ? seconds(10) : seconds(30))) {
    FC_LOG_INFO("mqtt.connect_timeout", "remote={}", info_.remote);
    close(reason_code::maximum_connect_time);
    return;
  }
  if (state_ == state::connected && keep_alive_ > 0 && now - last_rx_ > milliseconds(keep_alive_ * 1500)) {
    broker_.stats().keepalive_timeouts.inc();
    FC_LOG_INFO("mqtt.keepalive_timeout", "client={} keepalive={}", common::untrusted(client_id_), keep_alive_);
    close(reason_code::keep_alive_timeout);
    return;
  }
  if (state_ == state::closing && now - last_rx_ > seconds(5)) close_transport();  // peer not reading
  // Quiet for a second and nothing to write: the write batches' buffers go back to the heap, so an
  // idle connection keeps none (a busy one reallocates them at most once a second).
  if (state_ == state::connected && !write_in_flight_ && pending_.bytes == 0 && now - last_rx_ >= seconds(1)) {
    pending_.release();
    writing_.release();
  }
}

}  // namespace fleetcore::broker
