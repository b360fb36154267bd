#pragma once
// Job templates: the operator's own (CreateJobTemplate: a document and configurations a job starts
// from) and AWS's managed ones (AWS-Reboot, AWS-Download-File...: documents for the AWS IoT Device
// Client whose `${aws:iot:parameter:<key>}` placeholders CreateJob's documentParameters fill).
#include "jobs/model.hpp"

#include <boost/json/object.hpp>

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fleetcore::jobs {

/// A custom job template: what CreateJob takes from it when given its ARN.
struct job_template : job_configs {
  std::string id, description, document;
  std::int64_t created_ms = 0;

  std::string serialize() const;
  static std::optional<job_template> parse(std::string_view body);
};
inline constexpr std::string_view k_template_kind = "job_template";
/// jobTemplateId: `[a-zA-Z0-9_-]{1,64}`, as a jobId.
inline bool valid_template_id(std::string_view id) { return valid_job_id(id); }

struct managed_parameter {
  std::string_view key, description, regex, example;
  bool optional = false;
};

/// An AWS managed template (version 1.0, for the LINUX environment).
struct managed_template {
  std::string_view name, description, action, handler;
  std::vector<managed_parameter> parameters;  // the template's own, then runAsUser and pathToHandler
  bool has_args = true;                       // AWS-Reboot passes no arguments

  /// The job document, with its `${aws:iot:parameter:<key>}` placeholders.
  std::string document() const;
};

const std::vector<managed_template>& managed_templates();
const managed_template* find_managed(std::string_view name);

/// The document of `t` with `parameters` substituted: an error message if a required parameter is
/// missing, a value does not match its parameter's pattern or a key is not one of the template's.
/// An optional parameter left out becomes an empty string.
std::optional<std::string> substitute(const managed_template& t, const std::map<std::string, std::string>& parameters,
                                      std::string& document);

}  // namespace fleetcore::jobs
