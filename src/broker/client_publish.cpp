// PUBLISH from a client and the acknowledgements of both directions (PUBACK, PUBREC, PUBREL, PUBCOMP).
#include "broker/client_connection.hpp"

#include "broker/broker.hpp"
#include "common/log.hpp"

namespace fleetcore::broker {

using mqtt::reason_code;
using mqtt::protocol_version;

bool client_connection::blocked() const {
  auto s = blocked_on_.lock();
  return s && broker_.holds_back_publishers(*s);
}

bool client_connection::rate_limited() const {
  auto max = broker_.cfg().max_publish_rate;
  return max && rate_count_ >= max && broker_.clock().now() - rate_window_ < std::chrono::seconds(1);
}

void client_connection::handle_publish(mqtt::publish_packet& p) {
  const auto& cfg = broker_.cfg();
  const bool v5 = version_ == protocol_version::v5;
  broker_.stats().messages_in[p.qos].inc();
  broker_.stats().payload_bytes_in[p.qos].inc(p.payload.size());
  if (v5 && p.props.topic_alias) {
    std::uint16_t alias = *p.props.topic_alias;
    if (alias > cfg.topic_alias_maximum) return protocol_violation(reason_code::topic_alias_invalid, "alias");
    if (aliases_.empty()) aliases_.resize(cfg.topic_alias_maximum + 1u);
    if (p.topic.empty()) {
      if (aliases_[alias].empty()) return protocol_violation(reason_code::protocol_error, "unknown alias");
      p.topic = aliases_[alias];
    } else {
      aliases_[alias] = p.topic;
    }
  }
  const auto topic_rc = broker_.check_publish_topic(p.topic, broker::origin::client);
  if (topic_rc == reason_code::topic_name_invalid) return protocol_violation(topic_rc, "topic");
  if (p.retain && !cfg.retain_available) return protocol_violation(reason_code::retain_not_supported, "retain");
  if (p.qos > 0 && inbound_pending_ + session_->inbound_qos2.size() >= cfg.receive_maximum)
    return protocol_violation(reason_code::receive_maximum_exceeded, "receive maximum");
  if (cfg.max_publish_rate) {
    auto now = broker_.clock().now();
    if (now - rate_window_ >= std::chrono::seconds(1)) {
      rate_window_ = now;
      rate_count_ = 0;
    }
    if (++rate_count_ >= cfg.max_publish_rate && !read_paused_) {
      broker_.stats().rate_limited.inc();
      read_paused_ = true;
      broker_.pause_for_pressure(*this);
    }
  }

  const std::uint16_t id = p.packet_id;
  auto ack_type = p.qos == 2 ? mqtt::packet_type::pubrec : mqtt::packet_type::puback;
  if (p.qos == 2 && session_->inbound_qos2.contains(id)) {
    send(mqtt::ack_packet{ack_type, id, reason_code::success, {}});  // duplicate: acknowledge only
    return;
  }
  bool denied = topic_rc != reason_code::success ||
                broker_.policy().authorize_publish(info_, client_id_, p.topic, p.retain) != reason_code::success;
  if (denied) {
    broker_.stats().denied.inc();
    FC_LOG_INFO("mqtt.publish_denied", "client={} topic={}", common::untrusted(client_id_), common::untrusted(p.topic));
    if (p.qos > 0) send(mqtt::ack_packet{ack_type, id, reason_code::not_authorized, {}});
    return;
  }
  const auto now = broker_.clock().wall_ms();
  auto m = make_message(std::move(p.topic), std::move(p.payload), p.qos, p.retain, p.props, now, session_->incarnation);
  const publish_context ctx{broker::origin::client, client_id_, &info_, now};
  std::shared_ptr<session> congested;
  if (p.qos == 0) {
    broker_.publish(worker_, m, ctx, nullptr, &congested);
    if (congested) blocked_on_ = congested;
    return;
  }
  if (p.qos == 2) session_->inbound_qos2.insert(id);
  ++inbound_pending_;
  auto self = weak_from_this();
  broker_.publish(worker_, m, ctx, [self, id, ack_type](bool durable, std::size_t recipients) {
    auto c = self.lock();
    if (!c || c->state_ == state::closed) return;
    --c->inbound_pending_;
    if (!durable) {
      if (c->version_ == protocol_version::v5)
        c->send(mqtt::ack_packet{ack_type, id, reason_code::unspecified_error, {}});
      else
        c->close(reason_code::unspecified_error);
      return;
    }
    reason_code rc = reason_code::success;
    if (recipients == 0 && c->version_ == protocol_version::v5) rc = reason_code::no_matching_subscribers;
    c->send(mqtt::ack_packet{ack_type, id, rc, {}});
  }, &congested);
  if (congested) blocked_on_ = congested;
}

void client_connection::handle_ack(const mqtt::ack_packet& p) {
  switch (p.type) {
    case mqtt::packet_type::puback:
    case mqtt::packet_type::pubcomp: broker_.complete(*session_, p.packet_id); break;
    case mqtt::packet_type::pubrec: {
      auto it = session_->inflight.find(p.packet_id);
      if (it == session_->inflight.end()) {
        if (version_ == protocol_version::v5)
          send(mqtt::ack_packet{mqtt::packet_type::pubrel, p.packet_id, reason_code::packet_identifier_not_found, {}});
        break;
      }
      if (static_cast<std::uint8_t>(p.reason) >= 0x80) {
        broker_.complete(*session_, p.packet_id);  // receiver refused it: the flow ends here
        break;
      }
      it->second.st = inflight_entry::state::awaiting_pubcomp;
      send_pubrel(p.packet_id);
      break;
    }
    case mqtt::packet_type::pubrel: {
      bool known = session_->inbound_qos2.erase(p.packet_id) > 0;
      send(mqtt::ack_packet{mqtt::packet_type::pubcomp, p.packet_id,
                            known || version_ != protocol_version::v5 ? reason_code::success
                                                                      : reason_code::packet_identifier_not_found,
                            {}});
      break;
    }
    default: break;
  }
}

}  // namespace fleetcore::broker
