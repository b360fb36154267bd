#include "rules/engine.hpp"

#include "common/aws_paging.hpp"
#include "common/base64.hpp"
#include "common/json_members.hpp"
#include "common/log.hpp"
#include "mqtt/topic.hpp"
#include "rules/filter_index.hpp"
#include "common/uuid.hpp"

#include <boost/algorithm/string/predicate.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/container/small_vector.hpp>
#include <boost/json.hpp>
#include <boost/json/monotonic_resource.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <random>

namespace fleetcore::rules {

namespace json = boost::json;
using common::aws_response;

namespace {

constexpr std::string_view k_rule_kind = "topic_rule";
constexpr std::string_view k_inbox_kind = "rule_inbox";
constexpr std::string_view k_ingest_prefix = "$aws/rules/";

aws_response missing_rule(std::string_view name) {
  // AWS answers a rule that does not exist (or that the caller may not see) this way, not with
  // ResourceNotFoundException (terraform-provider-aws works around it).
  return aws_response::error(401, "UnauthorizedException", fmt::format("Access to topic rule '{}' was denied", name));
}


std::atomic<std::uint64_t> next_instance{1};

}  // namespace

/// Per-rule counters, kept across Replace/Enable/Disable; shared by the snapshot and the renderer.
struct rule_counters {
  common::counter matched, executed, failed, error_actions, dropped, retried;
  std::atomic<std::int64_t> queued{0};  // messages the rule holds (rules.max_rule_queue)

  /// Per action of the rule: (AWS action name, position) -> outcomes. Engine thread and renderer.
  struct action_counters {
    common::counter executed, failed;
  };
  std::mutex mutex;
  std::map<std::pair<std::string, std::size_t>, action_counters> actions;
  action_counters& action(const std::string& name, std::size_t index) {
    std::lock_guard lock(mutex);
    return actions[{name, index}];
  }
};

/// Rules that decide alike before their SELECT, so that a message matches them, and a simple WHERE
/// rejects them, once for all: the enabled rules of one FROM filter sharing a simple WHERE
/// (where_key), or else one rule alone.
struct engine::rule_group {
  struct entry {
    rule_ptr rule;
    std::shared_ptr<rule_counters> counters;
    bool on_engine_thread = false;  // the statement calls another service (reads_services)
    bool uses_payload = false;
  };
  std::vector<entry> rules;
  bool simple_where = false;  // decided from the payload's scanned fields when it does not hold
  std::string_view where_field;  // (simple_where) the field it compares; views a rule's statement
  std::uint32_t condition = 0;   // (simple_where) equal for groups whose WHEREs decide alike
};

struct engine::rule_set {
  using entry = rule_group::entry;
  using group = rule_group;
  std::vector<group> by_filter;                        // enabled rules with a FROM
  filter_index index;                                  // their filters -> by_filter positions
  std::map<std::string, group, std::less<>> by_name;  // every rule alone (Basic Ingest)
};

struct engine::stats {
  std::mutex mutex;
  std::map<std::string, std::shared_ptr<rule_counters>, std::less<>> rules;
  common::counter inbox_full, rule_queue_full, rule_not_found, loop;

  std::shared_ptr<rule_counters> of(const std::string& name) {
    std::lock_guard lock(mutex);
    auto& c = rules[name];
    if (!c) c = std::make_shared<rule_counters>();
    return c;
  }
};

/// A message whose rules have actions to run: one inbox entry (and one storage document) per message,
/// however many rules it matched, with each rule's SELECT output (evaluated on the publisher's worker).
struct engine::entry {
  struct match {
    rule_set::entry ref;
    bool evaluated = false;  // false: evaluated on the engine thread (get_thing_shadow, get_secret)
    std::string payload;     // the SELECT's output
    bool is_json = false;
  };
  std::uint64_t seq = 0;
  std::vector<match> matches;
  std::string topic;  // as the rules see it (Basic Ingest prefix stripped)
  broker::message_ptr msg;
  std::string client_id;
  std::string principal;
  std::int64_t received_ms = 0;
  std::uint8_t hops = 0;
  bool durable = true;        // has a rule_inbox document to delete when done
  std::size_t remaining = 0;  // rules still running (engine thread)

