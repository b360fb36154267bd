// The broker's side of a cluster: this node's interest as the other nodes see it, their stand-ins in
// the tries, and the messages that cross between nodes. The transport is the cluster_link (NATS).
#include "broker/broker.hpp"

#include "broker/internal.hpp"
#include "common/log.hpp"

#include <algorithm>

namespace fleetcore::broker {

using detail::split_shared;

namespace {
/// Every filter of a peer's stand-in, as removals.
std::vector<std::pair<std::string, bool>> all_removed(const session& proxy) {
  std::vector<std::pair<std::string, bool>> changes;
  for (const auto& [f, o] : proxy.subscriptions) changes.emplace_back(f, false);
  return changes;
}
}  // namespace

void broker::note_interest(const std::string& filter, bool add, std::function<void()> done) {
  std::shared_ptr<interest_wait> join;
  {
    std::lock_guard lock(interest_mutex_);
    bool changed = false;
    if (add) {
      changed = interest_[filter]++ == 0;
    } else if (auto it = interest_.find(filter); it != interest_.end() && --it->second == 0) {
      interest_.erase(it);
      changed = true;
    }
    if (cluster_ && changed) {
      // Told under the lock, so the cluster sees this node's changes in the order they happened.
      std::function<void()> told = std::move(done);
      if (add) {
        // Later subscribers of the filter wait for the same answer: their SUBACK must not overtake it.
        auto w = std::make_shared<interest_wait>();
        interest_pending_[filter] = w;
        told = [w, first = std::move(told)] {
          std::vector<std::function<void()>> rest;
          {
            std::lock_guard l(w->m);
            w->done = true;
            rest.swap(w->waiters);
          }
          if (first) first();
          for (auto& fn : rest) fn();
        };
      } else {
        interest_pending_.erase(filter);
      }
      cluster_->interest(filter, add, std::move(told));
      return;
    }
    if (cluster_ && add && done) {
      if (auto it = interest_pending_.find(filter); it != interest_pending_.end()) {
        join = it->second;
        std::lock_guard l(join->m);
        if (join->done) {
          interest_pending_.erase(it);
          join.reset();
        } else {
          join->waiters.push_back(std::move(done));
          return;
        }
      }
    }
  }
  if (done) done();
}

void broker::with_local_interest(const std::function<void(const std::vector<std::string>&)>& fn) {
  std::lock_guard lock(interest_mutex_);
  std::vector<std::string> filters;
  filters.reserve(interest_.size());
  for (const auto& [f, n] : interest_) filters.push_back(f);
  fn(filters);
}

std::shared_ptr<session> broker::proxy_of(const std::string& node) {
  auto& p = peers_[node];
  if (!p) {
    p = std::make_shared<session>(node, 0, workers_.front().get());
    p->peer = true;
    p->online = true;  // shared groups prefer online members: a node counts as one
  }
  return p;
}

void broker::apply_peer_routes(const std::shared_ptr<session>& proxy, std::vector<std::pair<std::string, bool>> changes,
                               std::function<void()> done) {
  // The peer gets every message at the highest QoS with its retain flag; its node applies each of
  // its subscribers' options.
  const subscription_options opts{2, false, true, mqtt::retain_handling::send, 0};
  auto shared_changes = std::make_shared<const std::vector<std::pair<std::string, bool>>>(std::move(changes));
  auto pending = std::make_shared<std::atomic<int>>(static_cast<int>(workers_.size()));
  for (auto& x : workers_) {
    worker* xp = x.get();
    xp->post([xp, proxy, shared_changes, pending, opts, done] {
      for (const auto& [full, add] : *shared_changes) {
        auto [group, filter] = split_shared(full);
        if (add)
          xp->routes().add(filter, group, proxy, opts);
        else
          xp->routes().remove(filter, group, proxy.get());
      }
      if (pending->fetch_sub(1) == 1 && done) done();
    });
  }
}

void broker::peer_reset(const std::string& node, std::function<void()> done) {
  std::lock_guard lock(peers_mutex_);  // held while posting: one peer's changes reach each worker in order
  auto proxy = proxy_of(node);
  auto changes = all_removed(*proxy);
  proxy->subscriptions.clear();
  apply_peer_routes(proxy, std::move(changes), std::move(done));
}

void broker::peer_gone(const std::string& node, bool orphaned) {
  std::lock_guard lock(peers_mutex_);
  auto it = peers_.find(node);
  if (it == peers_.end()) return;
  auto proxy = std::move(it->second);
  peers_.erase(it);
  std::vector<std::pair<std::string, bool>> changes;
  for (auto& [f, o] : proxy->subscriptions)
    if (!orphaned || !split_shared(f).first.empty()) changes.emplace_back(f, false);  // shared groups have other members
  if (orphaned) {
    // Its sessions' own filters stay, refusing QoS 1/2 messages until they are taken over.
    proxy->orphan.store(true, std::memory_order_relaxed);
    for (auto& [f, add] : changes) proxy->subscriptions.erase(f);
    if (auto& slot = orphans_[node])  // gone twice before the first was taken over: that one goes
      apply_peer_routes(slot, all_removed(*slot), nullptr);
    orphans_[node] = proxy;
  } else {
    proxy->subscriptions.clear();
  }
  apply_peer_routes(proxy, std::move(changes), nullptr);
}

void broker::orphan_adopted(const std::string& node) {
  std::lock_guard lock(peers_mutex_);
  auto it = orphans_.find(node);
  if (it == orphans_.end()) return;
  auto proxy = std::move(it->second);
  orphans_.erase(it);
  auto changes = all_removed(*proxy);
  proxy->subscriptions.clear();
  apply_peer_routes(proxy, std::move(changes), nullptr);
}

void broker::inherit(const std::string& node, std::function<void(long)> done) {
  store_.load_node_sessions(node, [this, node, done = std::move(done)](std::vector<storage::session_record> records, bool ok) {
    if (!ok) {
      FC_LOG_ERROR("cluster.inherit_failed", "node={} note=\"its sessions are taken over when their clients reconnect\"",
                   node);
      done(-1);
      return;
    }
    struct join {
      std::atomic<std::size_t> pending;
      std::atomic<long> taken{0};
      std::function<void(long)> done;
      void finish() {
        if (pending.fetch_sub(1) == 1) done(taken.load());
      }
    };
    auto j = std::make_shared<join>();
    j->pending = records.size() + 1;
    j->done = done;
    std::size_t i = 0;
    for (auto& r : records) {
      worker& w = *workers_[i++ % workers_.size()];
      auto record = std::make_shared<storage::session_record>(std::move(r));
      w.post([this, &w, record, j] {
        std::shared_ptr<session> s;
        {
          std::lock_guard lock(sessions_mutex_);
          // Its client connected here meanwhile: that connection took it (or started afresh).
          if (!sessions_.contains(record->client_id))
            s = adopt(std::move(*record), w, [this, &w, j](const std::shared_ptr<session>& s, bool durable) {
              if (!durable) return j->finish();
              // Offline here from now (it may have been connected to the node that died).
              touch_session(*s, false);
              route_adopted(w, s, [this, s, j] {
                metrics_.sessions_inherited.inc();
                ++j->taken;
                arm_expiry(*s);
                j->finish();
              });
            });
        }
        if (!s) j->finish();
      });
    }
    j->finish();
  });
}

void broker::peer_interest(const std::string& node, std::vector<std::pair<std::string, bool>> changes,
                           std::function<void()> done) {
  std::lock_guard lock(peers_mutex_);
  auto proxy = proxy_of(node);
  std::erase_if(changes, [&](const auto& c) {
    return c.second ? !proxy->subscriptions.emplace(c.first, subscription_options{}).second
                    : proxy->subscriptions.erase(c.first) == 0;
  });
  apply_peer_routes(proxy, std::move(changes), std::move(done));
}

void broker::publish_from_peer(message_ptr m, std::uint64_t order_key, std::vector<std::string> groups, publish_ack done) {
  // One publisher's messages take one worker, so they reach every subscriber in order.
  worker& w = *workers_[order_key % workers_.size()];
  w.post([this, &w, m = std::move(m), groups = std::move(groups), done = std::move(done)]() mutable {
    metrics_.peer_messages_in.inc();
    route(w, m, {}, std::move(done), nullptr, &groups);
  });
}

broker::publish_ack broker::forward_to_peers(worker& w, const message_ptr& m, std::vector<peer_target>& peers,
                                             publish_ack ack, std::size_t& recipients) {
  if (m->retain && cfg_.retain_available) {  // every node keeps the retained messages
    std::lock_guard lock(peers_mutex_);
    for (auto& entry : peers_) {
      const auto& proxy = entry.second;
      if (std::none_of(peers.begin(), peers.end(), [&](const peer_target& p) { return p.proxy == proxy; }))
        peers.push_back({proxy, {}});
    }
  }
  // A gone node's sessions not taken over yet: a message they must get cannot be acknowledged.
  const auto orphans = std::erase_if(peers, [](const peer_target& p) { return p.proxy->orphan.load(std::memory_order_relaxed); });
  if (orphans && m->qos > 0 && ack) {
    metrics_.orphan_refusals.inc();
    ack = [ack = std::move(ack)](bool, std::size_t n) { ack(false, n); };
  }
  if (peers.empty()) return ack;
  metrics_.peer_messages_out.inc(peers.size());
  if (m->qos == 0 || !ack) {  // nothing to wait for: the peers' subscribers count as one each
    for (auto& p : peers) cluster_->forward(p.proxy->client_id, m, std::move(p.groups), nullptr);
    recipients += peers.size();
    return ack;
  }
  // The publisher's ack waits for the local part (route's own ack) and every peer.
  struct join {
    std::atomic<std::size_t> pending;
    std::atomic<bool> ok{true};
    std::atomic<std::size_t> recipients{0};
    publish_ack ack;
  };
  auto j = std::make_shared<join>();
  j->pending = peers.size() + 1;
  j->ack = std::move(ack);
  auto settle = [j, &w](bool ok, std::size_t n) {
    if (!ok) j->ok = false;
    j->recipients += n;
    if (j->pending.fetch_sub(1) == 1) w.post([j] { j->ack(j->ok, j->recipients); });
  };
  for (auto& p : peers) cluster_->forward(p.proxy->client_id, m, std::move(p.groups), settle);
  return settle;
}

}  // namespace fleetcore::broker
