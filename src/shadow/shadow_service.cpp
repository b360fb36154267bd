#include "shadow/shadow_service.hpp"

#include "common/aws_names.hpp"
#include "common/log.hpp"

#include <boost/asio/post.hpp>

namespace fleetcore::shadow {

namespace json = boost::json;

namespace {

constexpr const char* k_shadow = "shadow";

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
  std::uint64_t origin = 0;  // MQTT session of the request, 0 for HTTP
  bool throttled = false;
};

bool shadow_service::admit(std::uint64_t origin) {
  if (origin == 0) return true;
  std::lock_guard lock(inflight_mutex_);
  int& n = inflight_[origin];
  if (n >= limits_.max_inflight_per_client) return false;
  ++n;
  return true;
}

void shadow_service::release(std::uint64_t origin) {
  if (origin == 0) return;
  std::lock_guard lock(inflight_mutex_);
  auto it = inflight_.find(origin);
  if (it != inflight_.end() && --it->second == 0) inflight_.erase(it);
}


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
  bool admitted = admit(m->origin);
  boost::asio::post(io_, [this, p = std::move(*p), m, admitted] {
    auto r = std::make_shared<responder>();
    r->prefix = m->topic;
    r->origin = admitted ? m->origin : 0;
    r->throttled = !admitted;
    handle(p.op, p.thing, p.name, m->payload, std::move(r));
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
    handle(op, thing, name, payload, std::move(r));
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

void shadow_service::handle(operation op, const std::string& thing, const std::string& name,
                            const std::string& payload, std::shared_ptr<responder> r) {
  const std::string key = thing + '\t' + name;
  const std::int64_t now = now_s();
  auto [it, inserted] = shadows_.try_emplace(key);
  shadow_state& s = it->second;
  std::vector<std::pair<std::string, std::string>> messages;  // (topic suffix, payload)
  reply http;
  std::vector<storage::operation> ops;
  request req;
  std::optional<error> err;
  std::string_view label = name.empty() ? std::string_view(thing) : std::string_view(name);

  if (r->throttled) {
    err = error{429, "Too Many Requests"};
    (void)parse_simple(payload, req);  // for the clientToken, if the payload has one
  } else switch (op) {
    case operation::update: {
      update_result res;
      err = parse_update(payload, limits_, req);
      if (!err) err = apply_update(s, req, now, limits_, res);
      if (!err) {
        updates_.inc();
        ops.push_back(storage::op::put_document{{k_shadow, key, s.serialize()}});
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
        deletes_.inc();
        ops.push_back(storage::op::put_document{{k_shadow, key, s.serialize()}});
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
  store_.submit(std::move(ops), [this, r = std::move(r), messages = std::move(messages), http = std::move(http),
                                 now, client_token = req.client_token](bool durable) mutable {
    release(r->origin);
    if (!durable) {
      http.status = 500;
      http.body = json::serialize(error_document({500, "Internal service failure"}, now, client_token));
      messages.clear();
      messages.emplace_back("/rejected", http.body);
    }
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
  });
}

void shadow_service::register_metrics(common::registry& r) const {
  r.add(updates_, "fleetcore_shadow_requests_total", "op=\"update\"", "Accepted shadow requests.");
  r.add(gets_, "fleetcore_shadow_requests_total", "op=\"get\"", "Accepted shadow requests.");
  r.add(deletes_, "fleetcore_shadow_requests_total", "op=\"delete\"", "Accepted shadow requests.");
  r.add(rejected_, "fleetcore_shadow_rejected_total", "", "Shadow requests rejected (published on /rejected).");
}

}  // namespace fleetcore::shadow
