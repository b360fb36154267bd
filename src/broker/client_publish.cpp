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
  // The window counts what we have not finished acknowledging: QoS 1 publishes waiting for their
  // PUBACK and QoS 2 publishes until their PUBCOMP (the ids held for PUBREL). A QoS 2 retry of an
  // id we hold is not a new publish.
  const std::uint16_t id = p.packet_id;
  const bool duplicate = p.qos == 2 && session_->inbound_qos2.contains(id);
  if (p.qos > 0 && !duplicate && inbound_qos1_pending_ + session_->inbound_qos2.size() >= cfg.receive_maximum)
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

  auto ack_type = p.qos == 2 ? mqtt::packet_type::pubrec : mqtt::packet_type::puback;
  if (duplicate) {
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
  // A QoS 2 id of a persistent session is stored with the message: PUBREC means both are durable.
  std::vector<storage::operation> with_message;
  if (p.qos == 2 && session_->durable)
    with_message.push_back(storage::op::put_inbound_qos2{client_id_, session_->incarnation, id});
  const publish_context ctx{broker::origin::client, client_id_, &info_, now, &with_message};
  std::shared_ptr<session> congested;
  if (p.qos == 0) {
    broker_.publish(worker_, m, ctx, nullptr, &congested);
    if (congested) blocked_on_ = congested;
    return;
  }
  if (p.qos == 2)
    session_->inbound_qos2.insert(id);
  else
    ++inbound_qos1_pending_;
  auto self = weak_from_this();
  broker_.publish(worker_, m, ctx, [self, id, ack_type](bool durable, std::size_t recipients) {
    auto c = self.lock();
    if (!c || c->state_ == state::closed) return;
    if (ack_type == mqtt::packet_type::puback) --c->inbound_qos1_pending_;
    if (!durable) {
      // Refused: the flow ends here, and the id is free for the client's next message.
      if (ack_type == mqtt::packet_type::pubrec) c->session_->inbound_qos2.erase(id);
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
      broker_.released(*session_, p.packet_id, it->second);
      send_pubrel(p.packet_id);
      break;
    }
    case mqtt::packet_type::pubrel: {
      const std::uint16_t id = p.packet_id;
      bool known = session_->inbound_qos2.erase(id) > 0;
      mqtt::ack_packet pubcomp{mqtt::packet_type::pubcomp, id,
                               known || version_ != protocol_version::v5 ? reason_code::success
                                                                         : reason_code::packet_identifier_not_found,
                               {}};
      if (!known || !session_->durable) {
        send(pubcomp);
        break;
      }
      // PUBCOMP frees the id for the client's next message: the stored id must be gone first, or a
      // restart would take that next message for a retry and drop it.
      broker_.forget_inbound_qos2(worker_, *session_, id, [self = weak_from_this(), pubcomp] {
        auto c = self.lock();
        if (c && c->state_ != state::closed) c->send(pubcomp);
      });
      break;
    }
    default: break;
  }
}

}  // namespace fleetcore::broker
