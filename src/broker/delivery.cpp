// Delivery to one session on its home worker: the in-flight window, the queue, drops and backlog accounting.
#include "broker/broker.hpp"

#include "broker/internal.hpp"
#include "common/log.hpp"

#include <algorithm>

namespace fleetcore::broker {

using detail::delivery_bytes;

std::shared_ptr<session> broker::session_of(const std::string& client_id, std::uint64_t session_id) {
  std::lock_guard lock(sessions_mutex_);
  auto it = sessions_.find(client_id);
  return it != sessions_.end() && it->second->incarnation == session_id ? it->second : nullptr;
}

void broker::deliver_to(const std::string& client_id, std::uint64_t session_id, message_ptr m) {
  auto s = session_of(client_id, session_id);
  if (!s) return;
  on_home(s, [this, s, m = std::move(m)] {
    if (s->ended) return;
    std::optional<delivery> d;
    for (const auto& [filter, opts] : s->subscriptions) {
      auto shared = mqtt::parse_shared(filter);
      if (!mqtt::topic_matches(shared ? shared->filter : std::string_view(filter), m->topic)) continue;
      std::uint8_t qos = std::min(m->qos, opts.qos);
      if (!d) d = delivery{m, qos, false, {}, 0};
      d->qos = std::max(d->qos, qos);
      if (opts.subscription_id) d->subscription_ids.push_back(opts.subscription_id);
    }
    if (d) deliver(*s, std::move(*d));
  });
}

void broker::behind_session(const std::string& client_id, std::uint64_t session_id, std::function<void()> fn) {
  auto s = session_of(client_id, session_id);
  if (!s) return fn();
  s->home.load(std::memory_order_acquire)->post(std::move(fn));
}

namespace {
std::size_t window(const config& cfg, const session& s) {
  return std::min<std::size_t>(cfg.max_inflight, s.conn ? s.conn->client_receive_maximum() : 0);
}
/// Unsent bytes a congested connection may hold during its grace period (see broker::deliver): its
/// limit plus what publishers on other workers can have in flight before they see the congestion —
/// bounded by the transit pressure mark (an eighth of pressure_high_bytes pauses every publisher) and
/// one more read of each worker (8 x 64 KiB per handler run, twice).
std::size_t congested_ceiling_bytes(const config& c) {
  return std::size_t(c.max_outbound_bytes) + std::size_t(c.pressure_high_bytes / 8) + (1u << 20);
}
}  // namespace

void broker::drop(session& s, const delivery& d, drop_reason why, bool accounted) {
  metrics_.drops[static_cast<std::size_t>(why)].inc();
  if (accounted) adjust_backlog(s, -1, -delivery_bytes(d));
  if (d.seq) store_.submit({storage::op::delete_message{s.client_id, s.incarnation, d.seq}}, nullptr);
}

void broker::deliver(session& s, delivery d) {
  if (s.ended) return;
  if (s.withdrawn && d.seq && s.withdrawn->erase(d.seq)) {  // its storing failed (see withdraw)
    if (s.withdrawn->empty()) s.withdrawn.reset();
    return;
  }
  auto drop = [&](drop_reason why) { this->drop(s, d, why, false); };
  if (d.msg->expiry_at_ms && d.msg->expiry_at_ms <= clock_.wall_ms()) return drop(drop_reason::expired);
  if (d.qos == 0) {
    if (!s.conn) return drop(drop_reason::offline_qos0);
    // Over its unsent-bytes limit, a connection drops QoS 0 — unless it is congested and still holding
    // its publishers back: what they sent before they paused (a whole cross-worker batch) is kept, up
    // to a ceiling, so that back-pressure, not loss, is what a briefly slow subscriber sees.
    if (auto out = s.conn->outbound_bytes(); out > cfg_.max_outbound_bytes &&
        (out > congested_ceiling_bytes(cfg_) || !holds_back_publishers(s)))
      return drop(drop_reason::slow_consumer);
    if (!may_receive(s, *d.msg)) return drop(drop_reason::not_authorized);
    if (!s.conn->send_publish(d, 0, false)) return drop(drop_reason::too_large);
    metrics_.messages_out[0].inc();
    metrics_.payload_bytes_out[0].inc(d.msg->payload.size());
    return;
  }
  // The session's own bounds, in messages and in bytes, queue and inflight together.
  const std::int64_t bytes = delivery_bytes(d);
  if (s.backlog_bytes + bytes > static_cast<std::int64_t>(cfg_.max_queued_bytes)) return drop(drop_reason::queue_full);
  if (s.conn && s.queue.empty() && s.inflight.size() < window(cfg_, s)) {
    adjust_backlog(s, 1, bytes);
    send_inflight(s, std::move(d));
    return;
  }
  if (s.queue.size() >= cfg_.max_queued_messages) return drop(drop_reason::queue_full);
  adjust_backlog(s, 1, bytes);
  s.queue.push_back(std::move(d));
  update_congestion(s);
}

void broker::send_inflight(session& s, delivery d) {
  std::uint16_t id = s.next_packet_id();
  if (id == 0) {
    s.queue.push_front(std::move(d));
    return;
  }
  if (!may_receive(s, *d.msg)) return drop(s, d, drop_reason::not_authorized, true);
  auto st = d.qos == 1 ? inflight_entry::state::awaiting_puback : inflight_entry::state::awaiting_pubrec;
  auto& e = s.inflight.emplace(id, inflight_entry{std::move(d), st}).first->second;
  // A stored message: its packet id is stored too, so that after a restart it is resent with DUP
  // and the same id [MQTT-4.4.0-1]. A QoS 1 duplicate is allowed, so it goes out at once; a QoS 2
  // one waits until the id is durable.
  if (e.d.seq && e.d.qos == 2) return transmit_when_recorded(s, id, e);
  if (e.d.seq) store_.submit({storage::op::send_message{s.client_id, s.incarnation, e.d.seq, id, false}}, nullptr);
  transmit(s, id, e);
}

void broker::released(session& s, std::uint16_t packet_id, inflight_entry& e) {
  e.st = inflight_entry::state::awaiting_pubcomp;
  if (e.held) {  // the client had it from an earlier connection
    e.held = false;
    --s.held;
  }
  // A stored message's release is stored before the PUBREL goes out: once the client has it, it may
  // complete the exchange and free the id, and a restart that still found the message unreleased
  // would send it again under that id.
  if (e.d.seq) return transmit_when_recorded(s, packet_id, e);
  transmit(s, packet_id, e);
}

void broker::transmit_when_recorded(session& s, std::uint16_t id, inflight_entry& e) {
  const std::uint64_t seq = e.d.seq;
  e.storing = true;
  store_.submit({storage::op::send_message{s.client_id, s.incarnation, seq, id, e.st == inflight_entry::state::awaiting_pubcomp}},
                [this, sp = s.shared_from_this(), id, seq](bool) {
                  on_home(sp, [this, sp, id, seq] {
                    auto it = sp->inflight.find(id);
                    if (it == sp->inflight.end() || it->second.d.seq != seq || !it->second.storing) return;
                    it->second.storing = false;
                    if (!it->second.held && sp->conn && !sp->ended && !transmit(*sp, id, it->second)) pump(*sp);
                  });
                });
}

bool broker::transmit(session& s, std::uint16_t id, inflight_entry& e) {
  if (e.st == inflight_entry::state::awaiting_pubcomp) {
    s.conn->send_pubrel(id);
    return true;
  }
  if (!s.conn->send_publish(e.d, id, e.sent)) {
    drop(s, e.d, drop_reason::too_large, true);
    s.inflight.erase(id);
    return false;
  }
  if (!e.sent) {
    metrics_.messages_out[e.d.qos].inc();
    metrics_.payload_bytes_out[e.d.qos].inc(e.d.msg->payload.size());
  }
  e.sent = true;
  return true;
}

void broker::forget_inbound_qos2(worker& w, session& s, std::uint16_t packet_id, std::function<void()> done) {
  store_.submit({storage::op::delete_inbound_qos2{s.client_id, s.incarnation, packet_id}},
                [&w, done = std::move(done)](bool) { w.post(done); });
}

bool broker::may_receive(session& s, const message& m) {
  if (policy_.authorize_receive(s.conn->info(), s.client_id, m.topic)) return true;
  metrics_.denied.inc();
  return false;
}

void broker::resume(session& s) {
  const std::size_t slots = window(cfg_, s);
  std::size_t used = 0;
  s.held = 0;
  for (auto it = s.inflight.begin(); it != s.inflight.end();) {
    auto& [id, e] = *it++;  // transmit() erases an entry too large for this connection
    // A PUBREL always goes out; its message still takes a slot until PUBCOMP.
    e.held = e.st != inflight_entry::state::awaiting_pubcomp && used >= slots;
    if (e.held) {
      ++s.held;
      continue;
    }
    ++used;
    if (!e.storing) transmit(s, id, e);  // else it goes out once its record is stored
  }
  pump(s);
}

void broker::pump(session& s) {
  // Held entries first: they have their packet ids already.
  for (auto it = s.inflight.begin(); s.held && s.conn && it != s.inflight.end() &&
                                     s.inflight.size() - s.held < window(cfg_, s);) {
    auto& [id, e] = *it++;
    if (!e.held) continue;
    e.held = false;
    --s.held;
    if (!e.storing) transmit(s, id, e);
  }
  while (s.conn && !s.held && !s.queue.empty() && s.inflight.size() < window(cfg_, s)) {
    delivery d = std::move(s.queue.front());
    s.queue.pop_front();
    if (d.msg->expiry_at_ms && d.msg->expiry_at_ms <= clock_.wall_ms()) {
      drop(s, d, drop_reason::expired, true);
      continue;
    }
    send_inflight(s, std::move(d));
  }
  update_congestion(s);
}

void broker::complete(session& s, std::uint16_t packet_id) {
  auto it = s.inflight.find(packet_id);
  if (it == s.inflight.end()) return;
  adjust_backlog(s, -1, -delivery_bytes(it->second.d));
  if (it->second.held) --s.held;
  if (it->second.d.seq) store_.submit({storage::op::delete_message{s.client_id, s.incarnation, it->second.d.seq}}, nullptr);
  s.inflight.erase(it);
  pump(s);
}

void broker::withdraw(session& s, std::uint64_t seq) {
  auto it = std::find_if(s.queue.rbegin(), s.queue.rend(), [seq](const delivery& d) { return d.seq == seq; });
  if (it == s.queue.rend()) {
    for (auto in = s.inflight.begin(); in != s.inflight.end(); ++in) {
      if (in->second.d.seq != seq) continue;
      // In flight but not sent yet (a QoS 2 copy waiting for its packet id's record, or held): ends
      // as if acknowledged (its stored row's delete finds nothing). Sent: the client has it.
      if (!in->second.sent) complete(s, in->first);
      return;
    }
    // Not here: on its way from another worker's outbox (or already completed or dropped, whose
    // tombstone is never consumed: the set is bounded).
    if (!s.withdrawn) s.withdrawn = std::make_unique<std::unordered_set<std::uint64_t>>();
    if (s.withdrawn->size() >= 4096) s.withdrawn->clear();
    s.withdrawn->insert(seq);
    return;
  }
  adjust_backlog(s, -1, -delivery_bytes(*it));
  s.queue.erase(std::next(it).base());
  update_congestion(s);
}

void broker::adjust_backlog(session& s, std::int64_t messages, std::int64_t bytes) {
  metrics_.queued.add(messages);
  metrics_.queued_bytes.add(bytes);
  s.backlog_bytes += bytes;
  if (s.online.load(std::memory_order_relaxed)) online_backlog_bytes_.fetch_add(bytes, std::memory_order_relaxed);
}

}  // namespace fleetcore::broker
