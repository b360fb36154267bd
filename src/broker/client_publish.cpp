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
  const auto held = p.qos == 2 ? session_->inbound_qos2.find(id) : session_->inbound_qos2.end();
  const bool duplicate = held != session_->inbound_qos2.end();
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
    // A retry: acknowledged again once the first copy is stored — now if it is, else by the
    // commit's completion (to whichever connection the session has then).
    if (held->second) send(mqtt::ack_packet{ack_type, id, reason_code::success, {}});
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
  const publish_context ctx{broker::origin::client, client_id_, &info_, now,
                            with_message.empty() ? nullptr : &with_message};
  std::shared_ptr<session> congested;
  if (p.qos == 0) {
    broker_.publish(worker_, m, ctx, nullptr, &congested);
    if (congested) blocked_on_ = congested;
    return;
  }
  // The acknowledgement once the message (and a QoS 2 id) is stored, or its refusal.
  auto answer = [id, ack_type](client_connection& c, bool durable, std::size_t recipients) {
    if (!durable) {
      if (c.version_ == protocol_version::v5)
        c.send(mqtt::ack_packet{ack_type, id, reason_code::unspecified_error, {}});
      else
        c.close(reason_code::unspecified_error);
      return;
    }
    reason_code rc = reason_code::success;
    if (recipients == 0 && c.version_ == protocol_version::v5) rc = reason_code::no_matching_subscribers;
    c.send(mqtt::ack_packet{ack_type, id, rc, {}});
  };
  if (p.qos == 1) {
    ++inbound_qos1_pending_;
    broker_.publish(worker_, m, ctx, [self = weak_from_this(), answer](bool durable, std::size_t recipients) {
      auto c = self.lock();
      if (!c || c->state_ == state::closed) return;
      --c->inbound_qos1_pending_;
      answer(*c, durable, recipients);
    }, &congested);
  } else {
    // QoS 2: the id is the session's (a retry may come on a later connection). PUBREC goes to the
    // session's connection of the moment; a refusal frees the id for the client's next message.
    session_->inbound_qos2.emplace(id, false);
    broker_.publish(worker_, m, ctx, [b = &broker_, ws = std::weak_ptr<session>(session_), id, answer](
                                         bool durable, std::size_t recipients) {
      auto s = ws.lock();
      if (!s) return;
      b->on_home(s, [s, id, durable, recipients, answer] {
        auto it = s->inbound_qos2.find(id);
        if (it == s->inbound_qos2.end() || it->second) return;
        if (durable)
          it->second = true;
        else
          s->inbound_qos2.erase(it);
        if (s->conn && s->conn->state_ == state::connected) answer(*s->conn, durable, recipients);
      });
    }, &congested);
  }
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
      broker_.released(*session_, p.packet_id, it->second);  // sends the PUBREL
      break;
    }
    case mqtt::packet_type::pubrel: {
      const std::uint16_t id = p.packet_id;
      bool known = session_->inbound_qos2.erase(id) > 0;
      mqtt::ack_packet pubcomp{mqtt::packet_type::pubcomp, id,
                               known || version_ != protocol_version::v5 ? reason_code::success
                                                                         : reason_code::packet_identifier_not_found,
                               {}};
      if (!session_->durable) {
        send(pubcomp);
        break;
      }
      // PUBCOMP frees the id for the client's next message: the stored id must be gone first, or a
      // restart would take that next message for a retry and drop it. Also for a PUBREL repeated
      // after a reconnect (not held any more): the first one's delete may still be on its way.
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
