// Routing: every message (client, will, HTTP, server) passes the topic rules and the hooks once,
// then the trie; targets are grouped per worker and posted once per worker.
#include "broker/broker.hpp"

#include "broker/internal.hpp"
#include "common/aws_names.hpp"
#include "common/log.hpp"
#include "mqtt/topic.hpp"

#include <algorithm>
#include <utility>

namespace fleetcore::broker {

using detail::delivery_bytes;
using detail::split_shared;

void broker::publish_event(std::string topic, std::string payload, std::uint8_t qos) {
  if (check_publish_topic(topic, origin::server) != mqtt::reason_code::success) {
    FC_LOG_ERROR("broker.event_refused", "topic={:q} note=\"a service built an invalid topic\"", common::untrusted(topic));
    return;
  }
  post_event(service_message{std::move(topic), std::move(payload), qos, {}, 0});
}

bool broker::publish_event(service_message sm) {
  if (check_publish_topic(sm.topic, origin::server) != mqtt::reason_code::success) return false;
  post_event(std::move(sm));
  return true;
}

void broker::publish_events(std::vector<service_message> batch) {
  if (batch.empty()) return;
  worker& w = *workers_.front();  // the worker of post_event: one order for a thread's events
  w.post([this, &w, batch = std::move(batch)]() mutable {
    for (auto& sm : batch) route_event(w, sm);
  });
}

void broker::post_event(service_message sm) {
  worker& w = *workers_.front();
  w.post([this, &w, sm = std::move(sm)]() mutable { route_event(w, sm); });
}

void broker::route_event(worker& w, service_message& sm) {
  const auto now = clock_.wall_ms();
  auto m = make_message(std::move(sm.topic), std::move(sm.payload), sm.qos, false, sm.props, now, 0, sm.rule_hops);
  publish(w, m, {origin::server, {}, nullptr, now}, nullptr);
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
    publish(w, m, {origin::http, {}, nullptr, now}, [done = std::move(done)](bool durable, std::size_t) {
      if (done) done(durable);
    });
  });
}

mqtt::reason_code broker::check_publish_topic(std::string_view topic, origin o) {
  auto refused = [&](mqtt::reason_code rc) {
    metrics_.topics_refused[static_cast<std::size_t>(o)].inc();
    return rc;
  };
  std::size_t free_bytes = 0, free_levels = 0;
  if (topic.starts_with('$'))
    for (auto* h : hooks_)
      if (auto n = std::min(h->uncounted_prefix(topic), topic.size())) {
        free_bytes = n;
        free_levels = static_cast<std::size_t>(std::count(topic.begin(), topic.begin() + static_cast<std::ptrdiff_t>(n), '/'));
        break;
      }
  if (mqtt::check_topic_name(topic, cfg_.max_topic_length + free_bytes, cfg_.max_topic_levels + free_levels) !=
      mqtt::topic_name_error::none)
    return refused(mqtt::reason_code::topic_name_invalid);
  if (o != origin::server && server_only(topic)) return refused(mqtt::reason_code::not_authorized);
  return mqtt::reason_code::success;
}

bool broker::server_only(std::string_view topic) const {
  if (!topic.starts_with('$')) return false;  // every reserved topic is a `$` topic (see broker_hook::claim)
  if (topic.starts_with("$SYS") || topic.starts_with("$aws/events/")) return true;
  // AWS IoT's subscribe-only job notifications (reserved-topics.md), whoever serves them — whatever
  // stands in the thing's place, so no client can feed a wildcard subscriber a forged one.
  if (topic.starts_with(common::things_topic_prefix) && (topic.ends_with("/jobs/notify") || topic.ends_with("/jobs/notify-next")))
    return true;
  for (auto* h : hooks_)
    if (h->claim(topic) == topic_claim::reserved) return true;
  return false;
}

bool broker::consumed_filter(std::string_view filter) const {
  if (!filter.starts_with('$')) return false;
  for (auto* h : hooks_)
    if (h->claim(filter) == topic_claim::consumed) return true;
  return false;
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
  publish(w, m, {origin::will, client_id, nullptr, now}, nullptr);
}

std::size_t broker::publish(worker& w, const message_ptr& m, publish_context ctx, publish_ack ack,
                            std::shared_ptr<session>* congested_target) {
  // The caller's operations (if any) come first in the batch, then the hooks', then the stored copies.
  std::vector<storage::operation> ops;
  if (ctx.commit_with) ops = std::move(*ctx.commit_with);
  ctx.commit_with = &ops;
  if (offer(m, ctx)) {
    // Consumed by a service (Basic Ingest), its one recipient: acknowledged once the service's
    // operations are durable.
    if (!ops.empty()) commit(w, ops, m->qos > 0, ack, 1);
    if (ack) ack(true, 1);
    return 1;
  }
  return route(w, m, std::move(ops), std::move(ack), congested_target);
}

