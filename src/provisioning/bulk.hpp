#pragma once
// Bulk registration (the Guide's bulk-provisioning.md): StartThingRegistrationTask provisions one
// device per line of a newline-delimited JSON file in the object store (one parameter map per line)
// with a template body; DescribeThingRegistrationTask, ListThingRegistrationTasks,
// StopThingRegistrationTask and ListThingRegistrationTaskReports follow it. One task runs at a time,
// as on AWS.
//
// A task runs on the API thread in steps of `chunk` lines (other API calls interleave): each line is
// one provisioning (provisioner.hpp), all or nothing for that line. After each step the task's
// progress and that step's report lines are stored in one batch, so a restart resumes a task after
// its last stored step. The lines of an interrupted step run again: a thing is reconciled by its
// OverrideSettings, but a line with a CSR has a second certificate signed and attached (the first is
// in no report) — a known limit of step-wise progress. When the last line is done the reports are written to the input file's
// bucket as objects (`ThingRegistrationTask/<taskId>/RESULTS` and `/ERRORS`, one JSON line per
// device: {"referenceId", "response": {"CertificatePem"?, "ResourceArns"}} or {"referenceId",
// "errorCode", "errorMessage"}; referenceId is the line's number from 0), and
// ListThingRegistrationTaskReports answers presigned URLs to them.
//
// Threads: the API thread (operations and steps, through registry::defer).
#include "common/aws_api.hpp"
#include "common/clock.hpp"
#include "common/metrics.hpp"
#include "objects/links.hpp"
#include "registry/registry.hpp"
#include "storage/store.hpp"

#include <boost/json/object.hpp>

#include <map>
#include <string>
#include <vector>

namespace fleetcore::provisioning {

struct bulk_settings {
  std::size_t chunk = 200;                         // lines per step
  std::size_t max_input_bytes = 256 * 1024 * 1024;  // the input file
};

class bulk_registration {
 public:
  /// Loads the stored tasks; a task left InProgress by a restart goes on once `resume()` is called.
  bulk_registration(registry::registry& reg, storage::store& store, common::clock& clock, objects::links links,
                    bulk_settings s = {});

  static std::vector<std::string_view> operations();
  /// Runs an operation. API thread.
  common::aws_response call(std::string_view op, const boost::json::object& in);
  /// Resumes the task a restart interrupted (after the object store is up). API thread.
  void resume();
  void register_metrics(common::registry& r) const;

 private:
  struct task {
    std::string id, template_body, bucket, key, role_arn;
    std::string status = "InProgress", message;
    std::int64_t created_ms = 0, modified_ms = 0;
    std::int64_t success = 0, failure = 0;
    std::size_t next_line = 0, total_lines = 0, steps = 0;
    std::vector<std::string> lines;  // the input, in memory while running (not stored)
    std::string to_json() const;
    static std::optional<task> from_json(std::string_view body);
  };
  common::aws_response start(const boost::json::object& in);
  common::aws_response describe(const boost::json::object& in) const;
  common::aws_response list(const boost::json::object& in) const;
  common::aws_response stop(const boost::json::object& in);
  common::aws_response reports(const boost::json::object& in) const;
  /// Provisions the next chunk of lines of task `id`, stores the progress, and schedules the next
  /// step or finishes.
  void step(const std::string& id);
  /// Writes the reports and ends the task with `status`.
  void finish(task& t, std::string status, std::string message = {});
  bool save(const task& t, std::vector<storage::operation> more = {});
  /// Reads the input file's lines; false with the task Failed when it cannot.
  bool load_input(task& t);

  registry::registry& registry_;
  storage::store& store_;
  common::clock& clock_;
  objects::links links_;
  bulk_settings settings_;
  std::map<std::string, task> tasks_;  // API thread
  common::counter lines_ok_, lines_failed_;
};

}  // namespace fleetcore::provisioning
