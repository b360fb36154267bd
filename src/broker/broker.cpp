// The broker's life: construction, loading durable state, start, stop and the per-worker sweep.
#include "broker/broker.hpp"

#include "broker/internal.hpp"
#include "common/log.hpp"

#include <algorithm>
#include <future>

namespace fleetcore::broker {

using detail::delivery_bytes;
using detail::never_expires;
using detail::split_shared;

broker::broker(config cfg, common::clock& clock, storage::store& store, access_policy& policy,
               unsigned worker_count)
    : cfg_(cfg),
      clock_(clock),
      store_(store),
      policy_(policy),
      connect_limiter_(clock, {.per_address_per_s = static_cast<double>(cfg.max_connect_rate_per_address),
                               .per_address_burst = static_cast<double>(cfg.max_connect_rate_per_address),
                               .global_per_s = static_cast<double>(cfg.max_connect_rate),
                               .global_burst = static_cast<double>(cfg.max_connect_rate)}) {
  FC_CHECK(worker_count > 0);
  for (unsigned i = 0; i < worker_count; ++i) workers_.push_back(std::make_unique<worker>(i));
  outboxes_.resize(worker_count);
  for (auto& row : outboxes_) row.resize(worker_count);
}

broker::~broker() { stop(); }

worker& broker::next_worker() {
  return *workers_[next_worker_.fetch_add(1, std::memory_order_relaxed) % workers_.size()];
}

storage::stored_message broker::to_stored(const message& m, std::uint8_t qos, bool retain) const {
  return {m.topic, m.payload, qos, retain, m.forward_props, m.expiry_at_ms};
}

message_ptr broker::from_stored(const storage::stored_message& s) const {
  auto m = std::make_shared<message>();
  m->topic = s.topic;
  m->payload = s.payload;
  m->qos = s.qos;
  m->retain = s.retain;
  m->forward_props = s.props;
  m->expiry_at_ms = s.expiry_at_ms;
  return m;
}

void broker::load() {
  auto snap = store_.load();
  next_seq_ = snap.max_seq + 1;
  next_incarnation_ = snap.max_incarnation + 1;
  const auto now = clock_.wall_ms();
  std::vector<storage::operation> cleanup;
  for (const auto& r : snap.retained) {
    if (r.expiry_at_ms && r.expiry_at_ms <= now) {
      cleanup.push_back(storage::op::delete_retained{r.topic});
      continue;
    }
    metrics_.retained.add(retained_.set(from_stored(r)));
  }
  std::size_t i = 0;
  for (auto& r : snap.sessions) {
    // In a cluster each node restores the sessions it held; the others' wait for their nodes (or for
    // their clients to connect elsewhere, which takes them over).
    if (cluster_ && r.node != cfg_.node_id) continue;
    auto s = restore(r, *workers_[i++ % workers_.size()], cleanup);
    if (!s) continue;
    for (const auto& [f, opts] : s->subscriptions) {
      auto [group, filter] = split_shared(f);
      for (auto& w : workers_) w->routes().add(filter, group, s, opts);
      note_interest(f, true, nullptr);
    }
    if (!r.disconnected_at_ms) cleanup.push_back(storage::op::touch_session{r.client_id, r.incarnation, r.expiry_interval, now});
    sessions_.emplace(r.client_id, s);
  }
  if (!cleanup.empty()) store_.submit(std::move(cleanup), nullptr);
  FC_LOG_INFO("broker.loaded", "sessions={} retained={}", sessions_.size(), retained_.size());
}

std::shared_ptr<session> broker::restore(storage::session_record& r, worker& home, std::vector<storage::operation>& cleanup) {
  const auto now = clock_.wall_ms();
  std::int64_t gone_at = r.disconnected_at_ms ? r.disconnected_at_ms : now;
  if (r.expiry_interval != never_expires && gone_at + std::int64_t(r.expiry_interval) * 1000 <= now) {
    cleanup.push_back(storage::op::delete_session{r.client_id, r.incarnation});
    return nullptr;
  }
  auto s = std::make_shared<session>(r.client_id, r.incarnation, &home);
  s->expiry_interval = r.expiry_interval;
  s->version = static_cast<mqtt::protocol_version>(r.protocol);
  s->durable = true;
  s->disconnected_at_ms = gone_at;
  for (const auto& sub : r.subscriptions) {
    s->subscriptions.emplace(sub.filter, subscription_options::from_byte(sub.options, sub.subscription_id));
    metrics_.subscriptions.add();
  }
  std::uint64_t max_seq = 0;
  for (auto& q : r.queue) {
    max_seq = std::max(max_seq, q.seq);
    delivery d{from_stored(q.msg), q.msg.qos, q.msg.retain, std::move(q.subscription_ids), q.seq};
    // The session's bounds hold across restarts (also after they were lowered in the configuration).
    if (s->queue.size() >= cfg_.max_queued_messages ||
        s->backlog_bytes + delivery_bytes(d) > static_cast<std::int64_t>(cfg_.max_queued_bytes)) {
      metrics_.drops[static_cast<std::size_t>(drop_reason::queue_full)].inc();
      cleanup.push_back(storage::op::delete_message{r.client_id, r.incarnation, q.seq});
      continue;
    }
    adjust_backlog(*s, 1, delivery_bytes(d));
    // Sent before the restart: in flight again under its packet id, resent with DUP (or its
    // PUBREL) when the client is back.
    if (q.packet_id && !s->inflight.contains(q.packet_id)) {
      using st = inflight_entry::state;
      auto state = d.qos == 1 ? st::awaiting_puback : q.released ? st::awaiting_pubcomp : st::awaiting_pubrec;
      s->inflight.emplace(q.packet_id, inflight_entry{std::move(d), state, true, false});
      s->last_packet_id = std::max(s->last_packet_id, q.packet_id);
      continue;
    }
    s->queue.push_back(std::move(d));
  }
  // Copies stored from now on sort after the ones restored (a session taken over from another node
  // has seqs from that node's counter).
  for (auto seen = next_seq_.load(); seen <= max_seq && !next_seq_.compare_exchange_weak(seen, max_seq + 1);) {
  }
  for (auto id : r.inbound_qos2) s->inbound_qos2.emplace(id, true);
  metrics_.sessions.add();
  return s;
}

void broker::start() {
  started_ = true;
  for (auto& w : workers_) w->start();
  // Offline sessions restored from storage expire on their home worker.
  std::lock_guard lock(sessions_mutex_);
  for (auto& [id, s] : sessions_) {
    auto sp = s;
    sp->home.load()->post([this, sp] { arm_expiry(*sp); });
  }
  start_sweeps();
}

void broker::stop() {
  if (workers_.empty() || stopped_) return;
  stopped_ = true;
  std::vector<std::future<void>> done;
  // Never started (start-up failed after loading): no worker runs to close connections.
  for (auto& w : workers_) {
    if (!started_) break;
    auto p = std::make_shared<std::promise<void>>();
    done.push_back(p->get_future());
    worker* wp = w.get();
    wp->post([wp, p] {
      auto conns = wp->connections();
      for (auto& c : conns) c->close(mqtt::reason_code::server_shutting_down);
      wp->pressure_timer().cancel();
      p->set_value();
    });
  }
  for (auto& f : done) f.wait_for(std::chrono::seconds(5));
  for (auto& t : sweep_timers_) {
    auto* tp = t.get();
    boost::asio::post(tp->get_executor(), [tp] { tp->cancel(); });
  }
  store_.flush();
  for (auto& w : workers_) w->stop();
  for (auto& w : workers_) w->join();
  // Sessions may hold timers of any worker: release them while every io_context still exists.
  std::lock_guard lock(sessions_mutex_);
  for (auto& [id, s] : sessions_) {
    s->will_timer.reset();
    s->expiry_timer.reset();
  }
  sessions_.clear();
  for (auto& w : workers_) w->routes().clear();
}

void broker::start_sweeps() {
  for (auto& w : workers_) {
    sweep_timers_.push_back(std::make_unique<boost::asio::steady_timer>(w->io()));
    sweep(*w);
  }
}

void broker::sweep(worker& w) {
  auto& t = *sweep_timers_[w.index()];
  t.expires_after(std::chrono::seconds(1));
  t.async_wait([this, &w](const boost::system::error_code& ec) {
    if (ec) return;
    auto now = clock_.now();
    std::vector<std::shared_ptr<client_connection>> conns(w.connections().begin(), w.connections().end());
    for (auto& c : conns) c->check_timeouts(now);
    sweep(w);
  });
}

}  // namespace fleetcore::broker
