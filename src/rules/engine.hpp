#pragma once
// The rules engine (AWS IoT rules): topic rules, their API, and the path of a matched message.
//
// A message meets the rules in the broker's single publish path (a broker hook, on the publisher's
// worker): the FROM filters of the enabled rules are matched there and their SQL evaluated (simple
// WHEREs from the payload's scanned fields first). A message some rule acts on becomes one inbox
// entry, written in the same storage batch as the message's stored copies — so a PUBACK (or the HTTP
// answer) means every such rule has the message, durably. The engine's own thread then runs the
// actions and, if one fails, the rule's errorAction (one message per rule and message, AWS's format);
// the entry is deleted after that. Entries left by a crash are evaluated and run again at start:
// delivery is at least once.
//
// Basic Ingest: `$aws/rules/<rule>/<topic>` goes to that rule alone and to no subscriber; topic()
// sees `<topic>`. Subscribing under `$aws/rules/` is refused by the broker's topic rules (the hook
// claims the prefix as consumed).
//
// Threads: operations() handlers on the API thread (one at a time), the hook and the SQL on any
// worker (statements calling get_thing_shadow/get_secret on the engine's thread), actions on the
// engine's thread. The active rule set is an immutable snapshot swapped atomically.
#include "platform/service.hpp"
#include "rules/destinations.hpp"
#include "net/http_client.hpp"
#include "rules/rule.hpp"
#include "rules/settings.hpp"
#include "telemetry/store.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <thread>

namespace fleetcore::rules {


/// get_thing_shadow(): the shadow document of (thing, shadow name; empty = classic), or nullopt.
using shadow_reader = std::function<std::optional<boost::json::value>(std::string_view, std::string_view)>;

class engine final : public platform::service, public broker::broker_hook {
 public:
  /// `telemetry` (may be null: timestream actions then fail) must outlive the engine.
  engine(platform::core& core, settings s, shadow_reader shadows, telemetry::store* telemetry);
  ~engine() override;

  // platform::service
  std::string_view name() const override { return "rules"; }
  common::aws_operations operations() override;
  void start() override;
  void stop() override;

  /// The topic rule destinations (the API's enableUrl capability URLs use them).
  rules::destinations& rule_destinations() noexcept { return *destinations_; }

  // Cluster mode: rules and destinations changed on any node apply on every node; each node's inbox
  // entries are its own (keyed "<node>/<seq>"), and a gone node's are taken over by its heir.
  /// Whether documents of `kind` are the engine's (rules, destinations).
  static bool replicated_kind(std::string_view kind);
  /// Set before use: called with each committed change of a rule or destination, for the other nodes.
  void set_replicate(std::function<void(const std::vector<storage::operation>&)> fn);
  /// A change another node committed (put or delete of a replicated_kind document). Any thread.
  void apply_replica(const storage::operation& op);
  /// Runs the inbox entries gone node `node` left, as this node's (its actions at least once).
  void inherit(const std::string& node);

  // broker::broker_hook (any worker)
  broker::topic_claim claim(std::string_view topic) const override;
  std::size_t uncounted_prefix(std::string_view topic) const override;
  bool on_message(const broker::message_ptr& m, const broker::publish_context& ctx) override;

 private:
  struct rule_set;
  struct rule_group;
  struct entry;
  struct stats;
  struct job;
  using action_done = std::function<void(std::optional<std::string> error)>;

  // API (API thread, under control_).
  common::aws_response create(const boost::json::object& in);
  common::aws_response get(const boost::json::object& in);
  common::aws_response list(const boost::json::object& in);
  common::aws_response replace(const boost::json::object& in);
  common::aws_response remove(const boost::json::object& in);
  common::aws_response set_enabled(const boost::json::object& in, bool enabled);
  /// Compiles `payload` as rule `name`, stores it and makes it active (control_ held).
  common::aws_response put_rule(const std::string& name, boost::json::object payload, double created_at,
                                std::string_view operation);
  /// Publishes fleetcore's TOPIC_RULE event of a committed change, when enabled (control_ held).
  void rule_event(const topic_rule& r, std::string_view operation);
  void publish_rules();  // rebuilds the active snapshot from rules_
  std::string arn(std::string_view rule) const;

  /// Evaluates the rules of `groups` (those a simple WHERE did not reject) for `m` and hands the
  /// matches with actions to the engine thread (any worker).
  void evaluate(const broker::message_ptr& m, const broker::publish_context& ctx, std::string_view rule_topic,
                std::span<const rule_group* const> groups);
  /// Queues a matched message for the engine thread (any worker).
  void hand_off(std::shared_ptr<entry> e);

  // Engine thread.
  void run(std::shared_ptr<entry> e);
  /// Runs one action for `j` with `payload`; `done` gets the error message of a failure.
  void execute(const action& a, const std::shared_ptr<job>& j, std::string payload, bool is_json, action_done done);
  std::optional<std::string> republish(const republish_action& a, const job& j, std::string payload);
  /// Hands the republishes of the handlers run so far to the broker at once.
  void flush_republishes();
  void http(const http_action& a, const std::shared_ptr<job>& j, std::string payload, bool is_json, action_done done);
  void timestream(const timestream_action& a, const std::shared_ptr<job>& j, const std::string& payload, bool is_json,
                  action_done done);
  void finish(const std::shared_ptr<job>& j);
  /// Runs stored inbox entries again (at start, or taken over from a gone node): engine thread.
  void resume(std::vector<storage::document> entries);
  /// This node's inbox key of `seq`, and the seq of one of its keys.
  std::string inbox_key(std::uint64_t seq) const;
  std::uint64_t inbox_seq(std::string_view key) const;

  platform::core& core_;
  settings settings_;
  std::string account_id_;
  shadow_reader shadows_;
  telemetry::store* telemetry_;

  std::mutex control_;
  std::map<std::string, rule_ptr, std::less<>> rules_;
  std::atomic<std::shared_ptr<const rule_set>> active_;
  // Each worker keeps its own reference to the active snapshot and takes a new one only when the
  // version changes: the shared reference count is not written per message by every worker.
  const std::uint64_t instance_;                 // tells engines apart in the workers' caches
  std::atomic<std::uint64_t> active_version_{0};
  /// The active snapshot as this thread holds it: valid until this thread calls snapshot() again.
  const rule_set& snapshot() const;
  std::atomic<bool> any_filter_{false};  // an enabled rule has a FROM
  /// "<node>/" in a cluster (inbox keys), else empty.
  std::string inbox_prefix_;
  std::function<void(const std::vector<storage::operation>&)> replicate_;

  std::atomic<std::uint64_t> next_seq_{1};
  std::vector<storage::document> left_behind_;  // inbox entries found at construction, run by start()
  std::atomic<std::int64_t> inbox_{0};
  std::mutex handoff_mutex_;
  std::vector<std::shared_ptr<entry>> handoff_;
  std::unique_ptr<stats> stats_;
  std::vector<broker::broker::service_message> republishes_;  // engine thread

  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  boost::asio::ssl::context tls_;
  std::unique_ptr<net::http_client> http_;  // engine thread
  std::unique_ptr<rules::destinations> destinations_;
  std::thread thread_;
};

}  // namespace fleetcore::rules