  /// The stored form names the rules whose WHERE held; recovery evaluates them again (the SELECT output
  /// is not stored: the document stays as small as the message).
  std::string to_document() const {
    json::array names;
    for (const auto& mt : matches) names.emplace_back(mt.ref.rule->name);
    return json::serialize(json::object{{"rules", std::move(names)},
                                        {"topic", topic},
                                        {"originalTopic", msg->topic},
                                        {"payload", common::base64_encode(msg->payload)},
                                        {"clientId", client_id},
                                        {"principal", principal},
                                        {"receivedAt", received_ms},
                                        {"hops", static_cast<int>(hops)}});
  }
};

engine::engine(platform::core& core, settings s, shadow_reader shadows, telemetry::store* telemetry)
    : core_(core),
      settings_(s),
      account_id_(core.registry.config().account_id),
      shadows_(std::move(shadows)),
      telemetry_(telemetry),
      active_(std::make_shared<const rule_set>()),
      instance_(next_instance.fetch_add(1, std::memory_order_relaxed)),
      stats_(std::make_unique<stats>()),
      work_(io_.get_executor()),
      tls_(boost::asio::ssl::context::tls_client) {
  // https actions verify the sink: the system's CAs, plus rules.http_ca_file.
  tls_.set_default_verify_paths();
  tls_.set_verify_mode(boost::asio::ssl::verify_peer);
  if (!settings_.http_ca_file.empty()) {
    boost::system::error_code ec;
    tls_.load_verify_file(settings_.http_ca_file, ec);
    if (ec) throw std::runtime_error("rules.http_ca_file " + settings_.http_ca_file + ": " + ec.message());
  }
  if (settings_.allow_plain_http)
    FC_LOG_WARN("rules.plain_http_allowed", "note=\"http actions may post without TLS (development only)\"");
  const auto& reg = core_.registry.config();
  http_ = std::make_unique<net::http_client>(io_, tls_, settings_.http_connections);
  destinations_ = std::make_unique<rules::destinations>(
      core_.store, core_.clock, fmt::format("arn:aws:iot:{}:{}:", reg.region, reg.account_id), io_, *http_);
  for (auto& d : core_.store.load_documents(std::string(k_rule_kind))) {
    auto r = from_document(d.key, arn(d.key), d.body);
    if (!r) {
      FC_LOG_ERROR("rules.unreadable_rule", "rule={} note=\"stored rule does not compile; skipped\"", d.key);
      continue;
    }
    rules_.emplace(d.key, std::move(*r));
  }
  publish_rules();
  // Inbox entries a crash left behind; new entries are numbered after them (the broker may route
  // server messages before start()). In a cluster, this node's own.
  if (!core_.broker.cfg().node_id.empty()) inbox_prefix_ = core_.broker.cfg().node_id + "/";
  left_behind_ = core_.store.load_documents(std::string(k_inbox_kind));
  std::erase_if(left_behind_, [this](const storage::document& d) {
    return inbox_prefix_.empty() ? d.key.find('/') != std::string::npos : !d.key.starts_with(inbox_prefix_);
  });
  std::uint64_t max_seq = 0;
  for (const auto& d : left_behind_) max_seq = std::max(max_seq, inbox_seq(d.key));
  next_seq_.store(max_seq + 1);
  core_.broker.add_hook(*this);

  auto& m = core_.metrics;
  m.add(stats_->inbox_full, "fleetcore_rule_messages_dropped_total", "reason=\"inbox_full\"",
        "Rule matches the rules engine dropped: inbox full (rules.max_inbox), the rule's queue full "
        "(rules.max_rule_queue), Basic Ingest to a missing or disabled rule, republish loops.");
  m.add(stats_->rule_queue_full, "fleetcore_rule_messages_dropped_total", "reason=\"rule_queue_full\"", "");
  m.add(stats_->rule_not_found, "fleetcore_rule_messages_dropped_total", "reason=\"rule_not_found\"", "");
  m.add(stats_->loop, "fleetcore_rule_messages_dropped_total", "reason=\"republish_loop\"", "");
  m.add_gauge_fn([this] { return static_cast<double>(inbox_.load()); }, "fleetcore_rule_inbox", "",
                 "Matched messages stored and not yet run by their rule.");
  auto family = [st = stats_.get()](auto value) {
    return [st, value] {
      std::vector<std::pair<std::string, double>> out;
      std::lock_guard lock(st->mutex);
      for (const auto& [name, c] : st->rules) out.emplace_back(fmt::format("rule=\"{}\"", name), value(*c));
      return out;
    };
  };
  auto count = [&](common::counter rule_counters::*field) {
    return family([field](const rule_counters& c) { return static_cast<double>((c.*field).value()); });
  };
  auto per_action = [st = stats_.get()](common::counter rule_counters::action_counters::*field) {
    return [st, field] {
      std::vector<std::pair<std::string, double>> out;
      std::lock_guard lock(st->mutex);
      for (const auto& [name, c] : st->rules) {
        std::lock_guard actions_lock(c->mutex);
        for (const auto& [key, a] : c->actions)
          out.emplace_back(fmt::format("rule=\"{}\",action=\"{}\",index=\"{}\"", name, key.first, key.second),
                           static_cast<double>((a.*field).value()));
      }
      return out;
    };
  };
  m.add_samples_fn(per_action(&rule_counters::action_counters::executed), "fleetcore_rule_action_executed_total",
                   common::metric_kind::counter, "Action runs that succeeded, per rule and action (its position).");
  m.add_samples_fn(per_action(&rule_counters::action_counters::failed), "fleetcore_rule_action_failed_total",
                   common::metric_kind::counter, "Action runs that failed (after retries), per rule and action.");
  m.add_samples_fn(family([](const rule_counters& c) { return static_cast<double>(c.queued.load()); }),
                   "fleetcore_rule_queued", common::metric_kind::gauge,
                   "Messages a rule holds: waiting for or running its actions (rules.max_rule_queue).");
  m.add_samples_fn(count(&rule_counters::dropped), "fleetcore_rule_dropped_total", common::metric_kind::counter,
                   "Matches a rule dropped: its queue or the inbox was full.");
  m.add_samples_fn(count(&rule_counters::matched), "fleetcore_rule_matched_total", common::metric_kind::counter,
                   "Messages that matched a rule's topic filter (or were sent to it by Basic Ingest).");
  m.add_samples_fn(count(&rule_counters::executed), "fleetcore_rule_executed_total", common::metric_kind::counter,
                   "Messages whose actions all succeeded (WHERE held).");
  m.add_samples_fn(count(&rule_counters::failed), "fleetcore_rule_failed_total", common::metric_kind::counter,
                   "Messages with at least one failed action.");
  m.add_samples_fn(count(&rule_counters::retried), "fleetcore_rule_retried_total", common::metric_kind::counter,
                   "Action attempts retried (an http sink that did not answer, 429 or 5xx).");
  m.add_samples_fn(count(&rule_counters::error_actions), "fleetcore_rule_error_actions_total",
                   common::metric_kind::counter, "Error actions run (one per rule and failed message).");
}

engine::~engine() { stop(); }

std::string engine::arn(std::string_view rule) const {
  const auto& cfg = core_.registry.config();
  return fmt::format("arn:aws:iot:{}:{}:rule/{}", cfg.region, cfg.account_id, rule);
}

void engine::publish_rules() {
  auto set = std::make_shared<rule_set>();
  std::map<std::string, std::uint32_t> conditions;                        // where_key -> condition
  std::map<std::pair<std::string, std::uint32_t>, std::size_t> shared;   // (filter, condition) -> group
  for (const auto& [name, r] : rules_) {
    const auto& st = r->statement;
    rule_set::group g{{{r, stats_->of(name), st.reads_services(), st.uses_payload()}},
                      st.simple_where() && !st.reads_services(),
                      st.where_field()};
    if (g.simple_where)
      g.condition = conditions.emplace(st.where_key(), static_cast<std::uint32_t>(conditions.size())).first->second;
    if (!r->disabled && !st.topic_filter().empty()) {
      auto [it, added] = g.simple_where ? shared.emplace(std::pair(std::string(st.topic_filter()), g.condition),
                                                         set->by_filter.size())
                                        : std::pair(shared.end(), true);
      if (added) {
        set->index.add(st.topic_filter(), static_cast<std::uint32_t>(set->by_filter.size()));
        set->by_filter.push_back(g);
      } else {
        set->by_filter[it->second].rules.push_back(g.rules.front());
      }
    }
    set->by_name.emplace(name, std::move(g));
  }
  any_filter_.store(!set->by_filter.empty(), std::memory_order_relaxed);
  active_.store(std::move(set), std::memory_order_release);
  active_version_.fetch_add(1, std::memory_order_release);
}

const engine::rule_set& engine::snapshot() const {
  struct cached {
    std::uint64_t instance = 0, version = 0;
    std::shared_ptr<const rule_set> set;
  };
  thread_local cached c;
  const auto version = active_version_.load(std::memory_order_acquire);
  if (c.instance != instance_ || c.version != version || !c.set) {
    c.set = active_.load(std::memory_order_acquire);
    c.instance = instance_;
    c.version = version;
  }
  return *c.set;
}

void engine::start() {
  thread_ = std::thread([this] { io_.run(); });
  // Entries a crash left behind run again (at least once); their rule may have changed since.
  auto pending = std::move(left_behind_);
  if (!pending.empty()) FC_LOG_INFO("rules.inbox_resumed", "entries={}", pending.size());
  boost::asio::post(io_, [this, pending = std::move(pending)]() mutable { resume(std::move(pending)); });
  FC_LOG_INFO("rules.loaded", "rules={}", rules_.size());
}

void engine::resume(std::vector<storage::document> entries) {
  auto set = active_.load();
  for (auto& d : entries) {
    std::uint64_t seq = inbox_seq(d.key);
    boost::system::error_code ec;
    auto v = json::parse(d.body, ec);
    const json::object* o = !ec && v.is_object() ? &v.as_object() : nullptr;
    auto payload = o ? common::base64_decode(common::text_member(*o, "payload").value_or("")) : std::nullopt;
    auto e = std::make_shared<entry>();
    if (const auto* names = o ? o->if_contains("rules") : nullptr; names && names->is_array())
      for (const auto& n : names->as_array()) {
        auto it = n.is_string() ? set->by_name.find(n.as_string()) : set->by_name.end();
        if (it == set->by_name.end()) continue;  // deleted meanwhile
        entry::match mt;  // evaluated again, on the engine thread
        mt.ref = it->second.rules.front();
        mt.ref.counters->queued.fetch_add(1, std::memory_order_relaxed);
        e->matches.push_back(std::move(mt));
      }
    if (e->matches.empty() || !payload) {  // its rules were deleted meanwhile, or an unreadable entry
      core_.store.submit({storage::op::delete_document{std::string(k_inbox_kind), d.key}}, nullptr);
      continue;
    }
    auto msg = std::make_shared<broker::message>();
    msg->topic = std::string(common::text_member(*o, "originalTopic").value_or(""));
    msg->payload = std::move(*payload);
    e->seq = seq;
    e->topic = std::string(common::text_member(*o, "topic").value_or(""));
    e->msg = std::move(msg);
    e->client_id = std::string(common::text_member(*o, "clientId").value_or("n/a"));
    e->principal = std::string(common::text_member(*o, "principal").value_or(""));
    e->received_ms = common::int_member(*o, "receivedAt").value_or(core_.clock.wall_ms());
    e->hops = static_cast<std::uint8_t>(common::int_member(*o, "hops").value_or(0));
    inbox_.fetch_add(1, std::memory_order_relaxed);
    boost::asio::post(io_, [this, e] { run(e); });
  }
}

std::string engine::inbox_key(std::uint64_t seq) const { return fmt::format("{}{:020}", inbox_prefix_, seq); }

std::uint64_t engine::inbox_seq(std::string_view key) const {
  if (auto slash = key.find('/'); slash != std::string_view::npos) key.remove_prefix(slash + 1);
  std::uint64_t seq = 0;
  std::from_chars(key.data(), key.data() + key.size(), seq);
  return seq;
}

bool engine::replicated_kind(std::string_view kind) { return kind == k_rule_kind || kind == destinations::document_kind; }

void engine::set_replicate(std::function<void(const std::vector<storage::operation>&)> fn) {
  replicate_ = fn;
  destinations_->replicate = std::move(fn);
}

void engine::apply_replica(const storage::operation& op) {
  const auto* put = std::get_if<storage::op::put_document>(&op);
  const auto* del = std::get_if<storage::op::delete_document>(&op);
  const std::string_view kind = put ? put->doc.kind : del ? del->kind : std::string_view();
  if (kind == destinations::document_kind) return destinations_->apply_replica(op);
  if (kind != k_rule_kind) return;
  std::lock_guard lock(control_);
  if (put) {
    auto r = from_document(put->doc.key, arn(put->doc.key), put->doc.body);
    if (!r) {
      FC_LOG_ERROR("rules.unreadable_rule", "rule={} note=\"replicated rule does not compile; skipped\"", put->doc.key);
      return;
    }
    rules_.insert_or_assign(put->doc.key, std::move(*r));
  } else {
    rules_.erase(del->key);
  }
  publish_rules();
}

void engine::inherit(const std::string& node) {
  boost::asio::post(io_, [this, node] {
    // The gone node's entries become this node's (a new key each, in one batch), then run.
    const std::string prefix = node + "/";
    std::vector<storage::document> taken;
    std::vector<storage::operation> moves;
    for (auto& d : core_.store.load_documents(std::string(k_inbox_kind))) {
      if (!d.key.starts_with(prefix)) continue;
      moves.push_back(storage::op::delete_document{d.kind, d.key});
      d.key = inbox_key(next_seq_.fetch_add(1, std::memory_order_relaxed));
      moves.push_back(storage::op::put_document{d});
      taken.push_back(std::move(d));
    }
    if (taken.empty()) return;
    if (!core_.store.submit_and_wait(std::move(moves))) {
      FC_LOG_ERROR("rules.inherit_failed", "node={} entries={} note=\"they run when that node starts again\"", node,
                   taken.size());
      return;
    }
    FC_LOG_INFO("rules.inbox_inherited", "node={} entries={}", node, taken.size());
    resume(std::move(taken));
  });
}

void engine::stop() {
  if (!thread_.joinable()) return;
  // Actions still retrying are abandoned, not awaited: their inbox entries (acknowledged messages)
  // are still stored and run again at the next start.
  work_.reset();
  io_.stop();
  thread_.join();
  flush_republishes();  // made by the last handlers (their entries may already be deleted)
}

broker::topic_claim engine::claim(std::string_view topic) const {
  return topic.starts_with(k_ingest_prefix) ? broker::topic_claim::consumed : broker::topic_claim::none;
}

std::size_t engine::uncounted_prefix(std::string_view topic) const {
  // Basic Ingest: `$aws/rules/<rule>/` counts toward neither the length nor the level limit.
  if (!topic.starts_with(k_ingest_prefix)) return 0;
  auto slash = topic.find('/', k_ingest_prefix.size());
  return slash == std::string_view::npos ? 0 : slash + 1;
}

bool engine::on_message(const broker::message_ptr& m, const broker::publish_context& ctx) {
  const std::string_view topic = m->topic;
  const bool ingest = topic.starts_with(k_ingest_prefix);
  // Every message of the broker passes here: without rules it costs one relaxed load, not the
  // snapshot's shared reference count (a cache line every worker would write).
  if (!ingest && !any_filter_.load(std::memory_order_relaxed)) return false;
  const rule_set& set = snapshot();
  boost::container::small_vector<const rule_set::group*, 16> hits;
  std::string_view rule_topic = topic;
  if (ingest) {
    // Basic Ingest: $aws/rules/<rule>/<topic> reaches that rule alone, whatever its FROM.
    std::string_view rest = topic.substr(k_ingest_prefix.size());
    auto slash = rest.find('/');
    std::string_view rule = rest.substr(0, slash);
    rule_topic = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
    auto it = set.by_name.find(rule);
    if (it == set.by_name.end() || it->second.rules.front().rule->disabled) {
      stats_->rule_not_found.inc();
      FC_LOG_DEBUG("rules.ingest_no_rule", "rule={:q} client={:q}", common::untrusted(rule),
                   common::untrusted(ctx.client_id));
      return true;
    }
    hits.push_back(&it->second);
  } else {
    if (set.index.empty()) return false;
    set.index.match(topic, [&](std::uint32_t i) { hits.push_back(&set.by_filter[i]); });
  }
  if (hits.empty()) return ingest;

  // Groups whose simple WHERE (`temp > 50`) rejects the message are settled first, from the payload's
  // top-level fields scanned once for all of them: most messages stop here.
  boost::container::small_vector<std::string_view, 4> wanted;  // the distinct fields they compare
  for (const auto* g : hits)
    if (g->simple_where && std::find(wanted.begin(), wanted.end(), g->where_field) == wanted.end())
      wanted.push_back(g->where_field);
  if (!wanted.empty()) {
    thread_local sql::payload_fields fields;  // its arena reused, message after message
    const bool json = fields.scan(m->payload, wanted);  // not JSON: every field is Undefined, so is the comparison
    // Groups that share a simple WHERE (on other topics) decide it once.
    boost::container::small_vector<std::pair<std::uint32_t, bool>, 8> decided;
    auto rejects = [&](const rule_set::group& g) {
      for (auto [condition, rejected] : decided)
        if (condition == g.condition) return rejected;
      bool rejected = !json || g.rules.front().rule->statement.where_rejects(&fields, fields.find(g.where_field));
      decided.emplace_back(g.condition, rejected);
      return rejected;
    };
    hits.erase(std::remove_if(hits.begin(), hits.end(),
                              [&](const rule_set::group* g) {
                                if (!g->simple_where || !rejects(*g)) return false;
                                for (const auto& r : g->rules) r.counters->matched.inc();
                                return true;
                              }),
               hits.end());
    if (hits.empty()) return ingest;
  }
  evaluate(m, ctx, rule_topic, hits);
  return ingest;
}

void engine::evaluate(const broker::message_ptr& m, const broker::publish_context& ctx, std::string_view rule_topic,
                      std::span<const rule_group* const> groups) {
  // The SQL runs here, on the publisher's worker (statements are immutable and thread-safe): a WHERE
  // that does not hold costs no hand-off, and the workers share the evaluations. Statements that call
  // another service (get_thing_shadow, get_secret) wait for the engine thread instead.
  sql::message_context mc;
  mc.topic = rule_topic;
  mc.payload = m->payload;
  mc.client_id = ctx.client_id.empty() ? std::string_view("n/a") : ctx.client_id;
  mc.principal = ctx.connection && !ctx.connection->certificate_id.empty()
                     ? std::string_view(ctx.connection->certificate_id)
                     : ctx.client_id;
  mc.timestamp_ms = ctx.received_at_ms;
  mc.account_id = account_id_;
  // The payload's document is parsed at most once for all the rules, into an arena on this stack.
  alignas(std::max_align_t) unsigned char arena[4096];
  boost::json::monotonic_resource mr(arena, sizeof arena);
  boost::json::value doc(&mr);  // on the arena too: the parse result moves in, no copy
  auto need_document = [&] {
    if (mc.payload_parsed) return;
    mc.payload_parsed = true;
    mc.parsed_payload = sql::parse_payload(m->payload, &mr, doc) ? &doc : nullptr;
  };
  const bool inbox_full = inbox_.load(std::memory_order_relaxed) >= static_cast<std::int64_t>(settings_.max_inbox);
  std::shared_ptr<entry> e;
  for (const auto* g : groups) {
    for (const auto& r : g->rules) {
      auto& counters = *r.counters;
      const topic_rule& rule = *r.rule;
      counters.matched.inc();
      // What the rule's queue (or the inbox) has no room for is dropped before its SELECT is evaluated:
      // an overloaded engine spends nothing on what it cannot keep. A rule without actions queues nothing.
      if (!rule.actions.empty() &&
          (inbox_full ||
           counters.queued.load(std::memory_order_relaxed) >= static_cast<std::int64_t>(settings_.max_rule_queue))) {
        (inbox_full ? stats_->inbox_full : stats_->rule_queue_full).inc();
        counters.dropped.inc();
        continue;
      }
      std::optional<sql::evaluation> ev;
      if (!r.on_engine_thread) {
        if (r.uses_payload) need_document();
        ev = rule.statement.evaluate(mc);
        for (const auto& err : ev->errors)
          FC_LOG_WARN("rules.sql_error", "rule={} error={:q}", rule.name, common::untrusted(err));
        if (!ev->matched || rule.actions.empty()) {
          if (ev->matched) counters.executed.inc();
          continue;
        }
      }
      // A message that goes on (references taken only now).
      entry::match mt;
      mt.ref = r;
      if (ev) {
        mt.evaluated = true;
        mt.payload = std::move(ev->payload);
        mt.is_json = ev->is_json;
      }
      if (!e) e = std::make_shared<entry>();
      counters.queued.fetch_add(1, std::memory_order_relaxed);
      e->matches.push_back(std::move(mt));
    }
  }
  if (!e) return;
  e->seq = next_seq_.fetch_add(1, std::memory_order_relaxed);
  e->topic = std::string(rule_topic);
  e->msg = m;
  e->client_id = std::string(mc.client_id);
  e->principal = std::string(mc.principal);
  e->received_ms = ctx.received_at_ms;
  e->hops = m->rule_hops;
  // An acknowledged message (QoS 1/2, HTTP, a service's QoS 1 event) is durable in the inbox before
  // its acknowledgement; a QoS 0 message is held in memory only, as QoS 0 promises no more.
  e->durable = m->qos > 0 && ctx.commit_with;
  if (e->durable)
    ctx.commit_with->push_back(storage::op::put_document{{std::string(k_inbox_kind), inbox_key(e->seq), e->to_document()}});
  inbox_.fetch_add(1, std::memory_order_relaxed);
  hand_off(std::move(e));
}

void engine::hand_off(std::shared_ptr<entry> e) {
  // One post per batch, not per message: the engine thread drains whatever accumulated.
  bool first;
  {
    std::lock_guard lock(handoff_mutex_);
    first = handoff_.empty();
    handoff_.push_back(std::move(e));
  }
  if (first)
    boost::asio::post(io_, [this] {
      std::vector<std::shared_ptr<entry>> batch;
      {
        std::lock_guard lock(handoff_mutex_);
        batch.swap(handoff_);
      }
      for (auto& x : batch) run(std::move(x));
    });
}

/// One matched message of one rule being run: the evaluation and the actions still running.
struct engine::job {
  std::shared_ptr<entry> e;
  const topic_rule* rule = nullptr;
  rule_counters* counters = nullptr;
  sql::message_context ctx;  // views into *e
  std::size_t pending = 0;
  bool matched = false;  // WHERE held: the actions ran
  boost::json::array failures;
};

void engine::run(std::shared_ptr<entry> e) {
  e->remaining = e->matches.size();
  for (auto& mt : e->matches) {
    const topic_rule& r = *mt.ref.rule;
    auto j = std::make_shared<job>();
    j->e = e;
    j->rule = &r;
    j->counters = mt.ref.counters.get();
    j->ctx.topic = e->topic;
    j->ctx.payload = e->msg->payload;
    j->ctx.client_id = e->client_id;
    j->ctx.principal = e->principal;
    j->ctx.timestamp_ms = e->received_ms;
    j->ctx.account_id = account_id_;
    j->ctx.shadow_reader = shadows_;
    if (!mt.evaluated) {
      auto ev = r.statement.evaluate(j->ctx);
      for (const auto& err : ev.errors)
        FC_LOG_WARN("rules.sql_error", "rule={} error={:q}", r.name, common::untrusted(err));
      j->matched = ev.matched;
      mt.payload = std::move(ev.payload);
      mt.is_json = ev.is_json;
    } else {
      j->matched = true;
    }
    if (!j->matched || r.actions.empty()) {  // (a rule replaced since its entry was stored)
      finish(j);
      continue;
    }
    j->pending = r.actions.size();
    for (std::size_t i = 0; i < r.actions.size(); ++i) {
      const action& a = r.actions[i];
      std::string payload = i + 1 == r.actions.size() ? std::move(mt.payload) : mt.payload;
      auto& outcome = j->counters->action(a.failed_action, i);
      execute(a, j, std::move(payload), mt.is_json, [this, j, &a, &outcome](std::optional<std::string> error) {
        (error ? outcome.failed : outcome.executed).inc();
        if (error)
          j->failures.push_back(json::object{{"failedAction", a.failed_action}, {"failedResource", a.resource},
                                             {"errorMessage", *error}});
        if (--j->pending == 0) finish(j);
      });
    }
  }
}

void engine::finish(const std::shared_ptr<job>& j) {
  const auto& e = j->e;
  const topic_rule& r = *j->rule;
  auto done = [this, e, counters = j->counters] {
    counters->queued.fetch_sub(1, std::memory_order_relaxed);
    if (--e->remaining > 0) return;  // other rules of this message still running
    if (e->durable)
      core_.store.submit({storage::op::delete_document{std::string(k_inbox_kind), inbox_key(e->seq)}}, nullptr);
    inbox_.fetch_sub(1, std::memory_order_relaxed);
  };
  if (j->failures.empty()) {
    if (j->matched) j->counters->executed.inc();
    return done();
  }
  j->counters->failed.inc();
  FC_LOG_WARN("rules.action_failed", "rule={} topic={:q} failures={} first={:q}", r.name,
              common::untrusted(e->msg->topic), j->failures.size(),
              common::untrusted(j->failures.front().as_object().at("errorMessage").as_string()));
  if (!r.error_action) return done();
  j->counters->error_actions.inc();
  // One message per rule and message, AWS's format (rule-error-handling.md).
  json::object error{{"ruleName", r.name},
                     {"topic", e->msg->topic},
                     {"cloudwatchTraceId", fmt::format("{:016x}", e->seq)},
                     {"clientId", e->client_id},
                     {"base64OriginalPayload", common::base64_encode(e->msg->payload)},
                     {"failures", std::move(j->failures)}};
  execute(*r.error_action, j, json::serialize(error), true, [name = r.name, done](std::optional<std::string> again) {
    if (again) FC_LOG_ERROR("rules.error_action_failed", "rule={} error={:q}", name, common::untrusted(*again));
    done();
  });
}

void engine::execute(const action& a, const std::shared_ptr<job>& j, std::string payload, bool is_json,
                     action_done done) {
  if (a.republish) return done(republish(*a.republish, *j, std::move(payload)));
  if (a.http) return http(*a.http, j, std::move(payload), is_json, std::move(done));
  if (a.timestream) return timestream(*a.timestream, j, payload, is_json, std::move(done));
  done(fmt::format("{} is not supported by fleetcore", a.failed_action));
}

std::optional<std::string> engine::republish(const republish_action& rp, const job& j, std::string payload) {
  const auto& ctx = j.ctx;
  broker::broker::service_message m;
  m.topic = rp.topic.render(ctx);
  if (m.topic.starts_with("$aws/things/") && m.topic.find("/jobs/") != std::string::npos)
    return "republishing to a jobs topic is not supported";
  if (j.e->hops + 1u >= settings_.max_republish_depth) {
    stats_->loop.inc();
    return "republish loop: the message is already " + std::to_string(j.e->hops + 1) + " republishes deep";
  }
  m.payload = std::move(payload);
  m.qos = rp.qos;
  m.rule_hops = static_cast<std::uint8_t>(j.e->hops + 1);
  if (rp.content_type) m.props.content_type = rp.content_type->render(ctx);
  if (rp.response_topic) m.props.response_topic = rp.response_topic->render(ctx);
  if (rp.correlation_data) m.props.correlation_data = rp.correlation_data->render(ctx);
  if (rp.payload_format) m.props.payload_format_indicator = *rp.payload_format;
  if (rp.message_expiry_s) m.props.message_expiry_interval = *rp.message_expiry_s;
  for (const auto& [k, v] : rp.user_properties) m.props.user_properties.push_back({k.render(ctx), v.render(ctx)});
  if (core_.broker.check_publish_topic(m.topic, broker::publish_origin::server) != mqtt::reason_code::success)
    return fmt::format("Failed to republish to topic {}: the topic is not valid", m.topic);
  // Handed to the broker in one batch once the current handler is done (one post, not one per message).
  if (republishes_.empty()) boost::asio::post(io_, [this] { flush_republishes(); });
  republishes_.push_back(std::move(m));
  return std::nullopt;
}

void engine::flush_republishes() {
  const auto n = republishes_.size();
  core_.broker.publish_events(std::exchange(republishes_, {}));
  republishes_.reserve(n);  // the next batch is likely as large: no regrowth of large elements
}

namespace {
bool valid_timestream_name(std::string_view s) {
  if (s.size() < 3 || s.size() > 256) return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.')) return false;
  return true;
}
}  // namespace

void engine::timestream(const timestream_action& a, const std::shared_ptr<job>& j, const std::string& payload,
                        bool is_json, action_done done) {
  if (!telemetry_) return done("TimestreamAction: the telemetry store is not running");
  boost::system::error_code ec;
  auto v = is_json ? json::parse(payload, ec) : json::value();
  if (!is_json || ec || !v.is_object()) return done("TimestreamAction: the SELECT result is not a JSON object");
  const auto& o = v.as_object();
  if (o.size() > 100) return done("TimestreamAction: more than 100 values in one message");
  auto db = a.database.render(j->ctx), table = a.table.render(j->ctx);
  if (!valid_timestream_name(db) || !valid_timestream_name(table))
    return done("TimestreamAction: invalid database or table name " + db + "." + table);
  std::int64_t time_ns = j->e->received_ms * 1'000'000;
  if (a.timestamp) {
    auto t = a.timestamp->render(j->ctx);
    char* end = nullptr;
    long long n = std::strtoll(t.c_str(), &end, 10);
    if (t.empty() || *end != '\0') return done("TimestreamAction: timestamp is not an epoch number: " + t);
    time_ns = n * a.unit_ns;
  }
  std::vector<std::pair<std::string, std::string>> dims;
  for (const auto& [name, value] : a.dimensions) dims.emplace_back(name, value.render(j->ctx));
  std::vector<telemetry::record> records;
  for (const auto& [key, val] : o) {
    telemetry::record r{db, table, time_ns, dims, std::string(key), telemetry::record::kind::varchar, 0, 0, {}};
    if (val.is_null()) continue;
    if (val.is_bool()) {
      r.type = telemetry::record::kind::boolean;
      r.bigint = val.as_bool();
    } else if (val.is_int64()) {
      r.type = telemetry::record::kind::bigint;
      r.bigint = val.as_int64();
    } else if (val.is_uint64()) {
      r.type = telemetry::record::kind::double_;
      r.real = static_cast<double>(val.as_uint64());
    } else if (val.is_double()) {
      r.type = telemetry::record::kind::double_;
      r.real = val.as_double();
    } else if (val.is_string()) {
      r.text = std::string(val.as_string());
    } else {
      r.text = json::serialize(val);  // objects and arrays as JSON text
    }
    records.push_back(std::move(r));
  }
  if (records.empty()) return done(std::nullopt);
  telemetry_->write(std::move(records), [this, done = std::move(done)](bool ok) mutable {
    boost::asio::post(io_, [done = std::move(done), ok] {
      done(ok ? std::nullopt : std::optional<std::string>("TimestreamAction: the records could not be written"));
    });
  });
}

void engine::http(const http_action& a, const std::shared_ptr<job>& j, std::string payload, bool is_json,
                  action_done done) {
  net::http_request req;
  req.url = a.url.render(j->ctx);
  if (!destinations_->enabled_for(req.url))
    return done("no ENABLED topic rule destination confirms " + req.url);
  if (req.url.starts_with("http://") && !settings_.allow_plain_http)
    return done("http:// is not allowed (rules.allow_plain_http): use https");
  bool content_type = false;
  for (const auto& [k, v] : a.headers) {
    req.headers.emplace_back(k, v.render(j->ctx));
    if (boost::iequals(k, "content-type")) content_type = true;
  }
  if (!content_type) req.headers.emplace_back("content-type", is_json ? "application/json" : "application/octet-stream");
  req.body = std::move(payload);
  // Tries until the sink answers 2xx, a final status, or the retry window (rules.http_retry_for_s) ends.
  struct attempt_state {
    net::http_request req;
    action_done done;
    common::clock::time_point give_up;
    std::chrono::milliseconds backoff{500};
    std::unique_ptr<boost::asio::steady_timer> timer;
  };
  auto st = std::make_shared<attempt_state>();
  st->req = std::move(req);
  st->done = std::move(done);
  st->give_up = core_.clock.now() + std::chrono::seconds(settings_.http_retry_for_s);
  auto counters = j->counters;
  // The attempt function refers to itself weakly: the pending request or retry timer holds the only
  // strong reference, so an attempt abandoned at stop() is freed with the io_context's handlers.
  auto attempt = std::make_shared<std::function<void()>>();
  std::weak_ptr<std::function<void()>> weak = attempt;
  *attempt = [this, st, counters, weak] {
    http_->post(st->req, std::chrono::milliseconds(settings_.http_timeout_ms),
                [this, st, counters, attempt = weak.lock()](net::http_outcome o) {
                  if (o.status >= 200 && o.status < 300) return st->done(std::nullopt);
                  if (!net::retryable(o) || core_.clock.now() + st->backoff > st->give_up)
                    return st->done(fmt::format("HttpAction to {} failed: {}", st->req.url, o.error));
                  counters->retried.inc();
                  // Full jitter: a random delay up to the backoff, which doubles to 30 s.
                  thread_local std::mt19937 rng{std::random_device{}()};
                  auto delay = std::chrono::milliseconds(1 + rng() % static_cast<unsigned>(st->backoff.count()));
                  st->backoff = std::min(st->backoff * 2, std::chrono::milliseconds(30'000));
                  st->timer = std::make_unique<boost::asio::steady_timer>(io_, delay);
                  st->timer->async_wait([attempt](const boost::system::error_code& ec) {
                    if (!ec && *attempt) (*attempt)();
                  });
                });
  };
  (*attempt)();
}

// --- API (API thread) ---

common::aws_response engine::put_rule(const std::string& name, json::object payload, double created_at,
                                      std::string_view operation) {
  auto c = compile(name, arn(name), std::move(payload), created_at);
  if (auto* e = std::get_if<common::aws_error>(&c)) return aws_response::from(*e);
  auto r = std::get<rule_ptr>(std::move(c));
  std::vector<storage::operation> writes{storage::op::put_document{{std::string(k_rule_kind), name, to_document(*r)}}};
  if (!core_.store.submit_and_wait(writes))
    return aws_response::error(500, "InternalFailureException", "the rule could not be stored");
  if (replicate_) replicate_(writes);
  FC_LOG_INFO("rules.changed", "rule={} operation={} disabled={}", name, operation, r->disabled);
  rule_event(*r, operation);
  rules_.insert_or_assign(name, std::move(r));
  publish_rules();
  return aws_response::ok("{}");
}

void engine::rule_event(const topic_rule& r, std::string_view operation) {
  // Shaped like AWS's registry events (registry-events.md); enabled with the other event types by
  // UpdateEventConfigurations {"TOPIC_RULE": {"Enabled": true}}.
  if (!core_.registry.event_enabled("TOPIC_RULE")) return;
  json::object e{{"eventType", "TOPIC_RULE_EVENT"},
                 {"eventId", common::random_uuid()},
                 {"timestamp", core_.clock.wall_ms()},
                 {"operation", operation},
                 {"accountId", account_id_},
                 {"ruleName", r.name},
                 {"ruleArn", r.arn},
                 {"topicPattern", r.statement.topic_filter()},
                 {"ruleDisabled", r.disabled}};
  std::string op(operation);
  std::transform(op.begin(), op.end(), op.begin(), [](unsigned char c) { return std::tolower(c); });
  core_.broker.publish_event(fmt::format("$aws/events/rule/{}/{}", r.name, op), json::serialize(e), 1);
}

common::aws_response engine::create(const json::object& in) {
  std::string name(common::text_member(in, "ruleName").value_or(""));
  if (!valid_rule_name(name))
    return aws_response::error(400, "InvalidRequestException", "ruleName must match ^[a-zA-Z0-9_]+$ (1-128)");
  const auto* payload = common::object_member(in, "topicRulePayload");
  if (!payload) return aws_response::error(400, "InvalidRequestException", "topicRulePayload is required");
  std::lock_guard lock(control_);
  if (rules_.contains(name))
    return aws_response::error(409, "ResourceAlreadyExistsException", fmt::format("Rule {} already exists", name));
  return put_rule(name, *payload, static_cast<double>(core_.clock.wall_ms()) / 1000.0, "CREATED");
}

common::aws_response engine::replace(const json::object& in) {
  std::string name(common::text_member(in, "ruleName").value_or(""));
  const auto* payload = common::object_member(in, "topicRulePayload");
  if (!payload) return aws_response::error(400, "InvalidRequestException", "topicRulePayload is required");
  std::lock_guard lock(control_);
  auto it = rules_.find(name);
  if (it == rules_.end()) return missing_rule(name);
  return put_rule(name, *payload, it->second->created_at, "UPDATED");
}

common::aws_response engine::set_enabled(const json::object& in, bool enabled) {
  std::string name(common::text_member(in, "ruleName").value_or(""));
  std::lock_guard lock(control_);
  auto it = rules_.find(name);
  if (it == rules_.end()) return missing_rule(name);
  auto payload = it->second->payload;
  payload["ruleDisabled"] = !enabled;
  return put_rule(name, std::move(payload), it->second->created_at, "UPDATED");
}

common::aws_response engine::remove(const json::object& in) {
  std::string name(common::text_member(in, "ruleName").value_or(""));
  std::lock_guard lock(control_);
  auto it = rules_.find(name);
  if (it == rules_.end()) return missing_rule(name);
  std::vector<storage::operation> writes{storage::op::delete_document{std::string(k_rule_kind), name}};
  if (!core_.store.submit_and_wait(writes))
    return aws_response::error(500, "InternalFailureException", "the rule could not be deleted");
  if (replicate_) replicate_(writes);
  rule_event(*it->second, "DELETED");
  FC_LOG_INFO("rules.changed", "rule={} operation=DELETED", name);
  rules_.erase(it);
  publish_rules();
  return aws_response::ok("{}");
}

common::aws_response engine::get(const json::object& in) {
  std::string name(common::text_member(in, "ruleName").value_or(""));
  std::lock_guard lock(control_);
  auto it = rules_.find(name);
  if (it == rules_.end()) return missing_rule(name);
  return aws_response::ok(
      json::serialize(json::object{{"ruleArn", it->second->arn}, {"rule", describe(*it->second)}}));
}

common::aws_response engine::list(const json::object& in) {
  std::int64_t max = 0;
  if (auto e = common::page_size(in, "maxResults", 10000, 1000, max)) return aws_response::from(*e);
  auto topic = common::text_member(in, "topic");
  std::optional<bool> disabled;
  if (auto d = common::text_member(in, "ruleDisabled")) disabled = *d == "true";
  if (auto d = common::bool_member(in, "ruleDisabled")) disabled = *d;
  std::lock_guard lock(control_);
  std::vector<std::string> names;
  for (const auto& [name, r] : rules_) {
    const auto& filter = r->statement.topic_filter();
    if (topic && filter != *topic && !mqtt::topic_matches(filter, *topic)) continue;
    if (disabled && r->disabled != *disabled) continue;
    names.push_back(name);
  }
  std::optional<std::string> token, next;
  if (auto t = common::text_member(in, "nextToken")) token = std::string(*t);
  json::array rules;
  for (const auto& name : common::page_after(names, token, max, next)) {
    const auto& r = *rules_.at(name);
    rules.push_back(json::object{{"ruleArn", r.arn},
                                 {"ruleName", r.name},
                                 {"topicPattern", r.statement.topic_filter()},
                                 {"createdAt", r.created_at},
                                 {"ruleDisabled", r.disabled}});
  }
  json::object body{{"rules", std::move(rules)}};
  if (next) body["nextToken"] = *next;
  return aws_response::ok(json::serialize(body));
}

common::aws_operations engine::operations() {
  auto op = [this](common::aws_response (engine::*fn)(const json::object&)) {
    return [this, fn](std::string_view, const json::object& in) { return (this->*fn)(in); };
  };
  common::aws_operations ops{{"CreateTopicRule", op(&engine::create)},
          {"GetTopicRule", op(&engine::get)},
          {"ListTopicRules", op(&engine::list)},
          {"ReplaceTopicRule", op(&engine::replace)},
          {"DeleteTopicRule", op(&engine::remove)},
          {"EnableTopicRule", [this](std::string_view, const json::object& in) { return set_enabled(in, true); }},
          {"DisableTopicRule", [this](std::string_view, const json::object& in) { return set_enabled(in, false); }}};
  auto more = destinations_->operations();
  ops.insert(ops.end(), more.begin(), more.end());
  return ops;
}

}  // namespace fleetcore::rules