void broker::commit(worker& w, std::vector<storage::operation>& ops, bool must_wait, publish_ack& ack,
                    std::size_t recipients, std::vector<stored_copy> copies) {
  // Copies are withdrawn on failure only when a publisher is told (and sends again); those of a
  // will, a server event or an unanswered HTTP publish stay queued in memory, best effort.
  if (!must_wait || !ack) copies.clear();
  if ((!must_wait || !ack) && copies.empty()) {
    store_.submit(std::move(ops), nullptr);
    return;
  }
  publish_ack waiting;  // taken from the caller only if it waits for the commit
  if (must_wait) waiting = std::exchange(ack, nullptr);
  store_.submit(std::move(ops), [this, &w, recipients, ack = std::move(waiting), copies = std::move(copies)](bool ok) mutable {
    // Not stored: the copies queued for persistent sessions go too. Their publisher is refused and
    // sends again; left queued they would come twice, and an outage's retries would fill the queues.
    if (!ok)
      for (auto& c : copies) on_home(c.s, [this, s = c.s, seq = c.seq] { withdraw(*s, seq); });
    if (ack) w.post([ack = std::move(ack), ok, recipients] { ack(ok, recipients); });
  });
}

std::size_t broker::route(worker& w, const message_ptr& m, std::vector<storage::operation> ops, publish_ack ack,
                          std::shared_ptr<session>* congested_target, const std::vector<std::string>* from_peer) {
  bool must_wait = !ops.empty() && m->qos > 0;
  if (m->retain && cfg_.retain_available) {
    metrics_.retained.add(retained_.set(m));
    if (!from_peer) {  // a peer's retained message is stored by its node
      if (m->payload.empty())
        ops.push_back(storage::op::delete_retained{m->topic});
      else
        ops.push_back(storage::op::put_retained{to_stored(*m, m->qos, true)});
      must_wait = m->qos > 0;
    }
  }

  thread_local std::vector<route_entry> targets;
  thread_local std::vector<std::string_view> groups;
  thread_local std::vector<std::uint32_t> order;
  targets.clear();
  groups.clear();
  w.routes().match(m->topic, targets, cluster_ ? &groups : nullptr, from_peer != nullptr);
  // One delivery per session for overlapping non-shared subscriptions: highest QoS, every
  // subscription identifier [MQTT-3.3.4-3..5].
  order.resize(targets.size());
  for (std::uint32_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [](std::uint32_t a, std::uint32_t b) {
    return std::pair(targets[a].shared, targets[a].target.get()) < std::pair(targets[b].shared, targets[b].target.get());
  });
  thread_local std::vector<target_delivery> out;
  out.clear();
  std::vector<peer_target> peers;
  for (auto i : order) {
    const auto& e = targets[i];
    if (cluster_) {
      const auto group = groups[i];
      // A peer's message reaches the members of only the shared groups it was picked for here.
      if (from_peer && e.shared && std::find(from_peer->begin(), from_peer->end(), group) == from_peer->end()) continue;
      if (e.target->peer) {  // one frame per node, whatever matched it (few nodes: a scan)
        auto p = std::find_if(peers.begin(), peers.end(), [&](const peer_target& t) { return t.proxy == e.target; });
        if (p == peers.end()) p = peers.insert(peers.end(), {e.target, {}});
        if (e.shared) p->groups.emplace_back(group);
        continue;
      }
    }
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
  std::vector<stored_copy> copies;
  for (auto& t : out) {
    if (t.d.qos > 0 && t.s->durable.load(std::memory_order_relaxed)) {
      t.d.seq = next_seq_.fetch_add(1, std::memory_order_relaxed);
      ops.push_back(storage::op::put_message{t.s->client_id, t.s->incarnation,
                                             {t.d.seq, to_stored(*m, t.d.qos, t.d.retain), t.d.subscription_ids}});
      copies.push_back({t.s, t.d.seq});
      must_wait = true;
    }
  }
  std::size_t recipients = out.size();
  if (cluster_ && !from_peer) ack = forward_to_peers(w, m, peers, std::move(ack), recipients);
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
  if (!ops.empty()) commit(w, ops, must_wait, ack, recipients, std::move(copies));
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
    const bool counts = xp == workers_.front().get();  // worker 0's trie keeps the node's interest
    xp->post([this, xp, s, shared_changes, finish, pending, counts] {
      for (const auto& c : *shared_changes) {
        auto [group, filter] = split_shared(c.filter);
        bool changed = c.add ? xp->routes().add(filter, group, s, c.opts) : xp->routes().remove(filter, group, s.get());
        if (counts && changed) {
          pending->fetch_add(1);  // the SUBACK waits until the peers know
          note_interest(c.filter, c.add, finish);
        }
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
    // Stored like a routed message, so that its packet id outlives a restart: the client may hold
    // a QoS 2 id that must not be reused for another message.
    if (d.qos > 0 && s.durable.load(std::memory_order_relaxed)) {
      d.seq = next_seq_.fetch_add(1, std::memory_order_relaxed);
      store_.submit({storage::op::put_message{s.client_id, s.incarnation, {d.seq, to_stored(*m, d.qos, true), d.subscription_ids}}},
                    nullptr);
    }
    deliver(s, std::move(d));
  }
}

}  // namespace fleetcore::broker
