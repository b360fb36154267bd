#include "rules/rule.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

namespace fleetcore::rules {
namespace {


std::variant<rule_ptr, common::aws_error> compile_json(std::string_view payload) {
  return compile("r1", "arn:aws:iot:us-east-1:000000000000:rule/r1", boost::json::parse(payload).as_object(), 1.5);
}

std::string error_of(std::string_view payload) {
  auto r = compile_json(payload);
  auto* e = std::get_if<common::aws_error>(&r);
  return e ? e->code : "";
}

TEST(RulesCompile, DefaultsAndRoundTrip) {
  auto r = compile_json(R"({"sql":"SELECT * FROM 'a/+'","actions":[{"republish":{"topic":"$$aws/things/x/shadow/update","roleArn":"r"}},
                           {"lambda":{"functionArn":"f"}}],"description":"d"})");
  ASSERT_TRUE(std::holds_alternative<rule_ptr>(r));
  const auto& rule = *std::get<rule_ptr>(r);
  EXPECT_EQ(rule.sql_version, "2015-10-08");  // the CLI's default
  EXPECT_EQ(rule.statement.topic_filter(), "a/+");
  EXPECT_FALSE(rule.disabled);
  ASSERT_EQ(rule.actions.size(), 2u);
  EXPECT_TRUE(rule.actions[0].republish);
  EXPECT_EQ(rule.actions[0].failed_action, "RepublishAction");
  EXPECT_FALSE(rule.actions[1].executable());  // stored, returned, not executed
  EXPECT_EQ(rule.actions[1].failed_action, "LambdaAction");
  auto d = describe(rule);
  EXPECT_EQ(d.at("awsIotSqlVersion").as_string(), "2015-10-08");
  EXPECT_EQ(d.at("actions").as_array().size(), 2u);
  // Stored and loaded back unchanged.
  auto again = from_document("r1", rule.arn, to_document(rule));
  ASSERT_TRUE(again);
  EXPECT_EQ(boost::json::serialize(describe(**again)), boost::json::serialize(d));
}

TEST(RulesCompile, AwsErrors) {
  EXPECT_EQ(error_of(R"({"sql":"SELEC * FROM 'a'","actions":[]})"), "SqlParseException");
  EXPECT_EQ(error_of(R"({"actions":[]})"), "InvalidRequestException");
  EXPECT_EQ(error_of(R"({"sql":"SELECT * FROM 'a'"})"), "InvalidRequestException");
  EXPECT_EQ(error_of(R"({"sql":"SELECT * FROM 'a'","actions":[],"awsIotSqlVersion":"2020-01-01"})"),
            "InvalidRequestException");
  std::string eleven = R"({"sql":"SELECT * FROM 'a'","actions":[)";
  for (int i = 0; i < 11; ++i) eleven += std::string(i ? "," : "") + R"({"lambda":{"functionArn":"f"}})";
  EXPECT_EQ(error_of(eleven + "]}"), "InvalidRequestException");
  EXPECT_EQ(error_of(R"({"sql":"SELECT * FROM 'a'","actions":[{"republish":{"topic":"t","roleArn":"r","qos":2}}]})"),
            "InvalidRequestException");
  EXPECT_EQ(error_of(R"({"sql":"SELECT * FROM 'a'","actions":[{"republish":{"topic":"a/${nope(}","roleArn":"r"}}]})"),
            "SqlParseException");  // a substitution template that does not parse
  EXPECT_EQ(error_of(R"({"sql":"SELECT * FROM 'a'","actions":[{"http":{"confirmationUrl":"https://x"}}]})"),
            "InvalidRequestException");
  EXPECT_EQ(error_of(R"({"sql":"SELECT * FROM 'a'","actions":[{"timestream":{"roleArn":"r","databaseName":"db1",
            "tableName":"t1","dimensions":[{"name":"ts_x","value":"v"}]}}]})"),
            "InvalidRequestException");  // reserved dimension prefix
  EXPECT_EQ(error_of(R"({"sql":"SELECT * FROM 'a'","actions":[{"republish":{"topic":"t","roleArn":"r"},"http":{"url":"u"}}]})"),
            "InvalidRequestException");  // one kind per action
}

TEST(RulesCompile, NameRule) {
  EXPECT_TRUE(valid_rule_name("hot_1"));
  EXPECT_FALSE(valid_rule_name("hot-1"));
  EXPECT_FALSE(valid_rule_name(""));
  EXPECT_FALSE(valid_rule_name(std::string(129, 'a')));
}

}  // namespace
}  // namespace fleetcore::rules
