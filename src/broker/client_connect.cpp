// CONNECT: validation, authentication, the session it attaches to, CONNACK.
#include "broker/client_connection.hpp"

#include "broker/broker.hpp"
#include "common/log.hpp"

#include <random>

namespace fleetcore::broker {

using mqtt::reason_code;
using mqtt::protocol_version;

namespace {

std::string random_client_id() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("fc-{:016x}", rng());
}

}  // namespace

void client_connection::handle_connect(mqtt::connect_packet& p) {
  version_ = p.version;
  const auto& cfg = broker_.cfg();
  const bool v5 = version_ == protocol_version::v5;
  // MQTT 3.1.1 has no return code for the rate: closed, as the client would see an overloaded server.
  if (!broker_.admit_connect(info_.remote)) return refuse(reason_code::connection_rate_exceeded, /*answer=*/v5);
  if (p.props.authentication_method) return refuse(reason_code::bad_authentication_method);
  if (p.client_id.empty()) {
    if (!v5 && !p.clean_start) return refuse(reason_code::client_identifier_not_valid);  // [MQTT-3.1.3-8]
    p.client_id = random_client_id();
    assigned_id_ = true;
  }
  if (p.client_id.size() > cfg.max_client_id_length) return refuse(reason_code::client_identifier_not_valid);
  client_id_ = p.client_id;
  if (p.will) {
    const auto& w = *p.will;
    // The will is published later, by the server, but on the client's behalf: the client's rules.
    if (auto rc = broker_.check_publish_topic(w.topic, broker::origin::will); rc != reason_code::success) {
      if (rc == reason_code::not_authorized) broker_.stats().denied.inc();
      return refuse(rc);
    }
    if (w.retain && !cfg.retain_available) return refuse(reason_code::retain_not_supported);
    if (broker_.policy().authorize_publish(info_, client_id_, w.topic, w.retain) != reason_code::success) {
      broker_.stats().denied.inc();
      return refuse(reason_code::not_authorized);
    }
  }
  if (auto rc = broker_.policy().authorize_connect(info_, client_id_); rc != reason_code::success) {
    broker_.stats().denied.inc();
    return refuse(rc);
  }
  keep_alive_ = p.keep_alive;
  if (v5) {
    client_receive_max_ = p.props.receive_maximum.value_or(65535);
    client_max_packet_ = p.props.maximum_packet_size.value_or(0xFFFFFFFF);
    client_alias_max_ = std::min(p.props.topic_alias_maximum.value_or(0), cfg.topic_alias_maximum);
    session_expiry_ = std::min(p.props.session_expiry_interval.value_or(0), cfg.max_session_expiry);
  } else {
    session_expiry_ = p.clean_start ? 0 : 0xFFFFFFFF;
  }
  if (p.will) will_ = std::make_unique<mqtt::will_message>(std::move(*p.will));
  state_ = state::connecting;
  broker_.connect(shared_from_this(), p.clean_start, session_expiry_);
}

void client_connection::attach(std::shared_ptr<session> s, bool session_present) {
  if (state_ != state::connecting) {
    // The client went away while its session moved here: the session goes offline on this worker.
    s->conn = nullptr;
    broker_.detach(*s, nullptr);
    return;
  }
  const auto& cfg = broker_.cfg();
  const bool v5 = version_ == protocol_version::v5;
  session_ = std::move(s);
  session_->conn = this;
  broker_.set_online(*session_, true);
  session_->version = version_;
  session_->expiry_interval = session_expiry_;
  session_->durable = session_expiry_ > 0;
  session_->disconnected_at_ms = 0;
  broker_.touch_session(*session_, true);

  mqtt::connack_packet ack;
  ack.session_present = session_present;
  if (v5) {
    auto& pr = ack.props;
    pr.receive_maximum = cfg.receive_maximum;
    pr.maximum_packet_size = cfg.max_packet_size;
    pr.topic_alias_maximum = cfg.topic_alias_maximum;
    if (!cfg.retain_available) pr.retain_available = 0;
    if (!cfg.wildcard_subscription_available) pr.wildcard_subscription_available = 0;
    if (!cfg.subscription_identifier_available) pr.subscription_identifier_available = 0;
    if (!cfg.shared_subscription_available) pr.shared_subscription_available = 0;
    if (assigned_id_) pr.assigned_client_identifier = client_id_;
    pr.session_expiry_interval = session_expiry_;
  }
  // A client asking for no keep alive, or for more than we allow, gets ours, as on AWS IoT: MQTT 5
  // clients are told (server keep alive, [MQTT-3.2.2-21]); 3.1.1 clients cannot be, but a vanished
  // device must still go offline and its will go out.
  if (cfg.max_keep_alive && (keep_alive_ == 0 || keep_alive_ > cfg.max_keep_alive)) {
    keep_alive_ = cfg.max_keep_alive;
    if (v5) ack.props.server_keep_alive = keep_alive_;
  }
  state_ = state::connected;
  connack_sent_ = true;
  on_authenticated();
  broker_.stats().connects[0].inc();
  send(ack);
  connection_number_ = broker_.next_connection_number();
  for (auto* h : broker_.hooks()) h->on_connected(hook_view());
  FC_LOG_DEBUG("mqtt.connected", "listener={} remote={} client={} v={} present={}", info_.listener, info_.remote,
               common::untrusted(client_id_), static_cast<int>(version_), session_present);

  broker_.resume(*session_);
  // Attached synchronously from inside on_data(): that loop goes on decoding what follows CONNECT.
  if (in_input_) return;
  if (!rbuf_.empty() && !process()) return;
  if (!read_paused_) start_reading();
}

}  // namespace fleetcore::broker
