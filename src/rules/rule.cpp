#include "rules/rule.hpp"

#include "common/json_members.hpp"

#include <boost/json.hpp>

namespace fleetcore::rules {

namespace json = boost::json;

namespace {

common::aws_error invalid(std::string message) { return {"InvalidRequestException", 400, std::move(message)}; }
common::aws_error sql_error(std::string message) { return {"SqlParseException", 400, std::move(message)}; }

/// "republish" -> "RepublishAction", "dynamoDBv2" -> "DynamoDBv2Action" (error action failures).
std::string failed_action_name(std::string_view kind) {
  std::string out(kind);
  if (!out.empty() && out[0] >= 'a' && out[0] <= 'z') out[0] = static_cast<char>(out[0] - 'a' + 'A');
  return out + "Action";
}

using template_or_error = std::variant<sql::substitution_template, common::aws_error>;

template_or_error compile_template(std::string_view text, sql::sql_version v, std::string_view field) {
  auto t = sql::substitution_template::parse(text, v);
  if (!t) return sql_error(std::string(field) + ": " + t.error().message);
  return std::move(*t);
}

/// Compiles the one member of an Action object (the model allows exactly one kind per action).
std::variant<action, common::aws_error> compile_action(const json::value& v, sql::sql_version version) {
  if (!v.is_object() || v.as_object().size() != 1)
    return invalid("each action must name exactly one action kind");
  const auto& [kind_key, body] = *v.as_object().begin();
  if (!body.is_object()) return invalid("action " + std::string(kind_key) + " must be an object");
  const auto& o = body.as_object();
  action a;
  a.kind = std::string(kind_key);
  a.failed_action = failed_action_name(a.kind);
  if (a.kind == "http") {
    auto url = common::text_member(o, "url");
    if (!url || url->empty() || url->size() > 2000) return invalid("http.url is required (at most 2000 characters)");
    auto u = compile_template(*url, version, "http.url");
    if (auto* e = std::get_if<common::aws_error>(&u)) return *e;
    http_action h{std::move(std::get<sql::substitution_template>(u)), {}};
    if (auto* hs = o.if_contains("headers")) {
      if (!hs->is_array() || hs->as_array().size() > 100) return invalid("http.headers must be a list of at most 100");
      for (const auto& hv : hs->as_array()) {
        auto k = hv.is_object() ? common::text_member(hv.as_object(), "key") : std::nullopt;
        auto val = hv.is_object() ? common::text_member(hv.as_object(), "value") : std::nullopt;
        if (!k || !val || k->empty() || k->size() > 256) return invalid("http.headers entries are {key, value}");
        auto vt = compile_template(*val, version, "http.headers.value");
        if (auto* e = std::get_if<common::aws_error>(&vt)) return *e;
        h.headers.emplace_back(std::string(*k), std::move(std::get<sql::substitution_template>(vt)));
      }
    }
    a.resource = *url;
    a.http.emplace(std::move(h));
    return a;
  }
  if (a.kind == "timestream") {
    auto db = common::text_member(o, "databaseName");
    auto table = common::text_member(o, "tableName");
    if (!db || !table || db->empty() || table->empty())
      return invalid("timestream.databaseName and timestream.tableName are required");
    if (!common::text_member(o, "roleArn")) return invalid("timestream.roleArn is required");
    auto dbt = compile_template(*db, version, "timestream.databaseName");
    auto tt = compile_template(*table, version, "timestream.tableName");
    if (auto* e = std::get_if<common::aws_error>(&dbt)) return *e;
    if (auto* e = std::get_if<common::aws_error>(&tt)) return *e;
    timestream_action ts{std::move(std::get<sql::substitution_template>(dbt)),
                         std::move(std::get<sql::substitution_template>(tt)), {}, {}, 1'000'000};
    const auto* dims = o.if_contains("dimensions");
    if (!dims || !dims->is_array() || dims->as_array().empty() || dims->as_array().size() > 128)
      return invalid("timestream.dimensions must list 1 to 128 dimensions");
    for (const auto& dv : dims->as_array()) {
      auto name = dv.is_object() ? common::text_member(dv.as_object(), "name") : std::nullopt;
      auto val = dv.is_object() ? common::text_member(dv.as_object(), "value") : std::nullopt;
      if (!name || !val || name->empty()) return invalid("timestream.dimensions entries are {name, value}");
      // Reserved names (timestream-rule-action.md).
      if (*name == "measure_name" || *name == "measure_value" || *name == "time" || name->starts_with("ts_") ||
          name->starts_with("measure_value") || name->find(':') != std::string_view::npos ||
          name->find('"') != std::string_view::npos)
        return invalid("timestream dimension name " + std::string(*name) + " is reserved");
      auto vt = compile_template(*val, version, "timestream.dimensions.value");
      if (auto* e = std::get_if<common::aws_error>(&vt)) return *e;
      ts.dimensions.emplace_back(std::string(*name), std::move(std::get<sql::substitution_template>(vt)));
    }
    if (const auto* t = common::object_member(o, "timestamp")) {
      auto value = common::text_member(*t, "value");
      if (!value) return invalid("timestream.timestamp.value is required");
      auto vt = compile_template(*value, version, "timestream.timestamp.value");
      if (auto* e = std::get_if<common::aws_error>(&vt)) return *e;
      ts.timestamp.emplace(std::move(std::get<sql::substitution_template>(vt)));
      auto unit = common::text_member(*t, "unit").value_or("MILLISECONDS");
      if (unit == "SECONDS") ts.unit_ns = 1'000'000'000;
      else if (unit == "MILLISECONDS") ts.unit_ns = 1'000'000;
      else if (unit == "MICROSECONDS") ts.unit_ns = 1'000;
      else if (unit == "NANOSECONDS") ts.unit_ns = 1;
      else return invalid("timestream.timestamp.unit must be SECONDS, MILLISECONDS, MICROSECONDS or NANOSECONDS");
    }
    a.resource = std::string(*db) + "." + std::string(*table);
    a.timestream.emplace(std::move(ts));
    return a;
  }
  if (a.kind != "republish") return a;  // stored and returned, not executed: see the engine

  auto topic = common::text_member(o, "topic");
  if (!topic || topic->empty()) return invalid("republish.topic is required");
  if (!common::text_member(o, "roleArn")) return invalid("republish.roleArn is required");
  // `$$aws/...` republishes to `$aws/...` (republish-rule-action.md).
  std::string target(*topic);
  if (target.starts_with("$$")) target.erase(0, 1);
  auto t = compile_template(target, version, "republish.topic");
  if (auto* e = std::get_if<common::aws_error>(&t)) return *e;
  republish_action r{std::move(std::get<sql::substitution_template>(t)), 0, {}, {}, {}, {}, {}, {}};
  if (auto* q = o.if_contains("qos")) {
    if (!q->is_int64() || q->as_int64() < 0 || q->as_int64() > 1) return invalid("republish.qos must be 0 or 1");
    r.qos = static_cast<std::uint8_t>(q->as_int64());
  }
  a.resource = *topic;
  if (const auto* h = common::object_member(o, "headers")) {
    auto text_header = [&](std::string_view name,
                           std::optional<sql::substitution_template>& out) -> std::optional<common::aws_error> {
      auto s = common::text_member(*h, name);
      if (!s) return std::nullopt;
      auto c = compile_template(*s, version, "republish.headers." + std::string(name));
      if (auto* e = std::get_if<common::aws_error>(&c)) return *e;
      out.emplace(std::move(std::get<sql::substitution_template>(c)));
      return std::nullopt;
    };
    if (auto e = text_header("contentType", r.content_type)) return *e;
    if (auto e = text_header("responseTopic", r.response_topic)) return *e;
    if (auto e = text_header("correlationData", r.correlation_data)) return *e;
    if (auto p = common::text_member(*h, "payloadFormatIndicator")) {
      if (*p == "UTF8_DATA") r.payload_format = 1;
      else if (*p == "UNSPECIFIED_BYTES") r.payload_format = 0;
      else return invalid("republish.headers.payloadFormatIndicator must be UNSPECIFIED_BYTES or UTF8_DATA");
    }
    if (auto m = common::text_member(*h, "messageExpiry")) {
      std::uint32_t seconds = 0;
      for (char c : *m) {
        if (c < '0' || c > '9' || seconds > 429496729) return invalid("republish.headers.messageExpiry must be a number");
        seconds = seconds * 10 + static_cast<std::uint32_t>(c - '0');
      }
      r.message_expiry_s = seconds;
    }
    if (auto* ups = h->if_contains("userProperties")) {
      if (!ups->is_array() || ups->as_array().size() > 100)
        return invalid("republish.headers.userProperties must be a list of at most 100");
      for (const auto& up : ups->as_array()) {
        if (!up.is_object()) return invalid("republish.headers.userProperties entries are {key, value}");
        auto k = common::text_member(up.as_object(), "key");
        auto val = common::text_member(up.as_object(), "value");
        if (!k || !val) return invalid("republish.headers.userProperties entries are {key, value}");
        auto kt = compile_template(*k, version, "userProperties.key");
        auto vt = compile_template(*val, version, "userProperties.value");
        if (auto* e = std::get_if<common::aws_error>(&kt)) return *e;
        if (auto* e = std::get_if<common::aws_error>(&vt)) return *e;
        r.user_properties.emplace_back(std::move(std::get<sql::substitution_template>(kt)),
                                       std::move(std::get<sql::substitution_template>(vt)));
      }
    }
  }
  a.republish.emplace(std::move(r));
  return a;
}

}  // namespace

bool valid_rule_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > 128) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    if (!ok) return false;
  }
  return true;
}

