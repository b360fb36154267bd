#pragma once
// AWS IoT Jobs: the control-plane operations (CreateJob, DescribeJob, CancelJob, the executions...)
// and the device side on `$aws/things/<thing>/jobs/...` (get, start-next, <jobId>/get, <jobId>/update;
// notify and notify-next), with the executions' state machine and their timers.
//
// Threads: every request (an API call, a device's MQTT request, a timer tick) is posted to the
// service's own thread and applied there, one at a time, in arrival order. Its changes are stored in
// one batch; its answers (the promise of an API call, the reply to a device) and the notifications it
// causes leave only once that batch is durable, so nothing acknowledged is lost across kill -9.
// A device's replies go to its session alone (they never pass through the broker's routing: no other
// client and no rule sees them); notify and notify-next are published to every subscriber.
#include "broker/hooks.hpp"
#include "common/aws_api.hpp"
#include "common/clock.hpp"
#include "common/inflight_gate.hpp"
#include "common/metrics.hpp"
#include "jobs/model.hpp"
#include "jobs/templates.hpp"
#include "objects/links.hpp"
#include "storage/store.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <atomic>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace fleetcore::jobs {

struct settings {
  /// How often the execution timers (in-progress and step timeouts) are checked.
  std::int64_t timer_tick_ms = 1000;
  /// Executions listed at most in a notify message and in a get reply's lists (AWS: 10).
  std::size_t max_listed = 10;
  /// Requests of one MQTT session waiting or being applied at once; more are answered
  /// RequestThrottled at once, on the publisher's worker, so a flood queues nothing (AWS: 10).
  int max_inflight_per_session = 10;
};

/// The object store, when one serves (job documents from it, presigned URLs to it).
using object_links = objects::links;

/// What the service asks the registry.
struct directory {
  std::function<bool(std::string_view thing)> thing_exists;
  /// The things of a group and of its descendants; nullopt if there is no such group.
  std::function<std::optional<std::vector<std::string>>(std::string_view group)> group_things;
  /// The groups a thing belongs to, directly or through a descendant group (a CONTINUOUS job's reach).
  std::function<std::vector<std::string>(std::string_view thing)> groups_of;
  /// Whether UpdateEventConfigurations enabled event type "JOB" or "JOB_EXECUTION".
  std::function<bool(std::string_view type)> event_enabled;
};

class jobs_service final : public broker::broker_hook {
 public:
  /// Loads every stored job and execution; throws std::runtime_error if one is unreadable.
  /// `arn_prefix` is `arn:aws:iot:<region>:<account>:`.
  jobs_service(storage::store& store, common::clock& clock, directory dir, std::string arn_prefix, settings s = {});
  ~jobs_service() override;

  // --- wiring, set before start() ---
  /// Publishes a server message to every subscriber (notify, notify-next). Called in order, from the
  /// store's thread.
  std::function<void(std::string topic, std::string payload)> publish;
  /// Delivers a reply to the session (client id, incarnation) that made the request, and to no one else.
  std::function<void(const std::string& client_id, std::uint64_t session, std::string topic, std::string payload)> reply;
  /// Devices' requests in flight per session; the server sets where a release waits (inflight_gate).
  common::inflight_gate& inflight() { return inflight_; }
  /// The object store, if one serves: presigned URLs for the documents' placeholders.
  object_links objects;

  void start();
  void stop();

  // broker::broker_hook (any worker): replies are reserved to the service; requests are handed off.
  broker::topic_claim claim(std::string_view topic) const override;
  bool on_message(const broker::message_ptr& m, const broker::publish_context& ctx) override;

  /// The operations it answers: AWS names of the control plane, and `iot-jobs-data:<name>` for the
  /// device data plane over HTTPS (whose names iot also uses, with other shapes).
  static std::vector<std::string_view> operations();
  /// Runs operation `op` with its input members; ready once its changes are durable. Any thread but
  /// the service's and the store's.
  std::future<common::aws_response> call(std::string op, boost::json::object input);

  /// A thing was deleted: its pending executions become REMOVED. Any thread.
  void thing_deleted(std::string thing);
  /// A thing joined or left a thing group: CONTINUOUS jobs that now reach it queue an execution at
  /// once (outside their rollout rate), those that no longer do mark its pending one REMOVED. Any thread.
  void thing_groups_changed(std::string thing);

  /// Does what is due at the clock's time: timed-out executions, rollouts (the next minute's things),
  /// scheduled starts and ends. The service's timer calls it every timer_tick_ms; tests call it after
  /// moving a manual clock. Any thread.
  void tick();
  /// Returns once every request posted before has been applied and its changes are durable (tests).
  void drain();

  void register_metrics(common::registry& r) const;

 private:
  struct batch;
  struct device_request;
  struct device_answer;
  enum class device_op { get_pending, start_next, describe, update };

  // The service's thread.
  common::aws_response run(const std::string& op, const boost::json::object& in, batch& b);
  void handle_device(const device_request& r);
  /// A device's request, over MQTT (`mqtt`: the job document as an object) or HTTPS (as a string).
  device_answer device_call(device_op op, const std::string& thing, const std::string& job_id,
                            const boost::json::object& in, bool mqtt, batch& b);
  common::aws_response data_plane(device_op op, const boost::json::object& in, batch& b);
  /// A job document as devices get it: an object over MQTT, a string over HTTPS.
  /// The document a device gets: an object over MQTT, a string over HTTP; its presigned-URL
  /// placeholders replaced by URLs made now.
  boost::json::value device_document(const job& j, bool mqtt) const;
  /// An execution as devices get it (start-next, describe, notify-next); `document` null: without it.
  boost::json::object device_execution(const execution& e, boost::json::value document) const;
  /// The `targets` member: its ARNs as given, and the things they reach now (groups with their
  /// descendants); an AWS error for a malformed or missing target.
  std::optional<common::aws_response> resolve_targets(const boost::json::object& in, std::vector<std::string>& arns,
                                                      std::set<std::string>& things) const;
  /// What CreateJob, CancelJob and AssociateTargetsWithJob answer: jobArn, jobId, description.
  common::aws_response job_answer(const job& j) const;
  void commit(batch& b, std::function<void(bool durable)> then);

