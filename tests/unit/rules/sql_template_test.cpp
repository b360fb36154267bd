// `${expr}` substitution templates (iot-substitution-templates.md).
#include "sql_test_support.hpp"

namespace fleetcore::rules::sql::test {
namespace {

std::string render(std::string_view text, std::string_view payload, std::string_view topic, sql_version v = v2) {
  auto t = substitution_template::parse(text, v);
  EXPECT_TRUE(t) << text << (t ? "" : "\n" + t.error().message);
  if (!t) return "<parse error>";
  return t->render(context(payload, topic));
}

TEST(SqlTemplate, GuideExamples) {
  const char* device = R"({"deviceid":"iot123","temp":54.98,"humidity":32.43,"coords":{"latitude":47.615694,"longitude":-122.3359976}})";
  EXPECT_EQ(render("${topic()}/republish", device, "my/iot/topic"), "my/iot/topic/republish");
  EXPECT_EQ(render("alerts/${topic(2)}", "{}", "sensors/d1/data"), "alerts/d1");
  EXPECT_EQ(render("${parse_time('yyyy', timestamp(), 'UTC')}", "{}", "A/B"), "2016");
  EXPECT_EQ(render("t=${temp};c=${coords}", device, "a"), R"(t=54.98;c={"latitude":47.615694,"longitude":-122.3359976})");
  EXPECT_EQ(render("${deviceid}-${upper(deviceid)}", device, "a"), "iot123-IOT123");
}

TEST(SqlTemplate, UndefinedRendersAsNothing) {
  EXPECT_EQ(render("x${missing}y", "{}", "a"), "xy");
  EXPECT_EQ(render("x${aws_lambda('arn', *)}y", "{}", "a"), "xy");
  EXPECT_EQ(render("${topic(9)}", "{}", "a/b"), "");
}

TEST(SqlTemplate, SecretFromTheReader) {
  auto t = substitution_template::parse(
      "${get_secret('API_KEY', 'SecretString', 'API_KEY_VALUE', 'arn:aws:iam::12345678910:role/getsecret')}", v1);
  ASSERT_TRUE(t);
  auto m = context("{}");
  std::vector<std::string> errors;
  EXPECT_EQ(t->render(m, &errors), "");
  EXPECT_EQ(errors.size(), 1u);
  m.secret_reader = [](std::string_view, std::string_view) -> std::optional<std::string> { return "k3y"; };
  EXPECT_EQ(t->render(m), "k3y");
}

TEST(SqlTemplate, ConstantAndLiteralDollar) {
  auto t = substitution_template::parse("plain/$topic/{x}", v1);
  ASSERT_TRUE(t);
  EXPECT_TRUE(t->is_constant());
  EXPECT_EQ(t->render(context("{}")), "plain/$topic/{x}");
  auto d = substitution_template::parse("a/${topic(1)}", v1);
  ASSERT_TRUE(d);
  EXPECT_FALSE(d->is_constant());
}

TEST(SqlTemplate, ObjectLiteralsInsideBraces) {
  EXPECT_EQ(render("${get({'k': 'v'}, 'k')}!", "{}", "a"), "v!");
  EXPECT_EQ(render("${'}'}", "{}", "a"), "}");
}

TEST(SqlTemplate, ParseErrors) {
  for (const char* bad : {"${", "a/${topic(}", "${1 +}", "${nosuch()}", "${topic() x}"}) {
    auto t = substitution_template::parse(bad, v2);
    EXPECT_FALSE(t) << bad;
  }
  auto t = substitution_template::parse("abc/${topic(}", v2);
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().offset, 12u);
}

TEST(SqlTemplate, NoAliasesFromTheSelect) {
  // A template sees the original message: `dev` exists only as a SELECT alias.
  EXPECT_EQ(render("${dev}", R"({"temp":1})", "sensors/d1/data"), "");
}

}  // namespace
}  // namespace fleetcore::rules::sql::test
