#include "shadow/shadow_service.hpp"

#include "common/aws_names.hpp"
#include "common/log.hpp"

#include <boost/asio/post.hpp>

#include <stdexcept>

namespace fleetcore::shadow {

namespace json = boost::json;

namespace {

const std::string k_shadow(shadow_service::document_kind);
/// Shared mode: how often one request is applied again after losing a race to another node. A node
/// whose change just won goes on with the next one at once, while a loser reads the shadow first: on a
/// shadow updated through several nodes at full speed, a loser may lose as many times as the winner
/// has requests waiting. Each try is a read and a commit (about a millisecond).
constexpr int k_max_attempts = 256;

std::string_view op_name(operation op) {
  switch (op) {
    case operation::get: return "get";
    case operation::update: return "update";
    case operation::remove: return "delete";
  }
  return "";
}

/// Splits a request topic into (thing, shadow name, operation); nullopt if it is not one.
struct parsed_topic {
  std::string thing, name;
  operation op;
};
std::optional<parsed_topic> parse_request_topic(std::string_view topic) {
  auto t = common::parse_thing_topic(topic);
  if (!t || t->service != "shadow") return std::nullopt;
  parsed_topic p;
  p.thing = std::string(t->thing);
  std::string_view rest = t->rest;
  if (rest.starts_with("name/")) {
    rest.remove_prefix(5);
    auto slash = rest.find('/');
    if (slash == std::string_view::npos) return std::nullopt;
    p.name = std::string(rest.substr(0, slash));
    if (!common::valid_shadow_name(p.name)) return std::nullopt;
    rest.remove_prefix(slash + 1);
  }
  if (rest == "get") p.op = operation::get;
  else if (rest == "update") p.op = operation::update;
  else if (rest == "delete") p.op = operation::remove;
  else return std::nullopt;
  return p;
}

}  // namespace

/// Where the responses of one request go: MQTT topics, or an HTTP caller's promise.
struct shadow_service::responder {
  std::string prefix;  // $aws/things/{thing}/shadow[/name/{name}]/{op}
  std::optional<std::promise<reply>> http;
  std::uint64_t origin = 0;  // MQTT session of the request counted in flight, else 0 (HTTP, a rule)
  std::string client_id;     // its client
  bool throttled = false;
};

/// A request as it arrived, kept to apply it again (shared mode).
struct shadow_service::request_args {
  operation op;
  std::string thing, name, payload;
  int attempt = 1;
  std::optional<std::string> expected;  // shared mode: the stored body its change replaced
  bool holds = false;                   // shared mode: its change is the one in flight (busy_)
};


shadow_service::shadow_service(storage::store& store, common::clock& clock, limits lim)
    : store_(store), clock_(clock), limits_(lim), work_(io_.get_executor()) {
  for (auto& d : store_.load_documents(k_shadow)) {
    auto s = shadow_state::parse(d.body);
    if (!s) throw std::runtime_error("shadow: unreadable document '" + d.key + "'");
    shadows_.emplace(d.key, std::move(*s));
  }
  FC_LOG_INFO("shadow.loaded", "shadows={}", shadows_.size());
}

shadow_service::~shadow_service() { stop(); }

void shadow_service::start() {
  // Shared mode: the stored bodies the first changes replace (read again: only a cluster needs them).
  if (replicate)
    for (auto& d : store_.load_documents(k_shadow)) stored_.emplace(d.key, std::move(d.body));
  thread_ = std::thread([this] {
    io_.run();
  });
}

void shadow_service::stop() {
  if (!thread_.joinable()) return;
  work_.reset();
  thread_.join();
  // The last requests' commits call back into this service (their responses): done before it goes.
  store_.flush();
}

broker::topic_claim shadow_service::claim(std::string_view topic) const {
  if (!topic.starts_with(common::things_topic_prefix) || topic.find("/shadow/") == std::string_view::npos)
    return broker::topic_claim::none;
  bool response = topic.ends_with("/accepted") || topic.ends_with("/rejected") || topic.ends_with("/delta") ||
                  topic.ends_with("/documents");
  return response ? broker::topic_claim::reserved : broker::topic_claim::none;
}

bool shadow_service::on_message(const broker::message_ptr& m, const broker::publish_context& ctx) {
  // Requests of every origin, a rule's republish included; its own responses are not requests.
  auto p = parse_request_topic(m->topic);
  if (!p) return false;
  // Admitted here, on the publisher's worker, so that a flood is refused before it queues up.
  const bool admitted = m->origin == 0 || inflight_.admit(m->origin);
  boost::asio::post(io_, [this, p = std::move(*p), m, admitted, client = std::string(ctx.client_id)]() mutable {
    auto r = std::make_shared<responder>();
    r->prefix = m->topic;
    r->origin = admitted ? m->origin : 0;
    r->client_id = std::move(client);
    r->throttled = !admitted;
    handle(std::make_shared<request_args>(request_args{p.op, std::move(p.thing), std::move(p.name), m->payload, 1, std::nullopt}),
           std::move(r));
  });
  return false;
}

std::future<reply> shadow_service::call(operation op, std::string thing, std::string shadow_name, std::string payload) {
  auto r = std::make_shared<responder>();
  r->http.emplace();
  auto f = r->http->get_future();
  boost::asio::post(io_, [this, op, thing = std::move(thing), name = std::move(shadow_name),
                          payload = std::move(payload), r]() mutable {
    r->prefix = "$aws/things/" + thing + "/shadow" + (name.empty() ? "" : "/name/" + name) + "/" +
                std::string(op_name(op));
    handle(std::make_shared<request_args>(request_args{op, std::move(thing), std::move(name), std::move(payload), 1, std::nullopt}),
           std::move(r));
  });
  return f;
}

std::future<reply> shadow_service::list_named(std::string thing, std::optional<std::string> next_token, int page_size) {
  auto promise = std::make_shared<std::promise<reply>>();
  auto f = promise->get_future();
  boost::asio::post(io_, [this, thing = std::move(thing), next_token = std::move(next_token), page_size, promise] {
    std::string from = thing + '\t';
    json::array names;
    std::optional<std::string> next;
    auto it = next_token ? shadows_.upper_bound(from + *next_token) : shadows_.lower_bound(from);
    for (; it != shadows_.end() && it->first.starts_with(from); ++it) {
      std::string name = it->first.substr(from.size());
      if (name.empty() || !it->second.exists) continue;
      if (static_cast<int>(names.size()) == page_size) {
        next = names.back().as_string().c_str();
        break;
      }
      names.push_back(json::value(name));
    }
    json::object body{{"results", std::move(names)}, {"timestamp", now_s()}};
    if (next) body["nextToken"] = *next;
    promise->set_value({200, json::serialize(body)});
  });
  return f;
}

void shadow_service::handle(std::shared_ptr<request_args> a, std::shared_ptr<responder> r) {
  const operation op = a->op;
  const std::string& thing = a->thing;
  const std::string& name = a->name;
  const std::string& payload = a->payload;
  const std::string key = thing + '\t' + name;
  if (replicate && !a->holds) {
    if (auto b = busy_.find(key); b != busy_.end()) {  // behind this node's change in flight
      b->second.push_back({std::move(a), std::move(r)});
      return;
    }
  }
  const std::int64_t now = now_s();
  auto [it, inserted] = shadows_.try_emplace(key);
  shadow_state& s = it->second;
  std::vector<std::pair<std::string, std::string>> messages;  // (topic suffix, payload)
  reply http;
  std::vector<storage::operation> ops;
  request req;
  std::optional<error> err;
  std::string_view label = name.empty() ? std::string_view(thing) : std::string_view(name);
  // The write of the new state: in shared mode only over the body this node last saw.
  auto write = [&] {
    if (!replicate) return ops.push_back(storage::op::put_document{{k_shadow, key, s.serialize()}});
    auto stored = stored_.find(key);
    a->expected = stored == stored_.end() ? std::nullopt : std::optional<std::string>(stored->second);
    std::string body = s.serialize();
    ops.push_back(storage::op::swap_document{{k_shadow, key, body}, a->expected});
    stored_[key] = std::move(body);  // the next change of this shadow replaces this one
    if (!a->holds) busy_.try_emplace(key);
    a->holds = true;
  };

  if (r->throttled) {
    err = error{429, "Too Many Requests"};
    (void)parse_simple(payload, req);  // for the clientToken, if the payload has one
  } else switch (op) {
    case operation::update: {
      update_result res;
      err = parse_update(payload, limits_, req);
      if (!err) err = apply_update(s, req, now, limits_, res);
      if (!err) {
        write();
        http.body = json::serialize(res.accepted);
        messages.emplace_back("/accepted", http.body);
        if (res.delta) messages.emplace_back("/delta", json::serialize(*res.delta));
        messages.emplace_back("/documents", json::serialize(res.documents));
      }
      break;
    }
    case operation::get: {
      json::object doc;
      err = parse_simple(payload, req);
      if (!err) err = get_document(s, req, now, doc, label);
      if (!err) {
        gets_.inc();
        http.body = json::serialize(doc);
        messages.emplace_back("/accepted", http.body);
      }
      break;
    }
    case operation::remove: {
      json::object doc;
      err = parse_simple(payload, req);
      if (!err) err = delete_shadow(s, req, now, doc, label);
      if (!err) {
        write();
        http.body = json::serialize(doc);
        messages.emplace_back("/accepted", http.body);
      }
      break;
    }
  }
  if (err) {
    rejected_.inc();
    http.status = err->code;
    http.body = json::serialize(error_document(*err, now, req.client_token));
    messages.clear();
    messages.emplace_back("/rejected", http.body);
  }
  if (!s.exists && s.deleted_at == 0 && s.version == 0) shadows_.erase(it);  // nothing to remember

  // Responses leave only after the change is durable; requests without a change still pass through
  // the store's queue so that their responses cannot overtake earlier ones.
  const bool changed = !ops.empty();
  const bool shared_write = replicate && changed;
  if (a->holds && !changed) {  // tried again, it changes nothing now (a version that no longer matches)
    a->holds = false;
    boost::asio::post(io_, [this, key] { release(key); });
  }
  std::vector<storage::operation> written;
  if (shared_write)
    for (const auto& o : ops)
      written.push_back(storage::op::put_document{std::get<storage::op::swap_document>(o).doc});
  store_.submit(std::move(ops), [this, a = std::move(a), r = std::move(r), messages = std::move(messages),
                                 http = std::move(http), now, changed, shared_write, written = std::move(written),
                                 client_token = req.client_token](bool durable) mutable {
    if (durable && shared_write) replicate(written);
    if (durable && changed) (a->op == operation::update ? updates_ : deletes_).inc();
    if (durable) {
      if (shared_write) boost::asio::post(io_, [this, key = a->thing + '\t' + a->name] { release(key); });
      return respond(r, std::move(messages), std::move(http));
    }
    if (!shared_write) return fail(r, now, client_token);
    // Another node may have changed the shadow first: find out on the service's thread.
    boost::asio::post(io_, [this, a = std::move(a), r = std::move(r)]() mutable { retry(std::move(a), std::move(r)); });
  });
}

void shadow_service::retry(std::shared_ptr<request_args> a, std::shared_ptr<responder> r) {
  const std::string key = a->thing + '\t' + a->name;
  std::optional<storage::document> stored;
  bool read = true;
  try {
    stored = store_.load_document(k_shadow, key);
  } catch (const std::exception& e) {
    FC_LOG_ERROR("shadow.read_failed", "key={:q} error={:q}", common::untrusted(key), common::untrusted(e.what()));
    read = false;
  }
  std::optional<std::string> body;
  if (stored) body = std::move(stored->body);
  // The stored body is the one the change expected: the store failed, no other node won.
  const bool lost_race = read && body != a->expected;
  if (read) refresh(key, body);
  if (!lost_race || a->attempt >= k_max_attempts) {
    FC_LOG_WARN("shadow.write_failed", "key={:q} attempts={} lost_race={}", common::untrusted(key), a->attempt, lost_race);
    request req;
    (void)parse_simple(a->payload, req);
    fail(r, now_s(), req.client_token);
    return release(key);
  }
  conflicts_.inc();
  ++a->attempt;
  handle(std::move(a), std::move(r));
}

void shadow_service::release(const std::string& key) {
  auto it = busy_.find(key);
  if (it == busy_.end()) return;
  auto next = std::move(it->second);
  busy_.erase(it);
  while (!next.empty()) {
    auto w = std::move(next.front());
    next.pop_front();
    handle(std::move(w.a), std::move(w.r));
    if (auto b = busy_.find(key); b != busy_.end()) {  // that one changes it: the rest wait for it
      b->second.insert(b->second.begin(), std::make_move_iterator(next.begin()), std::make_move_iterator(next.end()));
      return;
    }
  }
}

void shadow_service::refresh(const std::string& key, std::optional<std::string> body) {
  std::optional<shadow_state> parsed;
  if (body && !(parsed = shadow_state::parse(*body))) {
    FC_LOG_ERROR("shadow.unreadable", "key={:q}", common::untrusted(key));
    return;
  }
  if (parsed) {
    shadows_[key] = std::move(*parsed);
    stored_[key] = std::move(*body);
  } else {
    shadows_.erase(key);
    stored_.erase(key);
  }
}

void shadow_service::apply_replica(std::vector<storage::operation> writes) {
  boost::asio::post(io_, [this, writes = std::move(writes)]() mutable {
    for (auto& w : writes) {
      auto* put = std::get_if<storage::op::put_document>(&w);
      if (!put || put->doc.kind != k_shadow) continue;
      auto replica = shadow_state::parse(put->doc.body);
      if (!replica) {
        FC_LOG_ERROR("shadow.replica_unreadable", "key={:q}", common::untrusted(put->doc.key));
        continue;
      }
      // Changes of one shadow are serialized by the store: the later has the higher version, or the
      // same one when it deletes. (One that arrives late, after a newer one, is not applied.)
      // One of this node's changes is in flight: it, or its second try, reads the store anyway.
      if (busy_.contains(put->doc.key)) continue;
      auto it = shadows_.find(put->doc.key);
      if (it != shadows_.end() && (replica->version < it->second.version ||
                                   (replica->version == it->second.version && (replica->exists || !it->second.exists))))
        continue;
      shadows_[put->doc.key] = std::move(*replica);
      stored_[put->doc.key] = std::move(put->doc.body);
    }
  });
}

void shadow_service::fail(const std::shared_ptr<responder>& r, std::int64_t now,
                          const std::optional<std::string>& client_token) {
  reply http{500, json::serialize(error_document({500, "Internal service failure"}, now, client_token))};
  respond(r, {{"/rejected", http.body}}, std::move(http));
}

void shadow_service::respond(const std::shared_ptr<responder>& r, std::vector<std::pair<std::string, std::string>> messages,
                             reply http) {
  if (r->http) {
    r->http->set_value(std::move(http));
    // The HTTP caller gets the response; the other subscribers still see delta and documents.
    for (auto& [suffix, body] : messages)
      if (suffix == "/delta" || suffix == "/documents")
        if (publish) publish(r->prefix + suffix, std::move(body));
    return;
  }
  if (publish)
    for (auto& [suffix, body] : messages) publish(r->prefix + suffix, std::move(body));
  if (r->origin) inflight_.release(r->client_id, r->origin);  // behind its responses
}

void shadow_service::register_metrics(common::registry& r) const {
  r.add(updates_, "fleetcore_shadow_requests_total", "op=\"update\"", "Accepted shadow requests.");
  r.add(gets_, "fleetcore_shadow_requests_total", "op=\"get\"", "Accepted shadow requests.");
  r.add(deletes_, "fleetcore_shadow_requests_total", "op=\"delete\"", "Accepted shadow requests.");
  r.add(rejected_, "fleetcore_shadow_rejected_total", "", "Shadow requests rejected (published on /rejected).");
  r.add(conflicts_, "fleetcore_shadow_conflicts_total", "",
        "Cluster mode: shadow changes applied again because another node changed the shadow first.");
}

}  // namespace fleetcore::shadow