std::variant<rule_ptr, common::aws_error> compile(std::string name, std::string arn, json::object payload,
                                                  double created_at) {
  // A rule without awsIotSqlVersion is 2015-10-08 (the CLI's and CloudFormation's default). Inserted
  // before any view into `payload` is taken: an insertion may move its values.
  if (!payload.contains("awsIotSqlVersion")) payload["awsIotSqlVersion"] = "2015-10-08";
  auto sql_text = common::text_member(payload, "sql");
  if (!sql_text) return invalid("topicRulePayload.sql is required");
  auto version_text = common::text_member(payload, "awsIotSqlVersion");
  auto version = version_text ? sql::parse_version(*version_text) : std::nullopt;
  if (!version) return invalid("awsIotSqlVersion must be 2015-10-08, 2016-03-23 or beta");
  auto statement = sql::statement::parse(*sql_text, *version);
  if (!statement) return sql_error(statement.error().message);

  const auto* actions = payload.if_contains("actions");
  if (!actions || !actions->is_array()) return invalid("topicRulePayload.actions is required");
  if (actions->as_array().size() > 10) return invalid("a rule has at most 10 actions");
  std::vector<action> compiled;
  for (const auto& a : actions->as_array()) {
    auto c = compile_action(a, *version);
    if (auto* e = std::get_if<common::aws_error>(&c)) return *e;
    compiled.push_back(std::move(std::get<action>(c)));
  }
  std::optional<action> error_action;
  if (const auto* ea = payload.if_contains("errorAction"); ea && !ea->is_null()) {
    auto c = compile_action(*ea, *version);
    if (auto* e = std::get_if<common::aws_error>(&c)) return *e;
    error_action = std::move(std::get<action>(c));
  }
  if (auto* d = payload.if_contains("ruleDisabled"); d && !d->is_bool()) return invalid("ruleDisabled must be a boolean");

  auto r = std::make_shared<topic_rule>(topic_rule{std::move(name), std::move(arn), std::move(*statement),
                                                   std::string(*version_text), {}, false, created_at,
                                                   std::move(compiled), std::move(error_action), {}});
  r->description = std::string(common::text_member(payload, "description").value_or(""));
  r->disabled = common::bool_member(payload, "ruleDisabled").value_or(false);
  r->payload = std::move(payload);
  return rule_ptr(std::move(r));
}

std::string to_document(const topic_rule& r) {
  return json::serialize(json::object{{"payload", r.payload}, {"createdAt", r.created_at}});
}

std::optional<rule_ptr> from_document(std::string_view name, std::string_view arn, std::string_view body) {
  boost::system::error_code ec;
  auto v = json::parse(body, ec);
  if (ec || !v.is_object()) return std::nullopt;
  const auto* payload = common::object_member(v.as_object(), "payload");
  if (!payload) return std::nullopt;
  auto r = compile(std::string(name), std::string(arn), *payload,
                   common::number_member(v.as_object(), "createdAt").value_or(0));
  if (auto* p = std::get_if<rule_ptr>(&r)) return *p;
  return std::nullopt;
}

json::object describe(const topic_rule& r) {
  json::object out{{"ruleName", r.name},
                   {"sql", r.statement.text()},
                   {"description", r.description},
                   {"createdAt", r.created_at},
                   {"ruleDisabled", r.disabled},
                   {"awsIotSqlVersion", r.sql_version}};
  if (auto* a = r.payload.if_contains("actions")) out["actions"] = *a;
  if (auto* e = r.payload.if_contains("errorAction")) out["errorAction"] = *e;
  return out;
}

}  // namespace fleetcore::rules
