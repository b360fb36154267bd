#pragma once
// AWS IoT Jobs' records: a job and its executions (one per targeted thing), their statuses and their
// stored form. The state machine and the wire shapes live in jobs_service.cpp; this is the data.
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fleetcore::jobs {

enum class job_status : std::uint8_t { in_progress, canceled, completed, scheduled };
std::string_view to_string(job_status s);
std::optional<job_status> parse_job_status(std::string_view s);

/// An execution's status. QUEUED and IN_PROGRESS are pending; the others are terminal.
enum class exec_status : std::uint8_t { queued, in_progress, succeeded, failed, timed_out, rejected, removed, canceled };
inline constexpr std::size_t exec_status_count = 8;
std::string_view to_string(exec_status s);
std::optional<exec_status> parse_exec_status(std::string_view s);
inline bool terminal(exec_status s) { return s != exec_status::queued && s != exec_status::in_progress; }

using status_details = std::map<std::string, std::string>;

/// jobExecutionsRetryConfig: how many times a FAILED or TIMED_OUT execution is queued again.
struct retry_criterion {
  std::string failure_type;  // FAILED, TIMED_OUT or ALL
  std::int64_t retries = 0;
};
/// abortConfig: the job is canceled once that share of its finished executions failed that way.
struct abort_criterion {
  std::string failure_type;  // FAILED, REJECTED, TIMED_OUT or ALL
  double threshold_percentage = 0;
  std::int64_t min_executed = 1;
};

/// jobExecutionsRolloutConfig: how many things get their execution per minute.
struct rollout_config {
  std::int64_t maximum_per_minute = 0;  // 0: no maximum
  // exponentialRate (base 0: none): the rate is multiplied by `factor` each time `notified_step` more
  // things were notified, or `succeeded_step` more succeeded.
  std::int64_t base_per_minute = 0;
  double factor = 1;
  std::int64_t notified_step = 0, succeeded_step = 0;
  bool limited() const { return maximum_per_minute || base_per_minute; }
};

/// schedulingConfig: the job starts rolling out at `start_ms`, and at `end_ms` does `end_behavior`.
struct scheduling {
  std::string start_time, end_time;  // as given (AWS echoes them)
  std::int64_t start_ms = 0, end_ms = 0;
  std::string end_behavior;  // STOP_ROLLOUT (default), CANCEL, FORCE_CANCEL
  bool ended = false;        // end_behavior was applied
};

/// What a job and a job template share: how the executions run (timeoutConfig, retries, abort, rollout).
struct job_configs {
  std::int64_t in_progress_timeout_min = 0;  // timeoutConfig; 0: none
  std::vector<retry_criterion> retry;
  std::vector<abort_criterion> abort;
  rollout_config rollout;
  /// presignedUrlConfig: the role (kept, not assumed) and how long the URLs that replace a document's
  /// `${aws:iot:s3-presigned-url:...}` placeholders are valid (0: no config, 3600 s then).
  std::string presigned_role_arn;
  std::int64_t presigned_expires_s = 0;

  /// Their stored form, as members of the job's or template's document; false if unreadable.
  void store(boost::json::object& o) const;
  bool load(const boost::json::object& o);
  /// As DescribeJob and DescribeJobTemplate show them: the members that are set.
  void describe(boost::json::object& o) const;
};

struct job : job_configs {
  std::string id;
  std::string description;
  std::string document;         // the job document as given (a JSON text)
  std::string document_source;  // the S3 URL it was read from, if any
  boost::json::value document_json;  // parsed once: what devices get over MQTT (an object)
  std::vector<std::string> targets;  // thing and thing-group ARNs
  bool continuous = false;      // targetSelection CONTINUOUS
  job_status status = job_status::in_progress;
  bool force_canceled = false;
  std::string reason_code, comment;
  std::int64_t created_ms = 0, updated_ms = 0, completed_ms = 0;
  std::string template_arn;                  // jobTemplateArn it was created from
  std::map<std::string, std::string> document_parameters;  // a managed template's parameters
  scheduling schedule;
  /// The rollout: `rollout_done` of the targeted things (job_targets, in order) have their execution;
  /// `window_*` count those created in the current minute.
  std::int64_t rollout_done = 0, rollout_total = 0;
  std::int64_t window_start_ms = 0, window_created = 0;
  bool rollout_stopped = false;  // schedulingConfig's end time stopped it
  bool rolling_out() const { return !rollout_stopped && rollout_done < rollout_total; }
  /// Attempts that ended by the device or a timer (retried ones included): what abortConfig weighs.
  std::int64_t finished = 0, failed = 0, rejected = 0, timed_out = 0;

  std::string serialize() const;
  static std::optional<job> parse(std::string_view body);
};

/// One thing's execution of one job.
struct execution {
  std::string job_id, thing;
  exec_status status = exec_status::queued;
  status_details details;
  bool force_canceled = false;
  std::int64_t queued_ms = 0, started_ms = 0, updated_ms = 0;  // started_ms 0: never IN_PROGRESS
  std::int64_t execution_number = 1;
  std::int64_t version = 1;
  std::int64_t retry_attempt = 0;                    // retries so far, all failure types
  std::int64_t retries_failed = 0, retries_timed_out = 0;
  /// While IN_PROGRESS: when the in-progress timer and the step timer expire (0: not running).
  std::int64_t timeout_at_ms = 0, step_timeout_at_ms = 0;

  /// The earlier of the running timers, 0 if none.
  std::int64_t deadline_ms() const;
  std::string serialize() const;
  static std::optional<execution> parse(std::string_view body);
};

/// The AWS shapes of the configurations (null when empty), and their validation: an error message for
/// the InvalidRequestException, or nullopt with `out` filled.
boost::json::object parameters_json(const std::map<std::string, std::string>& p);
boost::json::value retry_json(const std::vector<retry_criterion>& r);
boost::json::value abort_json(const std::vector<abort_criterion>& a);
std::optional<std::string> parse_retry(const boost::json::value& v, std::vector<retry_criterion>& out);
std::optional<std::string> parse_abort(const boost::json::value& v, std::vector<abort_criterion>& out);
boost::json::value rollout_json(const rollout_config& r);
std::optional<std::string> parse_rollout(const boost::json::value& v, rollout_config& out);
boost::json::value scheduling_json(const scheduling& s);
/// schedulingConfig: times as `YYYY-MM-DDTHH:MM` (UTC; seconds and a trailing Z accepted).
std::optional<std::string> parse_scheduling(const boost::json::value& v, scheduling& out);
/// `YYYY-MM-DDTHH:MM[:SS][Z]` in UTC as epoch ms; nullopt if malformed.
std::optional<std::int64_t> parse_schedule_time(std::string_view text);

/// Storage collections and keys.
inline constexpr std::string_view k_job_kind = "job";
inline constexpr std::string_view k_execution_kind = "job_execution";
/// The things a rolled-out job targets, in rollout order (a JSON array), written once at creation.
inline constexpr std::string_view k_targets_kind = "job_targets";
inline std::string execution_key(std::string_view job_id, std::string_view thing) {
  std::string k(job_id);
  k += '\t';
  k += thing;
  return k;
}

/// AWS's identifier rules: jobId `[a-zA-Z0-9_-]{1,64}`; statusDetails keys `[a-zA-Z0-9:_-]{1,128}`,
/// values 1-1024 characters.
bool valid_job_id(std::string_view id);
bool valid_details_key(std::string_view k);

}  // namespace fleetcore::jobs
