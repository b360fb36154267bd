#include "broker/broker.hpp"

#include "common/log.hpp"
#include "mqtt/topic.hpp"

#include <algorithm>
#include <future>

namespace fleetcore::broker {

namespace {

/// Splits a subscribed filter into (group, filter); group is empty for a non-shared subscription.
std::pair<std::string_view, std::string_view> split_shared(std::string_view full) {
  if (auto s = mqtt::parse_shared(full); s && !s->group.empty()) return {s->group, s->filter};
  return {{}, full};
}

std::int64_t delivery_bytes(const delivery& d) {
  return static_cast<std::int64_t>(d.msg->topic.size() + d.msg->payload.size() + d.msg->forward_props.size() + 64);
}

constexpr std::uint32_t never_expires = 0xFFFFFFFF;

}  // namespace

broker::broker(config cfg, common::clock& clock, storage::store& store, access_policy& policy,
               unsigned worker_count)
    : cfg_(cfg), clock_(clock), store_(store), policy_(policy) {
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
    std::int64_t gone_at = r.disconnected_at_ms ? r.disconnected_at_ms : now;
    if (r.expiry_interval != never_expires && gone_at + std::int64_t(r.expiry_interval) * 1000 <= now) {
      cleanup.push_back(storage::op::delete_session{r.client_id, r.incarnation});
      continue;
    }
    worker* home = workers_[i++ % workers_.size()].get();
    auto s = std::make_shared<session>(r.client_id, r.incarnation, home);
    s->expiry_interval = r.expiry_interval;
    s->version = static_cast<mqtt::protocol_version>(r.protocol);
    s->durable = true;
    s->disconnected_at_ms = gone_at;
    for (const auto& sub : r.subscriptions) {
      auto opts = subscription_options::from_byte(sub.options, sub.subscription_id);
      s->subscriptions.emplace(sub.filter, opts);
      auto [group, filter] = split_shared(sub.filter);
      for (auto& w : workers_) w->routes().add(filter, group, s, opts);
      metrics_.subscriptions.add();
    }
    for (auto& q : r.queue) {
      delivery d{from_stored(q.msg), q.msg.qos, q.msg.retain, std::move(q.subscription_ids), q.seq};
      // The session's bounds hold across restarts (also after they were lowered in the configuration).
      if (s->queue.size() >= cfg_.max_queued_messages ||
          s->backlog_bytes + delivery_bytes(d) > static_cast<std::int64_t>(cfg_.max_queued_bytes)) {
        metrics_.drops[static_cast<std::size_t>(drop_reason::queue_full)].inc();
        cleanup.push_back(storage::op::delete_message{r.client_id, q.seq});
        continue;
      }
      adjust_backlog(*s, 1, delivery_bytes(d));
      s->queue.push_back(std::move(d));
    }
    if (!r.disconnected_at_ms) cleanup.push_back(storage::op::touch_session{r.client_id, r.incarnation, r.expiry_interval, now});
    sessions_.emplace(r.client_id, s);
    metrics_.sessions.add();
  }
  if (!cleanup.empty()) store_.submit(std::move(cleanup), nullptr);
  FC_LOG_INFO("broker.loaded", "sessions={} retained={}", sessions_.size(), retained_.size());
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

void broker::deliver_to(const std::string& client_id, std::uint64_t session_id, message_ptr m) {
  std::shared_ptr<session> s;
  {
    std::lock_guard lock(sessions_mutex_);
    auto it = sessions_.find(client_id);
    if (it != sessions_.end() && it->second->incarnation == session_id) s = it->second;
  }
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

void broker::on_home(const std::shared_ptr<session>& s, std::function<void()> fn) {
  worker* home = s->home.load(std::memory_order_acquire);
  if (home->on_thread()) {
    fn();
    return;
  }
  home->post([this, s, fn = std::move(fn)]() mutable { on_home(s, std::move(fn)); });
}

void broker::connect(const std::shared_ptr<client_connection>& c, bool clean_start, std::uint32_t expiry) {
  worker& w = c->home();
  std::shared_ptr<session> old, fresh;
  {
    std::lock_guard lock(sessions_mutex_);
    auto it = sessions_.find(c->client_id());
    if (it != sessions_.end()) old = it->second;
    if (!old || clean_start) {
      fresh = std::make_shared<session>(c->client_id(), next_incarnation_++, &w);
      sessions_[c->client_id()] = fresh;
    }
  }
  if (fresh) {
    metrics_.sessions.add();
    if (expiry > 0 || (old && old->durable)) {
      fresh->durable = expiry > 0;
      store_.submit({storage::op::put_session{fresh->client_id, fresh->incarnation, expiry,
                                              static_cast<std::uint8_t>(c->version()), 0}},
                    nullptr);
    }
    if (old) {
      on_home(old, [this, old] {
        if (old->conn) {
          metrics_.takeovers.inc();
          old->conn->close(mqtt::reason_code::session_taken_over);  // detaches and ends `old`
        } else {
          end_session(*old);
        }
      });
    }
    c->attach(fresh, false);
    return;
  }
  on_home(old, [this, old, c, &w, expiry] {
    if (old->ended) {  // expired meanwhile: start over, a fresh session will be created
      w.post([this, c, expiry] {
        if (c->state_ == client_connection::state::connecting) connect(c, false, expiry);
      });
      return;
    }
    if (old->conn) {
      metrics_.takeovers.inc();
      old->conn->close(mqtt::reason_code::session_taken_over);
    }
    if (old->ended) {  // the old connection's session was not persistent
      w.post([this, c, expiry] {
        if (c->state_ == client_connection::state::connecting) connect(c, false, expiry);
      });
      return;
    }
    // Resumed before the will delay elapsed: the will is not sent [MQTT-3.1.3-9].
    old->pending_will.reset();
    if (old->will_timer) old->will_timer->cancel();
    if (old->expiry_timer) old->expiry_timer->cancel();
    old->will_timer.reset();
    old->expiry_timer.reset();
    old->home.store(&w, std::memory_order_release);
    w.post([c, old] { c->attach(old, true); });
  });
}

void broker::touch_session(session& s, bool connected) {
  if (!s.durable) return;
  store_.submit({storage::op::touch_session{s.client_id, s.incarnation, s.expiry_interval,
                                            connected ? 0 : s.disconnected_at_ms}},
                nullptr);
}

void broker::detach(session& s, std::unique_ptr<mqtt::will_message> will) {
  s.conn = nullptr;
  set_online(s, false);
  update_congestion(s);
  s.disconnected_at_ms = clock_.wall_ms();
  bool current;
  {
    std::lock_guard lock(sessions_mutex_);
    auto it = sessions_.find(s.client_id);
    current = it != sessions_.end() && it->second.get() == &s;
  }
  worker& w = *s.home.load();
  if (!s.persistent() || !current) {
    if (will) publish_will(w, s.client_id, *will);
    end_session(s);
    return;
  }
  touch_session(s, false);
  if (will) {
    std::uint32_t delay = will->props.will_delay_interval.value_or(0);
    if (delay == 0) {
      publish_will(w, s.client_id, *will);
    } else {
      s.pending_will = std::move(will);
      s.will_timer = std::make_unique<boost::asio::steady_timer>(w.io(), std::chrono::seconds(delay));
      auto sp = s.shared_from_this();
      s.will_timer->async_wait([this, sp](const boost::system::error_code& ec) {
        if (ec || !sp->pending_will) return;
        auto wm = std::move(*sp->pending_will);
        sp->pending_will.reset();
        publish_will(*sp->home.load(), sp->client_id, wm);
      });
    }
  }
  arm_expiry(s);
}

void broker::arm_expiry(session& s) {
  if (s.online || s.ended || s.expiry_interval == never_expires) return;
  std::int64_t due_ms = s.disconnected_at_ms + std::int64_t(s.expiry_interval) * 1000 - clock_.wall_ms();
  worker& w = *s.home.load();
  s.expiry_timer = std::make_unique<boost::asio::steady_timer>(
      w.io(), std::chrono::milliseconds(std::max<std::int64_t>(due_ms, 0)));
  auto sp = s.shared_from_this();
  s.expiry_timer->async_wait([this, sp](const boost::system::error_code& ec) {
    if (ec || sp->online || sp->ended) return;
    FC_LOG_DEBUG("session.expired", "client={}", common::untrusted(sp->client_id));
    end_session(*sp);
  });
}

void broker::end_session(session& s) {
  if (s.ended) return;
  s.ended = true;
  s.will_timer.reset();  // destroying a timer cancels its wait
  s.expiry_timer.reset();
  if (s.pending_will) {
    auto wm = std::move(*s.pending_will);
    s.pending_will.reset();
    publish_will(*s.home.load(), s.client_id, wm);
  }
  auto sp = s.shared_from_this();
  {
    std::lock_guard lock(sessions_mutex_);
    auto it = sessions_.find(s.client_id);
    if (it != sessions_.end() && it->second == sp) sessions_.erase(it);
  }
  if (!s.subscriptions.empty()) {
    auto filters = std::make_shared<std::vector<std::string>>();
    for (auto& [f, o] : s.subscriptions) filters->push_back(f);
    metrics_.subscriptions.sub(static_cast<std::int64_t>(filters->size()));
    s.subscriptions.clear();
    for (auto& w : workers_) {
      worker* wp = w.get();
      wp->post([wp, sp, filters] {
        for (auto& f : *filters) {
          auto [group, filter] = split_shared(f);
          wp->routes().remove(filter, group, sp.get());
        }
      });
    }
  }
  adjust_backlog(s, -static_cast<std::int64_t>(s.queue.size() + s.inflight.size()), -s.backlog_bytes);
  s.queue.clear();
  s.inflight.clear();
  if (s.congested_since.exchange(0)) congested_.fetch_sub(1, std::memory_order_relaxed);
  if (s.durable) store_.submit({storage::op::delete_session{s.client_id, s.incarnation}}, nullptr);
  s.durable = false;
  metrics_.sessions.sub();
}

void broker::disconnect_if(std::function<bool(const connection_info&)> pred, mqtt::reason_code rc) {
  auto shared = std::make_shared<const std::function<bool(const connection_info&)>>(std::move(pred));
  for (auto& w : workers_) {
    w->post([w = w.get(), shared, rc] {
      std::vector<std::shared_ptr<client_connection>> matched;
      for (const auto& c : w->connections())
        if ((*shared)(c->info())) matched.push_back(c);
      for (auto& c : matched) c->close(rc);
    });
  }
}

void broker::publish_event(std::string topic, std::string payload, std::uint8_t qos) {
  if (check_publish_topic(topic, origin::server) != mqtt::reason_code::success) {
    FC_LOG_ERROR("broker.event_refused", "topic={:q} note=\"a service built an invalid topic\"", common::untrusted(topic));
    return;
  }
  worker& w = *workers_.front();
  w.post([this, &w, topic = std::move(topic), payload = std::move(payload), qos]() mutable {
    const auto now = clock_.wall_ms();
    auto m = make_message(std::move(topic), std::move(payload), qos, false, {}, now, 0);
    if (offer(m, {origin::server, {}, nullptr, now})) return;
    publish(w, m, nullptr);
  });
}

void broker::publish_external(std::string topic, std::string payload, std::uint8_t qos, bool retain,
                              std::function<void(bool)> done) {
  if (check_publish_topic(topic, origin::http) != mqtt::reason_code::success) {
    if (done) done(false);  // callers check first (to answer with the reason); this is the backstop
    return;
  }
  worker& w = next_worker();
  w.post([this, &w, topic = std::move(topic), payload = std::move(payload), qos, retain,
          done = std::move(done)]() mutable {
    const auto now = clock_.wall_ms();
    auto m = make_message(std::move(topic), std::move(payload), qos, retain, {}, now, 0);
    if (offer(m, {origin::http, {}, nullptr, now})) {
      if (done) done(true);
      return;
    }
    publish(w, m, [done = std::move(done)](bool durable, std::size_t) {
      if (done) done(durable);
    });
  });
}

mqtt::reason_code broker::check_publish_topic(std::string_view topic, origin o) {
  auto refused = [&](mqtt::reason_code rc) {
    metrics_.topics_refused[static_cast<std::size_t>(o)].inc();
    return rc;
  };
  if (mqtt::check_topic_name(topic, cfg_.max_topic_length, cfg_.max_topic_levels) != mqtt::topic_name_error::none)
    return refused(mqtt::reason_code::topic_name_invalid);
  if (o != origin::server && server_only(topic)) return refused(mqtt::reason_code::not_authorized);
  return mqtt::reason_code::success;
}

bool broker::server_only(std::string_view topic) const {
  if (!topic.starts_with('$')) return false;  // every reserved topic is a `$` topic (see broker_hook::claim)
  if (topic.starts_with("$SYS") || topic.starts_with("$aws/events/")) return true;
  // AWS IoT's subscribe-only job notifications (reserved-topics.md), whoever serves them.
  if (topic.starts_with("$aws/things/") && (topic.ends_with("/jobs/notify") || topic.ends_with("/jobs/notify-next")))
    return true;
  for (auto* h : hooks_)
    if (h->claim(topic) == topic_claim::reserved) return true;
  return false;
}

std::uint64_t broker::next_connection_number() noexcept {
  auto now = static_cast<std::uint64_t>(clock_.wall_ms());
  auto last = last_connection_number_.load(std::memory_order_relaxed);
  std::uint64_t next;
  do {
    next = std::max(now, last + 1);
  } while (!last_connection_number_.compare_exchange_weak(last, next, std::memory_order_relaxed));
  return next;
}

std::string_view to_string(disconnect_reason r) noexcept {
  switch (r) {
    case disconnect_reason::client_initiated: return "CLIENT_INITIATED_DISCONNECT";
    case disconnect_reason::duplicate_client_id: return "DUPLICATE_CLIENTID";
    case disconnect_reason::keep_alive_timeout: return "MQTT_KEEP_ALIVE_TIMEOUT";
    case disconnect_reason::auth_error: return "AUTH_ERROR";
    case disconnect_reason::client_error: return "CLIENT_ERROR";
    case disconnect_reason::connection_lost: return "CONNECTION_LOST";
    case disconnect_reason::server_initiated: return "SERVER_INITIATED_DISCONNECT";
    case disconnect_reason::throttled: return "THROTTLED";
    case disconnect_reason::server_error: return "SERVER_ERROR";
  }
  return "SERVER_ERROR";
}

bool broker::offer(const message_ptr& m, const publish_context& ctx) {
  bool consumed = false;
  for (auto* h : hooks_) consumed = h->on_message(m, ctx) || consumed;
  return consumed;
}

void broker::publish_will(worker& w, const std::string& client_id, const mqtt::will_message& will) {
  metrics_.wills.inc();
  const auto now = clock_.wall_ms();
  auto m = make_message(will.topic, will.payload, will.qos, will.retain, will.props, now, 0);
  if (offer(m, {origin::will, client_id, nullptr, now})) return;
  publish(w, m, nullptr);
}

std::size_t broker::publish(worker& w, const message_ptr& m, publish_ack ack,
                            std::shared_ptr<session>* congested_target) {
  std::vector<storage::operation> ops;
  bool must_wait = false;
  if (m->retain && cfg_.retain_available) {
    metrics_.retained.add(retained_.set(m));
    if (m->payload.empty())
      ops.push_back(storage::op::delete_retained{m->topic});
    else
      ops.push_back(storage::op::put_retained{to_stored(*m, m->qos, true)});
    must_wait = m->qos > 0;
  }

  thread_local std::vector<route_entry> targets;
  targets.clear();
  w.routes().match(m->topic, targets);
  // One delivery per session for overlapping non-shared subscriptions: highest QoS, every
  // subscription identifier [MQTT-3.3.4-3..5].
  std::stable_sort(targets.begin(), targets.end(), [](const route_entry& a, const route_entry& b) {
    return std::pair(a.shared, a.target.get()) < std::pair(b.shared, b.target.get());
  });
  thread_local std::vector<target_delivery> out;
  out.clear();
  for (const auto& e : targets) {
    if (e.opts.no_local && e.target->incarnation == m->origin) continue;
    std::uint8_t qos = std::min(m->qos, e.opts.qos);
    bool retain = e.opts.retain_as_published && m->retain;
    if (!e.shared && !out.empty() && out.back().s == e.target) {
      auto& d = out.back().d;
      d.qos = std::max(d.qos, qos);
      d.retain = d.retain || retain;
      if (e.opts.subscription_id) d.subscription_ids.push_back(e.opts.subscription_id);
      continue;
    }
    delivery d{m, qos, retain, {}, 0};
    if (e.opts.subscription_id) d.subscription_ids.push_back(e.opts.subscription_id);
    out.push_back({e.target, std::move(d)});
  }
  for (auto& t : out) {
    if (t.d.qos > 0 && t.s->durable.load(std::memory_order_relaxed)) {
      t.d.seq = next_seq_.fetch_add(1, std::memory_order_relaxed);
      ops.push_back(storage::op::put_message{t.s->client_id, t.s->incarnation,
                                             {t.d.seq, to_stored(*m, t.d.qos, t.d.retain), t.d.subscription_ids}});
      must_wait = true;
    }
  }
  const std::size_t recipients = out.size();
  if (congested_target) {
    for (auto& t : out) {
      if (t.s->congested_since.load(std::memory_order_relaxed) && holds_back_publishers(*t.s)) {
        *congested_target = t.s;
        break;
      }
    }
  }
  // Stored before any recipient sees the message: a recipient that drops it (queue full) deletes
  // the stored copy, and that delete must come after the put.
  if (!ops.empty()) {
    if (must_wait && ack) {
      store_.submit(std::move(ops), [&w, recipients, ack = std::move(ack)](bool ok) mutable {
        w.post([ack = std::move(ack), ok, recipients] { ack(ok, recipients); });
      });
      ack = nullptr;
    } else {
      store_.submit(std::move(ops), nullptr);
    }
  }
  // Local recipients now; others join the outbox of their worker, flushed once per handler run.
  for (auto& t : out) {
    worker* home = t.s->home.load(std::memory_order_acquire);
    if (home == &w) {
      deliver(*t.s, std::move(t.d));
      continue;
    }
    auto& box = outboxes_[w.index()][home->index()];
    if (box.items.empty()) {
      unsigned to = home->index();
      w.post([this, &w, to] { flush_outbox(w, to); });
    }
    box.bytes += delivery_bytes(t.d);
    box.items.push_back({std::move(t.s), std::move(t.d)});
  }
  if (ack) ack(true, recipients);
  return recipients;
}

void broker::flush_outbox(worker& from, unsigned to) {
  auto& box = outboxes_[from.index()][to];
  if (box.items.empty()) return;
  std::int64_t bytes = box.bytes;
  inflight_between_workers_.fetch_add(bytes, std::memory_order_relaxed);
  workers_[to]->post([this, bytes, batch = std::move(box.items)]() mutable {
    for (auto& t : batch) {
      if (t.s->home.load(std::memory_order_acquire)->on_thread()) {
        deliver(*t.s, std::move(t.d));
      } else {  // the session moved meanwhile: follow it
        auto d = std::make_shared<delivery>(std::move(t.d));
        auto s = t.s;
        on_home(s, [this, s, d] { deliver(*s, std::move(*d)); });
      }
    }
    inflight_between_workers_.fetch_sub(bytes, std::memory_order_relaxed);
  });
  box.items = {};
  box.bytes = 0;
}

void broker::update_routes(worker& w, const std::shared_ptr<session>& s, std::vector<route_change> changes,
                           std::function<void()> done) {
  std::vector<storage::operation> ops;
  if (s->durable) {
    for (auto& c : changes) {
      if (c.add)
        ops.push_back(storage::op::put_subscription{s->client_id, s->incarnation,
                                                    {c.filter, c.opts.to_byte(), c.opts.subscription_id}});
      else
        ops.push_back(storage::op::delete_subscription{s->client_id, s->incarnation, c.filter});
    }
  }
  auto shared_changes = std::make_shared<const std::vector<route_change>>(std::move(changes));
  auto pending = std::make_shared<std::atomic<int>>(static_cast<int>(workers_.size()) + (ops.empty() ? 0 : 1));
  auto finish = [&w, pending, done = std::move(done)] {
    if (pending->fetch_sub(1) == 1) w.post(done);
  };
  for (auto& x : workers_) {
    worker* xp = x.get();
    xp->post([xp, s, shared_changes, finish] {
      for (const auto& c : *shared_changes) {
        auto [group, filter] = split_shared(c.filter);
        if (c.add)
          xp->routes().add(filter, group, s, c.opts);
        else
          xp->routes().remove(filter, group, s.get());
      }
      finish();
    });
  }
  if (!ops.empty()) store_.submit(std::move(ops), [finish](bool) { finish(); });
}

void broker::send_retained(session& s, std::string_view filter, const subscription_options& opts) {
  if (split_shared(filter).first.size()) return;  // no retained messages on shared subscriptions
  for (auto& m : retained_.match(filter, clock_.wall_ms())) {
    delivery d{m, std::min(m->qos, opts.qos), true, {}, 0};
    if (opts.subscription_id) d.subscription_ids.push_back(opts.subscription_id);
    deliver(s, std::move(d));
  }
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
  if (d.seq) store_.submit({storage::op::delete_message{s.client_id, d.seq}}, nullptr);
}

void broker::deliver(session& s, delivery d) {
  if (s.ended) return;
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
  if (!s.conn->send_publish(d, id, false)) return drop(s, d, drop_reason::too_large, true);
  metrics_.messages_out[d.qos].inc();
  metrics_.payload_bytes_out[d.qos].inc(d.msg->payload.size());
  auto st = d.qos == 1 ? inflight_entry::state::awaiting_puback : inflight_entry::state::awaiting_pubrec;
  s.inflight.emplace(id, inflight_entry{std::move(d), st});
}

bool broker::may_receive(session& s, const message& m) {
  if (policy_.authorize_receive(s.conn->info(), s.client_id, m.topic)) return true;
  metrics_.denied.inc();
  return false;
}

void broker::pump(session& s) {
  while (s.conn && !s.queue.empty() && s.inflight.size() < window(cfg_, s)) {
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
  if (it->second.d.seq) store_.submit({storage::op::delete_message{s.client_id, it->second.d.seq}}, nullptr);
  s.inflight.erase(it);
  pump(s);
}

void broker::adjust_backlog(session& s, std::int64_t messages, std::int64_t bytes) {
  metrics_.queued.add(messages);
  metrics_.queued_bytes.add(bytes);
  s.backlog_bytes += bytes;
  if (s.online.load(std::memory_order_relaxed)) online_backlog_bytes_.fetch_add(bytes, std::memory_order_relaxed);
}

void broker::set_online(session& s, bool online) {
  if (s.online.exchange(online) == online) return;
  online_backlog_bytes_.fetch_add(online ? s.backlog_bytes : -s.backlog_bytes, std::memory_order_relaxed);
}

namespace {
std::int64_t steady_ms(const common::clock& c) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(c.now().time_since_epoch()).count();
}
}  // namespace

void broker::update_congestion(session& s) {
  // Hysteresis: congested at the threshold, clear again at half of it.
  const bool was = s.congested_since.load(std::memory_order_relaxed) != 0;
  const std::size_t divisor = was ? 2 : 1;
  bool c = s.conn && (s.queue.size() * divisor >= cfg_.congestion_queue_length ||
                      s.conn->outbound_bytes() * divisor * 2 >= cfg_.max_outbound_bytes);
  if (c == was) return;
  s.congested_since.store(c ? std::max<std::int64_t>(steady_ms(clock_), 1) : 0, std::memory_order_relaxed);
  congested_.fetch_add(c ? 1 : -1, std::memory_order_relaxed);
}

bool broker::holds_back_publishers(const session& s) const {
  std::int64_t since = s.congested_since.load(std::memory_order_relaxed);
  return since != 0 && steady_ms(clock_) - since < static_cast<std::int64_t>(cfg_.slow_consumer_grace_ms);
}

std::int64_t broker::pressure_bytes() const noexcept {
  return online_backlog_bytes_.load(std::memory_order_relaxed);
}

bool broker::under_pressure() noexcept {
  const auto backlog = pressure_bytes();
  const auto transit = inflight_between_workers_.load(std::memory_order_relaxed);
  const auto high = static_cast<std::int64_t>(cfg_.pressure_high_bytes);
  const auto low = static_cast<std::int64_t>(cfg_.pressure_low_bytes);
  std::int64_t since = pressure_since_.load(std::memory_order_relaxed);
  if (since == 0) {
    if (backlog <= high && transit <= high / 8) return false;
    std::int64_t now = std::max<std::int64_t>(steady_ms(clock_), 1);
    if (pressure_since_.compare_exchange_strong(since, now, std::memory_order_relaxed)) since = now;
  } else if (backlog < low && transit < low / 8) {
    // The episode is over; the next one gets its own grace period.
    pressure_since_.store(0, std::memory_order_relaxed);
    pressure_overrun_.store(false, std::memory_order_relaxed);
    return false;
  }
  if (steady_ms(clock_) - since < static_cast<std::int64_t>(cfg_.slow_consumer_grace_ms)) return true;
  // Still high after the grace period: what holds the bytes is not draining (sessions that do not
  // acknowledge). Pausing everyone would not help and would let them hold every publisher; the
  // per-session bounds cap the memory instead.
  if (!pressure_overrun_.exchange(true, std::memory_order_relaxed)) metrics_.pressure_overruns.inc();
  return false;
}

void broker::pause_for_pressure(client_connection& c) {
  worker& w = c.home();
  bool first = w.paused().empty();
  w.paused().push_back(c.weak_from_this());
  if (first) pressure_tick(w);
}

void broker::pressure_tick(worker& w) {
  w.pressure_timer().expires_after(std::chrono::milliseconds(2));
  w.pressure_timer().async_wait([this, &w](const boost::system::error_code& ec) {
    if (ec) return;
    bool relieved = !under_pressure();
    // Publishers paused for pressure resume together once it is relieved; rate-limited ones also
    // wait for their next one-second window.
    std::vector<std::weak_ptr<client_connection>> still;
    auto paused = std::move(w.paused());
    w.paused().clear();
    for (auto& wc : paused) {
      auto c = wc.lock();
      if (!c) continue;
      if (relieved && !c->rate_limited() && !c->blocked())
        c->resume_reading();
      else
        still.push_back(wc);
    }
    // resume_reading() may have paused some again (appending to w.paused()).
    for (auto& wc : still) w.paused().push_back(std::move(wc));
    if (!w.paused().empty()) pressure_tick(w);
  });
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

void broker::register_metrics(common::registry& r) const {
  metrics_.register_all(r);
  r.add_gauge_fn([this] { return static_cast<double>(pressure_bytes()); }, "fleetcore_pressure_bytes", "",
                 "Bytes queued for or in flight to online sessions: the broker-wide back-pressure signal "
                 "(limits.pressure_high_bytes).");
  r.add_gauge_fn([this] { return static_cast<double>(congested_.load()); }, "fleetcore_congested_sessions", "",
                 "Online sessions that are not keeping up (queue or unsent bytes above threshold); their publishers pause.");
}

void broker_metrics::register_all(common::registry& r) const {
  r.add(connections, "fleetcore_connections", "", "Open client connections.");
  r.add(sessions, "fleetcore_sessions", "", "Sessions, connected or not.");
  r.add(subscriptions, "fleetcore_subscriptions", "", "Subscriptions of all sessions.");
  r.add(retained, "fleetcore_retained_messages", "", "Retained messages.");
  r.add(queued, "fleetcore_queued_messages", "", "QoS 1/2 messages queued or in flight to sessions.");
  r.add(queued_bytes, "fleetcore_queued_bytes", "", "Approximate bytes of queued messages.");
  static constexpr const char* results[] = {"success", "protocol_error", "unsupported_version", "bad_client_id",
                                            "not_authorized", "bad_auth_method", "server_unavailable", "other"};
  static_assert(std::size(results) == std::tuple_size_v<decltype(connects)>, "a label per connect_result");
  for (std::size_t i = 0; i < connects.size(); ++i)
    r.add(connects[i], "fleetcore_connects_total", fmt::format("result=\"{}\"", results[i]), "CONNECT attempts by result.");
  for (int q = 0; q < 3; ++q) {
    r.add(messages_in[q], "fleetcore_messages_in_total", fmt::format("qos=\"{}\"", q), "PUBLISH packets received.");
    r.add(messages_out[q], "fleetcore_messages_out_total", fmt::format("qos=\"{}\"", q), "PUBLISH packets sent.");
    r.add(payload_bytes_in[q], "fleetcore_payload_bytes_in_total", fmt::format("qos=\"{}\"", q),
          "Payload bytes of PUBLISH packets received.");
    r.add(payload_bytes_out[q], "fleetcore_payload_bytes_out_total", fmt::format("qos=\"{}\"", q),
          "Payload bytes of PUBLISH packets sent.");
  }
  r.add(bytes_in, "fleetcore_bytes_in_total", "", "Bytes received from clients.");
  r.add(bytes_out, "fleetcore_bytes_out_total", "", "Bytes sent to clients.");
  static constexpr const char* reasons[] = {"queue_full", "slow_consumer", "offline_qos0", "expired", "too_large",
                                            "not_authorized"};
  static_assert(std::size(reasons) == static_cast<std::size_t>(drop_reason::count), "a label per drop_reason");
  for (std::size_t i = 0; i < drops.size(); ++i)
    r.add(drops[i], "fleetcore_dropped_messages_total", fmt::format("reason=\"{}\"", reasons[i]),
          "Messages not delivered to a recipient, by reason.");
  r.add(protocol_errors, "fleetcore_protocol_errors_total", "", "Connections closed for malformed or protocol-violating packets.");
  r.add(keepalive_timeouts, "fleetcore_keepalive_timeouts_total", "", "Connections closed by the keepalive rule.");
  r.add(takeovers, "fleetcore_session_takeovers_total", "", "Connections closed because the client id connected again.");
  r.add(wills, "fleetcore_will_messages_total", "", "Will messages published.");
  r.add(rate_limited, "fleetcore_rate_limited_total", "", "Times a client was paused for exceeding its publish rate.");
  r.add(pressure_pauses, "fleetcore_backpressure_pauses_total", "", "Times a publisher was paused because delivery queues were full.");
  static constexpr const char* origins[] = {"client", "will", "http", "server"};
  static_assert(std::size(origins) == static_cast<std::size_t>(broker::origin::count), "a label per origin");
  for (std::size_t i = 0; i < std::size(origins); ++i)
    r.add(topics_refused[i], "fleetcore_publish_topics_refused_total", fmt::format("origin=\"{}\"", origins[i]),
          "Publishes refused for their topic (invalid, over the limits, $SYS or a service's response topic).");
  r.add(pressure_overruns, "fleetcore_pressure_overruns_total", "",
        "Pressure episodes that outlasted limits.slow_consumer_grace_ms: publishers were resumed while "
        "online sessions still held more than limits.pressure_high_bytes unacknowledged.");
  r.add(denied, "fleetcore_denied_total", "", "Actions refused by the access policy.");
}

}  // namespace fleetcore::broker
