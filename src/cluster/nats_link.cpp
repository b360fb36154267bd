#include "cluster/nats_link.hpp"

#include "cluster/wire.hpp"
#include "common/log.hpp"

#include <nats/nats.h>

#include <random>
#include <stdexcept>

namespace fleetcore::cluster {

namespace {

std::uint64_t random_epoch() {
  std::random_device rd;
  return (static_cast<std::uint64_t>(rd()) << 32) ^ rd() ^
         static_cast<std::uint64_t>(std::chrono::system_clock::now().time_since_epoch().count());
}

void check(natsStatus s, const char* what) {
  if (s != NATS_OK) throw std::runtime_error(std::string("NATS: ") + what + ": " + natsStatus_GetText(s));
}

}  // namespace

std::string check_name(std::string_view s) {
  if (s.empty()) return "empty";
  if (s.size() > 64) return "longer than 64 characters";
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_'))
      return "only letters, digits, '-' and '_' are allowed";
  return {};
}

nats_link::nats_link(config cfg, broker::broker& b)
    : cfg_(std::move(cfg)), broker_(b), epoch_(random_epoch()), prefix_("fc." + cfg_.name),
      next_request_(random_epoch() | 1) {
  if (auto why = check_name(cfg_.node_id); !why.empty())
    throw std::runtime_error("cluster.node_id \"" + cfg_.node_id + "\": " + why);
  if (auto why = check_name(cfg_.name); !why.empty())
    throw std::runtime_error("cluster.name \"" + cfg_.name + "\": " + why);
}

nats_link::~nats_link() { stop(); }

std::string nats_link::to(const std::string& node, char what) const {
  return prefix_ + ".to." + node + "." + what;
}

void nats_link::start() {
  natsOptions* opts = nullptr;
  check(natsOptions_Create(&opts), "options");
  std::unique_ptr<natsOptions, decltype(&natsOptions_Destroy)> guard(opts, natsOptions_Destroy);
  check(natsOptions_SetURL(opts, cfg_.nats_url.c_str()), "server URL");
  check(natsOptions_SetName(opts, ("fleetcore " + cfg_.node_id).c_str()), "name");
  check(natsOptions_SetNoEcho(opts, true), "no echo");  // this node's broadcasts are not for itself
  check(natsOptions_SetMaxReconnect(opts, -1), "reconnects");
  check(natsOptions_SetReconnectWait(opts, 200), "reconnect wait");
  check(natsOptions_SetReconnectBufSize(opts, 64 << 20), "reconnect buffer");
  check(natsOptions_SetPingInterval(opts, 2000), "ping interval");
  check(natsOptions_SetMaxPingsOut(opts, 2), "pings out");
  check(natsOptions_SetReconnectedCB(opts, &nats_link::on_reconnected, this), "reconnected callback");
  check(natsOptions_SetRetryOnFailedConnect(opts, true, &nats_link::on_reconnected, this), "retry");
  natsStatus s;
  {
    std::unique_lock lock(nc_mutex_);
    s = natsConnection_Connect(&nc_, opts);
  }
  if (s != NATS_OK && s != NATS_NOT_YET_CONNECTED) check(s, "connect");
  check(natsConnection_Subscribe(&sub_hello_, nc_, (prefix_ + ".hello").c_str(), &nats_link::on_message, this),
        "subscribe");
  check(natsConnection_Subscribe(&sub_to_, nc_, (prefix_ + ".to." + cfg_.node_id + ".*").c_str(),
                                 &nats_link::on_message, this),
        "subscribe");
  // Peers' messages are bounded by the broker's own back-pressure, not by dropping here.
  check(natsSubscription_SetPendingLimits(sub_to_, -1, -1), "pending limits");
  FC_LOG_INFO("cluster.started", "node={} cluster={} connected={}", cfg_.node_id, cfg_.name, s == NATS_OK);
  say_hello();
  ticker_ = std::thread([this] {
    std::unique_lock lock(tick_mu_);
    while (!tick_cv_.wait_for(lock, cfg_.heartbeat, [this] { return stopping_; })) {
      lock.unlock();
      tick();
      lock.lock();
    }
  });
}

void nats_link::stop() {
  {
    std::lock_guard lock(tick_mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  tick_cv_.notify_all();
  if (ticker_.joinable()) ticker_.join();
  if (nc_) {  // the peers stop routing here now rather than after their peer timeout
    publish(prefix_ + ".hello", wire::encode(wire::bye{cfg_.node_id, epoch_}));
    natsConnection_FlushTimeout(nc_, 1000);
  }
  // Closed first, without the lock: it waits for the subscriptions' callbacks, which may publish.
  // Then destroyed under it: a publish from another thread (a store callback) finds no connection.
  if (nc_) natsConnection_Close(nc_);
  if (sub_hello_) natsSubscription_Destroy(sub_hello_);
  if (sub_to_) natsSubscription_Destroy(sub_to_);
  sub_hello_ = sub_to_ = nullptr;
  {
    std::unique_lock lock(nc_mutex_);
    if (nc_) natsConnection_Destroy(nc_);
    nc_ = nullptr;
  }
  std::unordered_map<std::uint64_t, request> pending;
  {
    std::lock_guard lock(mu_);
    pending.swap(pending_);
  }
  for (auto& [id, r] : pending) r.done(false, 0);
}

bool nats_link::connected() const {
  std::shared_lock lock(nc_mutex_);
  return nc_ && natsConnection_Status(nc_) == NATS_CONN_STATUS_CONNECTED;
}

std::string nats_link::problem() const {
  if (duplicate_id_) return "another node of the cluster has this node's id";
  if (!connected()) return "not connected to NATS";
  return {};
}

std::vector<std::string> nats_link::peers() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (const auto& [node, p] : peers_) out.push_back(node);
  return out;
}

void nats_link::register_metrics(common::registry& r) const {
  r.add_gauge_fn([this] { return static_cast<double>(peers().size()); }, "fleetcore_cluster_peers", "",
                 "Other nodes of the cluster heard from within the peer timeout.");
  r.add_gauge_fn([this] { return connected() ? 1.0 : 0.0; }, "fleetcore_cluster_nats_connected", "",
                 "1 while the node is connected to NATS.");
  r.add(timeouts_, "fleetcore_cluster_request_timeouts_total", "",
        "Requests to other nodes (a message's acknowledgement, an interest change) not answered in time.");
  r.add(dropped_frames_, "fleetcore_cluster_frames_dropped_total", "", "Frames from NATS that did not decode.");
  r.add(resyncs_, "fleetcore_cluster_resyncs_total", "",
        "Full lists of this node's interest sent to a peer (it joined, restarted or missed a change).");
}

bool nats_link::publish(const std::string& subject, const std::string& data) {
  std::shared_lock lock(nc_mutex_);
  if (!nc_) return false;
  auto s = natsConnection_Publish(nc_, subject.c_str(), data.data(), static_cast<int>(data.size()));
  if (s != NATS_OK) {
    FC_LOG_WARN("cluster.publish_failed", "subject={} error=\"{}\"", subject, natsStatus_GetText(s));
    return false;
  }
  return true;
}

void nats_link::say_hello() { publish(prefix_ + ".hello", wire::encode(wire::hello{cfg_.node_id, epoch_})); }

void nats_link::on_reconnected(natsConnection*, void* self) {
  // Whatever peers said to this node while it was away is lost: each gets the full list again, and
  // learns from the hello that this node is back.
  auto* link = static_cast<nats_link*>(self);
  {
    std::lock_guard lock(link->mu_);
    for (auto& [node, p] : link->peers_) p.needs_sync = p.want_reply = true;
  }
  FC_LOG_INFO("cluster.nats_connected", "node={}", link->cfg_.node_id);
  link->say_hello();
}

void nats_link::on_message(natsConnection*, natsSubscription*, natsMsg* msg, void* self) {
  auto* link = static_cast<nats_link*>(self);
  link->handle(natsMsg_GetSubject(msg),
               std::string_view(natsMsg_GetData(msg), static_cast<std::size_t>(natsMsg_GetDataLength(msg))));
  natsMsg_Destroy(msg);
}

void nats_link::handle(std::string_view subject, std::string_view data) {
  auto k = wire::kind_of(data);
  auto dropped = [&] {
    dropped_frames_.inc();
    FC_LOG_WARN("cluster.frame_dropped", "subject={} bytes={}", subject, data.size());
  };
  if (!k) return dropped();
  switch (*k) {
    case wire::kind::hello: {
      auto h = wire::decode_hello(data);
      if (!h) return dropped();
      if (h->node != cfg_.node_id) {
        heard(h->node, h->epoch);
      } else if (h->epoch != epoch_ && !duplicate_id_.exchange(true)) {
        // Two nodes with one id would both read its subjects: every message and answer twice.
        FC_LOG_ERROR("cluster.duplicate_node_id", "node={} note=\"another node has this id: /readyz fails\"", cfg_.node_id);
      }
      return;
    }
    case wire::kind::bye: {
      auto b = wire::decode_bye(data);
      if (!b) return dropped();
      {
        std::lock_guard lock(mu_);
        auto it = peers_.find(b->node);
        if (it == peers_.end() || it->second.epoch != b->epoch) return;  // an older incarnation's
        peers_.erase(it);
        departed_.emplace_back(b->node, b->epoch);
        if (departed_.size() > 64) departed_.pop_front();
      }
      FC_LOG_INFO("cluster.peer_left", "node={} peer={}", cfg_.node_id, b->node);
      forget({b->node}, true);
      return;
    }
    case wire::kind::inherited: {
      auto t = wire::decode_inherited(data);
      if (!t) return dropped();
      if (heard(t->node, t->epoch) == heard_from::departed) return;
      inherited(t->of);
      return;
    }
    case wire::kind::interest: {
      auto i = wire::decode_interest(data);
      if (!i) return dropped();
      auto from = heard(i->node, i->epoch);
      if (from == heard_from::departed) return;  // it said goodbye: what it said before is moot
      // A peer that knew this node already and sends its full list may have lost this node's.
      if (from == heard_from::known && i->reset && i->want_reply) send_sync(i->node, false);
      std::function<void()> done;
      if (i->request)
        done = [this, node = i->node, id = i->request] { publish(to(node, 'a'), wire::encode(wire::ack{cfg_.node_id, id, true, 0})); };
      if (i->reset) broker_.peer_reset(i->node, nullptr);
      broker_.peer_interest(i->node, std::move(i->changes), std::move(done));
      return;
    }
    case wire::kind::claim: {
      auto c = wire::decode_claim(data);
      if (!c) return dropped();
      if (heard(c->node, c->epoch) == heard_from::departed) return;
      broker_.release(c->client_id, c->clean_start, [this, node = c->node, id = c->request](bool had_session) {
        publish(to(node, 'a'), wire::encode(wire::ack{cfg_.node_id, id, true, had_session ? 1u : 0u}));
      });
      return;
    }
    case wire::kind::documents: {
      auto d = wire::decode_documents(data);
      if (!d) return dropped();
      // A departed node's last documents still apply: they are committed.
      heard(d->node, d->epoch);
      if (!on_documents) return;
      std::vector<storage::operation> writes;
      writes.reserve(d->entries.size());
      for (auto& e : d->entries) {
        if (e.deleted)
          writes.emplace_back(storage::op::delete_document{std::move(e.kind), std::move(e.key)});
        else
          writes.emplace_back(storage::op::put_document{{std::move(e.kind), std::move(e.key), std::move(e.body)}});
      }
      on_documents(std::move(writes));
      return;
    }
    case wire::kind::message: {
      auto f = wire::decode_message(data);
      if (!f) return dropped();
      // No-local is the publishing node's business: here the message has no publishing session.
      auto m = std::make_shared<broker::message>();
      m->topic = std::move(f->topic);
      m->payload = std::move(f->payload);
      m->qos = f->qos;
      m->retain = f->retain;
      m->forward_props = std::move(f->props);
      m->expiry_at_ms = f->expiry_at_ms;
      m->rule_hops = f->rule_hops;
      broker::broker::publish_ack done;
      if (f->request)
        done = [this, node = f->node, id = f->request](bool durable, std::size_t recipients) {
          publish(to(node, 'a'), wire::encode(wire::ack{cfg_.node_id, id, durable, static_cast<std::uint32_t>(recipients)}));
        };
      broker_.publish_from_peer(std::move(m), f->order_key, std::move(f->groups), std::move(done));
      return;
    }
    case wire::kind::ack: {
      auto a = wire::decode_ack(data);
      if (!a) return dropped();
      settle(a->request, a->ok, a->recipients, &a->node);
      return;
    }
  }
}

nats_link::heard_from nats_link::heard(const std::string& node, std::uint64_t epoch) {
  bool restarted = false;
  {
    std::lock_guard lock(mu_);
    if (std::find(departed_.begin(), departed_.end(), std::pair(node, epoch)) != departed_.end())
      return heard_from::departed;
    auto [it, inserted] = peers_.try_emplace(node);
    it->second.last_seen = std::chrono::steady_clock::now();
    if (!inserted && it->second.epoch == epoch) return heard_from::known;
    restarted = !inserted;
    it->second.epoch = epoch;
    it->second.needs_sync = it->second.want_reply = false;
  }
  FC_LOG_INFO("cluster.peer_joined", "node={} peer={} restarted={}", cfg_.node_id, node, restarted);
  // What a restarted peer had is gone with it (its answers too); its full list follows (it hears
  // this node's hello).
  if (restarted) fail_pending(node);
  broker_.peer_reset(node, nullptr);
  send_sync(node, true);
  say_hello();
  return heard_from::joined;
}

void nats_link::fail_pending(const std::string& node) {
  std::vector<reply> failed;
  {
    std::lock_guard lock(mu_);
    for (auto it = pending_.begin(); it != pending_.end();) {
      if (it->second.node == node) {
        failed.push_back(std::move(it->second.done));
        it = pending_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& done : failed) done(false, 0);
}

void nats_link::send_sync(const std::string& node, bool want_reply) {
  resyncs_.inc();
  // Under the broker's interest lock: the list is exactly what the changes sent after it build on. It
  // goes in frames well below NATS's max_payload: the first replaces the peer's view, the rest add.
  std::size_t budget = 256 * 1024;
  {
    std::shared_lock lock(nc_mutex_);
    if (nc_) budget = std::min<std::size_t>(budget, static_cast<std::size_t>(std::max<int64_t>(natsConnection_GetMaxPayload(nc_) / 2, 1024)));
  }
  broker_.with_local_interest([&](const std::vector<std::string>& filters) {
    wire::interest i{cfg_.node_id, epoch_, 0, true, want_reply, {}};
    std::size_t bytes = 0;
    bool sent = true;
    auto flush = [&] {
      sent = sent && publish(to(node, 'i'), wire::encode(i));
      i.reset = i.want_reply = false;
      i.changes.clear();
      bytes = 0;
    };
    for (const auto& f : filters) {
      if (bytes + f.size() + 3 > budget && (i.reset || !i.changes.empty())) flush();
      i.changes.emplace_back(f, true);
      bytes += f.size() + 3;
    }
    if (i.reset || !i.changes.empty()) flush();
    if (!sent) {
      std::lock_guard lock(mu_);
      if (auto it = peers_.find(node); it != peers_.end()) {
        it->second.needs_sync = true;
        it->second.want_reply = it->second.want_reply || want_reply;
      }
    }
  });
}

std::uint64_t nats_link::expect(const std::string& node, reply done) {
  std::lock_guard lock(mu_);
  auto id = next_request_++;
  pending_.emplace(id, request{node, std::chrono::steady_clock::now() + cfg_.request_timeout, std::move(done)});
  return id;
}

void nats_link::settle(std::uint64_t id, bool ok, std::uint32_t recipients, const std::string* from) {
  reply done;
  {
    std::lock_guard lock(mu_);
    auto it = pending_.find(id);
    if (it == pending_.end()) return;  // timed out already
    if (from && *from != it->second.node) return;  // not the node it was asked of (a stale answer)
    done = std::move(it->second.done);
    pending_.erase(it);
  }
  done(ok, recipients);
}

void nats_link::ask_all(const std::function<std::string(std::uint64_t)>& frame, char what, std::function<void()> done,
                        answer each) {
  std::vector<std::string> targets;
  {
    std::lock_guard lock(mu_);
    for (const auto& [node, p] : peers_) targets.push_back(node);
  }
  if (targets.empty()) {
    if (done) done();
    return;
  }
  auto left = std::make_shared<std::atomic<std::size_t>>(targets.size());
  auto shared_done = std::make_shared<std::function<void()>>(std::move(done));
  for (const auto& node : targets) {
    auto id = expect(node, [node, left, shared_done, each](bool ok, std::uint32_t n) {
      if (each) each(node, ok, n);
      if (left->fetch_sub(1) == 1 && *shared_done) (*shared_done)();
    });
    if (!publish(to(node, what), frame(id))) settle(id, false, 0);
  }
}

void nats_link::interest(const std::string& filter, bool add, std::function<void()> done) {
  ask_all([&](std::uint64_t id) { return wire::encode(wire::interest{cfg_.node_id, epoch_, id, false, false, {{filter, add}}}); },
          'i', std::move(done), [this](const std::string& node, bool ok, std::uint32_t) {
            if (ok) return;
            // The peer may have missed it: it gets the full list again.
            std::lock_guard lock(mu_);
            if (auto it = peers_.find(node); it != peers_.end()) it->second.needs_sync = true;
          });
}

void nats_link::publish_documents(const std::vector<storage::operation>& writes) {
  wire::documents d{cfg_.node_id, epoch_, {}};
  for (const auto& op : writes) {
    if (const auto* put = std::get_if<storage::op::put_document>(&op))
      d.entries.push_back({false, put->doc.kind, put->doc.key, put->doc.body});
    else if (const auto* del = std::get_if<storage::op::delete_document>(&op))
      d.entries.push_back({true, del->kind, del->key, {}});
  }
  if (d.entries.empty()) return;
  broadcast('d', wire::encode(d));
}

void nats_link::broadcast(char what, const std::string& frame) {
  for (const auto& node : peers()) publish(to(node, what), frame);
}

void nats_link::claim(const std::string& client_id, bool clean_start, std::function<void(bool)> done) {
  auto held = std::make_shared<std::atomic<bool>>(false);
  ask_all([&](std::uint64_t id) { return wire::encode(wire::claim{cfg_.node_id, epoch_, id, client_id, clean_start}); },
          'c', [held, done = std::move(done)] { done(held->load()); },
          [this, held, client_id](const std::string& node, bool ok, std::uint32_t had_session) {
            if (had_session) held->store(true);
            if (!ok)
              FC_LOG_WARN("cluster.claim_unanswered", "node={} peer={} client={}", cfg_.node_id, node,
                          common::untrusted(client_id));
          });
}

void nats_link::forward(const std::string& node, const broker::message_ptr& m, std::vector<std::string> groups,
                        forward_done done) {
  wire::message f{cfg_.node_id, 0, m->origin, m->qos, m->retain, m->rule_hops, m->expiry_at_ms,
                  m->topic, m->forward_props, std::move(groups), m->payload};
  if (done) f.request = expect(node, [done = std::move(done)](bool ok, std::uint32_t n) { done(ok, n); });
  if (!publish(to(node, 'm'), wire::encode(f)) && f.request) settle(f.request, false, 0);
}

void nats_link::tick() {
  say_hello();
  const auto now = std::chrono::steady_clock::now();
  std::vector<std::string> gone;
  std::vector<std::pair<std::string, bool>> resync;
  std::vector<reply> expired;
  {
    std::lock_guard lock(mu_);
    for (auto it = peers_.begin(); it != peers_.end();) {
      if (now - it->second.last_seen > cfg_.peer_timeout) {
        gone.push_back(it->first);
        it = peers_.erase(it);
        continue;
      }
      if (it->second.needs_sync) {
        resync.emplace_back(it->first, it->second.want_reply);
        it->second.needs_sync = it->second.want_reply = false;
      }
      ++it;
    }
    for (auto it = pending_.begin(); it != pending_.end();) {
      if (it->second.deadline <= now) {
        expired.push_back(std::move(it->second.done));
        it = pending_.erase(it);
      } else {
        ++it;
      }
    }
  }
  std::vector<std::string> unclaimed;
  {
    std::lock_guard lock(mu_);
    for (const auto& [node, until] : orphans_)
      if (until <= now) unclaimed.push_back(node);
  }
  for (const auto& node : unclaimed) {
    FC_LOG_WARN("cluster.inherit_timeout", "node={} peer={} note=\"messages for its sessions are no longer refused\"",
                cfg_.node_id, node);
    inherited(node);
  }
  for (const auto& node : gone) FC_LOG_WARN("cluster.peer_gone", "node={} peer={}", cfg_.node_id, node);
  forget(std::move(gone), false);
  timeouts_.inc(expired.size());
  for (auto& done : expired) done(false, 0);
  for (const auto& [node, want_reply] : resync) send_sync(node, want_reply);
}

void nats_link::forget(std::vector<std::string> gone, bool departed) {
  if (gone.empty()) return;
  std::vector<reply> failed;
  bool heir;
  {
    std::lock_guard lock(mu_);
    for (auto it = pending_.begin(); it != pending_.end();) {
      if (std::find(gone.begin(), gone.end(), it->second.node) != gone.end()) {
        failed.push_back(std::move(it->second.done));
        it = pending_.erase(it);
      } else {
        ++it;
      }
    }
    // The heir of a gone node is the lowest id alive: every node that sees the same peers agrees,
    // and if two do not, the store lets only one take each session. Only a majority of the nodes
    // known until now takes anything over, and only while connected to NATS: a node cut off sees
    // every other node gone, and taking their sessions from under them would lose what they store.
    const std::size_t alive = peers_.size() + 1, known = alive + gone.size();
    heir = (peers_.empty() || cfg_.node_id < peers_.begin()->first) && (departed || 2 * alive > known) && connected();
    for (const auto& node : gone) orphans_[node] = std::chrono::steady_clock::now() + cfg_.inherit_timeout;
  }
  for (const auto& node : gone) broker_.peer_gone(node, true);
  for (auto& done : failed) done(false, 0);
  if (!heir) return;
  for (const auto& node : gone) {
    if (on_heir) on_heir(node);
    broker_.inherit(node, [this, node](long taken) {
      if (taken < 0) return;  // not read: they stay refused until inherit_timeout
      FC_LOG_INFO("cluster.sessions_inherited", "node={} peer={} sessions={}", cfg_.node_id, node, taken);
      broadcast('t', wire::encode(wire::inherited{cfg_.node_id, epoch_, node}));
      inherited(node);
    });
  }
}

void nats_link::inherited(const std::string& node) {
  {
    std::lock_guard lock(mu_);
    if (orphans_.erase(node) == 0) return;
  }
  broker_.orphan_adopted(node);
}

}  // namespace fleetcore::cluster
