#include "jobs/templates.hpp"

#include "common/json_members.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/regex.hpp>

namespace fleetcore::jobs {

namespace json = boost::json;

std::string job_template::serialize() const {
  json::object o{{"jobTemplateId", id}, {"description", description}, {"document", document}, {"createdAt", created_ms}};
  store(o);
  return json::serialize(o);
}

std::optional<job_template> job_template::parse(std::string_view body) {
  boost::system::error_code ec;
  auto v = json::parse(body, ec);
  if (ec || !v.is_object()) return std::nullopt;
  const auto& o = v.get_object();
  job_template t;
  t.id = common::text_member(o, "jobTemplateId").value_or("");
  t.description = common::text_member(o, "description").value_or("");
  t.document = common::text_member(o, "document").value_or("");
  t.created_ms = common::int_member(o, "createdAt").value_or(0);
  if (!valid_template_id(t.id) || !t.load(o)) return std::nullopt;
  return t;
}

std::string managed_template::document() const {
  json::object input{{"handler", handler}};
  if (has_args) {
    json::array args;
    for (const auto& p : parameters)
      if (!p.optional) args.emplace_back("${aws:iot:parameter:" + std::string(p.key) + "}");
    input["args"] = std::move(args);
  }
  input["path"] = "${aws:iot:parameter:pathToHandler}";
  json::object action{{"name", action}, {"type", "runHandler"}, {"input", std::move(input)},
                      {"runAsUser", "${aws:iot:parameter:runAsUser}"}};
  return json::serialize(json::object{{"version", "1.0"}, {"steps", json::array{json::object{{"action", std::move(action)}}}}});
}

const std::vector<managed_template>& managed_templates() {
  // job-templates-managed.md: the templates, their handlers and parameters.
  static const managed_parameter run_as_user{"runAsUser", "The user the job handler runs as (the Device Client's when empty).",
                                             "(.){0,256}", "root", true};
  static const managed_parameter path_to_handler{"pathToHandler", "The path to the job handler on the device.", "(.){0,4096}",
                                                 "/home/user/jobs", true};
  static const managed_parameter packages{"packages", "A space-separated list of one or more applications.", "(.)+",
                                          "nginx curl", false};
  static const managed_parameter services{"services", "A space-separated list of one or more system services.", "(.)+",
                                          "nginx", false};
  static const std::vector<managed_template> all = {
      {"AWS-Reboot", "A managed template provided by AWS for rebooting your device.", "Reboot", "reboot.sh",
       {run_as_user, path_to_handler}, false},
      {"AWS-Download-File", "A managed template provided by AWS for downloading a file.", "Download-File", "download-file.sh",
       {{"downloadUrl", "The URL to download the file from.", "(.)+", "https://example.com/firmware.bin", false},
        {"filePath", "The local path where the device stores the file.", "(.)+", "/tmp/firmware.bin", false},
        run_as_user, path_to_handler}},
      {"AWS-Install-Application", "A managed template provided by AWS for installing one or more applications.",
       "Install-Application", "install-packages.sh", {packages, run_as_user, path_to_handler}},
      {"AWS-Remove-Application", "A managed template provided by AWS for removing one or more applications.",
       "Remove-Application", "remove-packages.sh", {packages, run_as_user, path_to_handler}},
      {"AWS-Start-Application", "A managed template provided by AWS for starting one or more services.",
       "Start-Application", "start-services.sh", {services, run_as_user, path_to_handler}},
      {"AWS-Stop-Application", "A managed template provided by AWS for stopping one or more services.",
       "Stop-Application", "stop-services.sh", {services, run_as_user, path_to_handler}},
      {"AWS-Restart-Application", "A managed template provided by AWS for stopping and restarting one or more services.",
       "Restart-Application", "restart-services.sh", {services, run_as_user, path_to_handler}},
  };
  return all;
}

const managed_template* find_managed(std::string_view name) {
  for (const auto& t : managed_templates())
    if (t.name == name) return &t;
  return nullptr;
}

std::optional<std::string> substitute(const managed_template& t, const std::map<std::string, std::string>& parameters,
                                      std::string& document) {
  for (const auto& given : parameters) {  // not a structured binding: clang 14 cannot capture one in a lambda
    const std::string& key = given.first;
    if (std::none_of(t.parameters.begin(), t.parameters.end(), [&](const managed_parameter& p) { return p.key == key; }))
      return "documentParameters has " + key + ", which " + std::string(t.name) + " does not take";
  }
  // The values go into JSON strings of the document: substituted in the parsed document, escaped by
  // the serializer, never spliced into its text.
  auto doc = json::parse(t.document());
  std::map<std::string, std::string> values;
  for (const auto& p : t.parameters) {
    auto it = parameters.find(std::string(p.key));
    if (it == parameters.end()) {
      if (!p.optional) return "documentParameters must give " + std::string(p.key);
      values["${aws:iot:parameter:" + std::string(p.key) + "}"] = "";
      continue;
    }
    if (!boost::regex_match(it->second, boost::regex(std::string(p.regex))))
      return "documentParameters " + std::string(p.key) + " does not match " + std::string(p.regex);
    values["${aws:iot:parameter:" + std::string(p.key) + "}"] = it->second;
  }
  auto fill = [&](auto&& self, json::value& v) -> void {
    if (v.is_string()) {
      auto it = values.find(std::string(v.get_string()));
      if (it != values.end()) v = it->second;
    } else if (v.is_array()) {
      for (auto& x : v.get_array()) self(self, x);
    } else if (v.is_object()) {
      for (auto& [k, x] : v.get_object()) self(self, x);
    }
  };
  fill(fill, doc);
  document = json::serialize(doc);
  return std::nullopt;
}

}  // namespace fleetcore::jobs
