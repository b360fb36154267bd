// Sessions: CONNECT attaches one (takeover included), DISCONNECT detaches it, expiry ends it.
#include "broker/broker.hpp"

#include "broker/internal.hpp"
#include "common/log.hpp"
#include "mqtt/topic.hpp"

#include <algorithm>
#include <random>

namespace fleetcore::broker {

using detail::never_expires;
using detail::split_shared;

void broker::on_home(const std::shared_ptr<session>& s, std::function<void()> fn) {
  worker* home = s->home.load(std::memory_order_acquire);
  if (home->on_thread()) {
    fn();
    return;
  }
  home->post([this, s, fn = std::move(fn)]() mutable { on_home(s, std::move(fn)); });
}

std::uint64_t broker::new_incarnation() {
  if (!cluster_) return next_incarnation_++;
  thread_local std::mt19937_64 random{std::random_device{}()};
  std::uint64_t id;
  do {
    id = random() >> 1;  // stored as a signed 64-bit integer
  } while (id == 0);     // 0 means no session (a server message's origin)
  return id;
}

void broker::connect(const std::shared_ptr<client_connection>& c, bool clean_start, std::uint32_t expiry) {
  if (!cluster_) {
    attach_session(c, clean_start, expiry);
    return;
  }
  std::weak_ptr<client_connection> wc = c;
  worker& w = c->home();
  cluster_->claim(c->client_id(), clean_start, [this, wc, &w, clean_start, expiry](bool held_elsewhere) {
    w.post([this, wc, clean_start, expiry, held_elsewhere] {
      auto c = wc.lock();
      if (c && c->state_ == client_connection::state::connecting) connect_in_cluster(c, clean_start, expiry, held_elsewhere);
    });
  });
}

void broker::connect_in_cluster(const std::shared_ptr<client_connection>& c, bool clean_start, std::uint32_t expiry,
                                bool held_elsewhere) {
  bool here;
  std::shared_ptr<session> stale;
  {
    std::lock_guard lock(sessions_mutex_);
    auto it = sessions_.find(c->client_id());
    here = it != sessions_.end();
    // Another node held it too: this node lost it (cut off from the cluster while the client moved), so
    // the copy here is stale and the store has the session as that node left it.
    if (here && held_elsewhere) {
      stale = it->second;
      sessions_.erase(it);
      here = false;
    }
  }
  if (stale) {
    on_home(stale, [this, stale] {
      stale->handed_over = true;  // its rows are the other node's
      if (stale->conn)
        stale->conn->close(mqtt::reason_code::session_taken_over);
      else
        end_session(*stale);
    });
  }
  if (here || clean_start) {
    attach_session(c, clean_start, expiry);
    return;
  }
  // Not held here: another node may have stored it (it just gave it up, or it died).
  std::weak_ptr<client_connection> wc = c;
  worker& w = c->home();
  store_.load_session(c->client_id(), [this, wc, &w, expiry](std::optional<storage::session_record> r, bool ok) {
    auto record = std::make_shared<std::optional<storage::session_record>>(std::move(r));
    w.post([this, wc, &w, expiry, record, ok] {
      auto c = wc.lock();
      if (!c || c->state_ != client_connection::state::connecting) return;
      if (!ok) {  // a new session now would replace the stored one: refuse, the client comes back
        c->refuse(mqtt::reason_code::server_unavailable);
        return;
      }
      std::shared_ptr<session> adopted;
      if (*record) {
        std::lock_guard lock(sessions_mutex_);
        // Created here meanwhile (another CONNECT with this id won the race): that one stands.
        if (!sessions_.contains(c->client_id()))
          adopted = adopt(std::move(**record), w, [this, wc, &w, expiry](const std::shared_ptr<session>& s, bool durable) {
            auto c = wc.lock();
            const bool waiting = c && c->state_ == client_connection::state::connecting;
            if (!durable) {  // another node took it first (it inherited it): the client comes back
              if (waiting) c->refuse(mqtt::reason_code::server_unavailable);
              return;
            }
            FC_LOG_INFO("session.taken_over", "client={} note=\"stored by another node\"", common::untrusted(s->client_id));
            // Its subscriptions are in every trie and known to every node before the CONNACK, as after a SUBACK.
            route_adopted(w, s, [this, wc, expiry, s] {
              if (auto c = wc.lock(); c && c->state_ == client_connection::state::connecting)
                attach_session(c, false, expiry);
              else
                arm_expiry(*s);  // its client left meanwhile: offline here, expiring as it would
            });
          });
      }
      if (!adopted) attach_session(c, false, expiry);
    });
  });
}

std::shared_ptr<session> broker::adopt(storage::session_record r, worker& w,
                                       std::function<void(const std::shared_ptr<session>&, bool durable)> then) {
  std::vector<storage::operation> ops;
  const auto from = r.incarnation;
  r.incarnation = new_incarnation();
  auto s = restore(r, w, ops);
  if (!s) {
    store_.submit(std::move(ops), nullptr);  // expired: deleted, unless its incarnation moved on
    return nullptr;
  }
  // Its rows move to the new incarnation first: whatever the old holder still writes is ignored. If
  // another node moved them first, the batch fails and the copy here goes.
  ops.insert(ops.begin(), storage::op::adopt_session{r.client_id, from, r.incarnation, cfg_.node_id});
  sessions_.emplace(r.client_id, s);
  store_.submit(std::move(ops), [this, s, &w, then = std::move(then)](bool durable) {
    w.post([this, s, durable, then] {
      if (!durable && !s->ended) {
        FC_LOG_INFO("session.taken_elsewhere", "client={}", common::untrusted(s->client_id));
        s->handed_over = true;  // its rows are the other node's
        end_session(*s);
      }
      then(s, durable && !s->ended);  // ended: another node claimed it meanwhile, and has it now
    });
  });
  return s;
}

void broker::route_adopted(worker& w, const std::shared_ptr<session>& s, std::function<void()> done) {
  std::vector<route_change> changes;
  for (const auto& [f, opts] : s->subscriptions) changes.push_back({f, opts, true});
  s->durable = false;  // stored already: update_routes writes nothing
  update_routes(w, s, std::move(changes), std::move(done));
  s->durable = true;
}

void broker::release(const std::string& client_id, bool clean_start, std::function<void(bool)> done) {
  std::shared_ptr<session> s;
  {
    std::lock_guard lock(sessions_mutex_);
    auto it = sessions_.find(client_id);
    if (it != sessions_.end()) {
      s = it->second;
      sessions_.erase(it);  // from here its connection's close ends it (detach: not current)
    }
  }
  if (!s) {
    done(false);
    return;
  }
  on_home(s, [this, s, clean_start, done = std::move(done)] {
    const bool keep = !clean_start && s->durable && !s->ended;
    s->handed_over = keep;
    if (s->conn) {
      metrics_.takeovers.inc();
      s->conn->close(mqtt::reason_code::session_taken_over);
    } else {
      end_session(*s);
    }
    if (!keep) {
      done(false);
      return;
    }
    // What it stored is durable before the other node reads it: the store keeps batches in order.
    store_.submit({storage::op::touch_session{s->client_id, s->incarnation, s->expiry_interval, clock_.wall_ms()}},
                  [done](bool) { done(true); });
  });
}

void broker::attach_session(const std::shared_ptr<client_connection>& c, bool clean_start, std::uint32_t expiry) {
  worker& w = c->home();
  std::shared_ptr<session> old, fresh;
  {
    std::lock_guard lock(sessions_mutex_);
    auto it = sessions_.find(c->client_id());
    if (it != sessions_.end()) old = it->second;
    if (!old || clean_start) {
      fresh = std::make_shared<session>(c->client_id(), new_incarnation(), &w);
      sessions_[c->client_id()] = fresh;
    }
  }
  if (fresh) {
    metrics_.sessions.add();
    if (expiry > 0 || (old && old->durable) || cluster_) {  // in a cluster, another node may have stored one
      fresh->durable = expiry > 0;
      store_.submit({storage::op::put_session{fresh->client_id, fresh->incarnation, expiry,
                                              static_cast<std::uint8_t>(c->version()), 0, cfg_.node_id}},
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
        if (c->state_ == client_connection::state::connecting) attach_session(c, false, expiry);
      });
      return;
    }
    if (old->conn) {
      metrics_.takeovers.inc();
      old->conn->close(mqtt::reason_code::session_taken_over);
    }
    if (old->ended) {  // the old connection's session was not persistent
      w.post([this, c, expiry] {
        if (c->state_ == client_connection::state::connecting) attach_session(c, false, expiry);
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
  // Resumed on another node before its will delay elapsed: the will is not sent [MQTT-3.1.3-9].
  if (will && s.handed_over && will->props.will_delay_interval.value_or(0) > 0) will.reset();
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
  if (s.handed_over) s.pending_will.reset();  // its session lives on: not ended
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
      const bool counts = wp == workers_.front().get();
      wp->post([this, wp, sp, filters, counts] {
        for (auto& f : *filters) {
          auto [group, filter] = split_shared(f);
          if (wp->routes().remove(filter, group, sp.get()) && counts) note_interest(f, false, nullptr);
        }
      });
    }
  }
  adjust_backlog(s, -static_cast<std::int64_t>(s.queue.size() + s.inflight.size()), -s.backlog_bytes);
  s.queue.clear();
  s.inflight.clear();
  if (s.congested_since.exchange(0)) congested_.fetch_sub(1, std::memory_order_relaxed);
  if (s.durable && !s.handed_over) store_.submit({storage::op::delete_session{s.client_id, s.incarnation}}, nullptr);
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

}  // namespace fleetcore::broker
