#pragma once
// A topic rule as AWS IoT defines it (CreateTopicRule's topicRulePayload): its SQL compiled once, its
// actions parsed into what the engine executes, and the payload kept as given so GetTopicRule returns
// every action kind unchanged (infrastructure as code round-trips), executed or not.
#include "common/aws_api.hpp"
#include "mqtt/packets.hpp"
#include "rules/sql/sql.hpp"

#include <boost/json/object.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace fleetcore::rules {

/// `republish` (republish-rule-action.md): the topic and the string headers are substitution templates.
struct republish_action {
  sql::substitution_template topic;
  std::uint8_t qos = 0;
  std::optional<sql::substitution_template> content_type, response_topic, correlation_data;
  std::optional<std::uint8_t> payload_format;
  std::optional<std::uint32_t> message_expiry_s;
  std::vector<std::pair<sql::substitution_template, sql::substitution_template>> user_properties;
};

/// `http` (https-rule-action.md): the url and the header values are substitution templates.
struct http_action {
  sql::substitution_template url;
  std::vector<std::pair<std::string, sql::substitution_template>> headers;
};

/// `timestream` (timestream-rule-action.md), written to fleetcore's telemetry store: one record per
/// attribute of the SELECT result.
struct timestream_action {
  sql::substitution_template database, table;
  std::vector<std::pair<std::string, sql::substitution_template>> dimensions;
  std::optional<sql::substitution_template> timestamp;
  std::int64_t unit_ns = 1'000'000;  // timestamp.unit (MILLISECONDS by default)
};

/// One action of a rule: the model's member name ("republish", "http", "lambda", ...) and, for the
/// kinds fleetcore executes, their compiled form.
struct action {
  std::string kind;
  /// The name AWS gives it in an error action's failures ("RepublishAction").
  std::string failed_action;
  /// What failures[].failedResource shows (the republish topic, the URL...).
  std::string resource;
  std::optional<republish_action> republish;
  std::optional<http_action> http;
  std::optional<timestream_action> timestream;
  bool executable() const noexcept { return republish || http || timestream; }
};

struct topic_rule {
  std::string name;
  std::string arn;
  sql::statement statement;
  std::string sql_version;  // as AWS spells it
  std::string description;
  bool disabled = false;
  double created_at = 0;  // epoch seconds
  std::vector<action> actions;
  std::optional<action> error_action;
  /// The payload as given (with awsIotSqlVersion defaulted), for GetTopicRule and storage.
  boost::json::object payload;
};

using rule_ptr = std::shared_ptr<const topic_rule>;

/// Rule names: [a-zA-Z0-9_]{1,128}.
bool valid_rule_name(std::string_view name) noexcept;

/// Compiles a topicRulePayload: InvalidRequestException for a bad shape (no sql, no or too many
/// actions, a malformed action), SqlParseException for SQL or a substitution template that does not
/// parse — as CreateTopicRule and ReplaceTopicRule answer.
/// `ruleDisabled` of the payload says whether the rule is disabled.
std::variant<rule_ptr, common::aws_error> compile(std::string name, std::string arn, boost::json::object payload,
                                                  double created_at);

/// The stored form of a rule (a storage document body) and back. `load` returns nullopt for a body
/// that does not compile (logged by the caller).
std::string to_document(const topic_rule& r);
std::optional<rule_ptr> from_document(std::string_view name, std::string_view arn, std::string_view body);

/// GetTopicRule's `rule` member.
boost::json::object describe(const topic_rule& r);

}  // namespace fleetcore::rules