  common::aws_response create_job(const boost::json::object& in, batch& b);
  common::aws_response describe_job(const boost::json::object& in);
  common::aws_response list_jobs(const boost::json::object& in);
  common::aws_response update_job(const boost::json::object& in, batch& b);
  common::aws_response cancel_job(const boost::json::object& in, batch& b);
  common::aws_response delete_job(const boost::json::object& in, batch& b);
  common::aws_response get_job_document(const boost::json::object& in);
  common::aws_response associate_targets(const boost::json::object& in, batch& b);
  common::aws_response create_template(const boost::json::object& in, batch& b);
  common::aws_response describe_template(const boost::json::object& in);
  common::aws_response list_templates(const boost::json::object& in);
  common::aws_response delete_template(const boost::json::object& in, batch& b);
  common::aws_response describe_managed(const boost::json::object& in);
  common::aws_response list_managed(const boost::json::object& in);
  /// CreateJob's jobTemplateArn: the template's document and configurations into `j` (CreateJob's own
  /// members then override them); a managed template's document with documentParameters filled in.
  std::optional<common::aws_response> apply_template(const boost::json::object& in, job& j);
  /// Whether CONTINUOUS job `j` targets `thing` (directly, or through one of `groups`).
  bool reaches(const job& j, const std::string& thing, const std::vector<std::string>& groups) const;
  /// A thing a CONTINUOUS job now reaches: a new execution unless it has one (a REMOVED one is replaced).
  void join(const job& j, const std::string& thing, batch& b);
  common::aws_response describe_execution(const boost::json::object& in);
  common::aws_response list_executions_for_job(const boost::json::object& in);
  common::aws_response list_executions_for_thing(const boost::json::object& in);
  common::aws_response cancel_execution(const boost::json::object& in, batch& b);
  common::aws_response delete_execution(const boost::json::object& in, batch& b);

  /// The thing's pending executions (IN_PROGRESS first, then QUEUED, each oldest first).
  std::vector<const execution*> pending_of(const std::string& thing) const;
  /// Records the thing's pending list before the batch changes it (for notify / notify-next).
  void touch(batch& b, const std::string& thing);
  void notifications(batch& b);
  /// Moves `e` to `to` (versionNumber, counts, timers, storage, job completion).
  /// `step_min`: the step timer a device asked for with this change (IN_PROGRESS only). `reached`, if
  /// set, gets the execution as this change left it (a retry may then queue a new one in its place).
  void set_status(execution& e, exec_status to, batch& b, std::optional<std::int64_t> step_min = {},
                  execution* reached = nullptr);
  void store_execution(const execution& e, batch& b);
  void store_job(job& j, batch& b);
  void erase_execution(std::map<std::string, execution>::iterator it, batch& b);
  void arm_timer(const execution& e);
  void disarm_timer(const execution& e);
  void maybe_complete(job& j, batch& b);
  /// Gives the next things of a rolling-out job their execution, as many as its rate allows now.
  void rollout_step(job& j, batch& b);
  std::int64_t rollout_rate(const job& j) const;
  void create_execution(const job& j, const std::string& thing, batch& b);
  /// A scheduled job's start and end at the clock's time.
  void apply_schedule(job& j, batch& b);
  /// CancelJob's effect (also abortConfig's): QUEUED executions canceled, IN_PROGRESS ones with force.
  void cancel(job& j, bool force, const std::string& reason, const std::string& comment, batch& b);
  /// abortConfig: cancels the job when a criterion is met.
  void check_abort(job& j, batch& b);
  /// jobExecutionsRetryConfig: queues a FAILED or TIMED_OUT execution again; false if it stays terminal.
  bool retry(execution& e, batch& b);
  /// The JOB event `operation` ($aws/events/job/<jobId>/<operation>) and the JOB_EXECUTION one, when enabled.
  void job_event(const job& j, std::string_view operation, batch& b);
  void execution_event(const execution& e, std::string_view operation, batch& b);
  void schedule_tick();

  std::int64_t now_ms() const { return clock_.wall_ms(); }
  std::string thing_arn(std::string_view thing) const { return arn_prefix_ + "thing/" + std::string(thing); }
  std::string job_arn(std::string_view id) const { return arn_prefix_ + "job/" + std::string(id); }

  storage::store& store_;
  common::clock& clock_;
  directory dir_;
  std::string arn_prefix_;
  settings settings_;

  // Service thread only.
  std::map<std::string, job> jobs_;
  std::map<std::string, execution> executions_;                  // execution_key(job, thing)
  std::map<std::string, std::set<std::string>> thing_jobs_;      // thing -> job ids with an execution
  std::map<std::string, std::array<std::int64_t, exec_status_count>> counts_;  // job -> executions by status
  std::set<std::pair<std::int64_t, std::string>> deadlines_;     // (deadline ms, execution key)
  std::map<std::string, std::vector<std::string>> targets_;      // rolling-out job -> its things in order
  std::map<std::string, job_template> templates_;

  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  boost::asio::steady_timer tick_{io_};
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  common::inflight_gate inflight_{settings_.max_inflight_per_session};  // devices' requests in flight
  common::counter device_requests_, device_rejected_, throttled_, api_calls_, timed_out_;
};

}  // namespace fleetcore::jobs
