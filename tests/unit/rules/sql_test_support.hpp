#pragma once
// Shared helpers of the AWS IoT SQL tests (sql_*_test.cpp).
#include "rules/sql/sql.hpp"

#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

#include <string>

namespace fleetcore::rules::sql::test {

constexpr sql_version v1 = sql_version::v2015_10_08;
constexpr sql_version v2 = sql_version::v2016_03_23;

inline message_context context(std::string_view payload, std::string_view topic = "topic/subtopic") {
  message_context m;
  m.topic = topic;
  m.payload = payload;
  m.client_id = "123456789012";
  m.principal = "ba67293af50bf2506f5f93469686da660c7c844e7b3950bfb16813e0d31e9373";
  m.timestamp_ms = 1481825251155;
  m.account_id = "123456789012";
  m.trace_id = "12345678-1234-1234-1234-123456789012";
  return m;
}

/// Evaluates `sql` over `payload`; fails the test if it does not parse.
inline evaluation run(std::string_view sql, sql_version v, std::string_view payload,
                      std::string_view topic = "topic/subtopic") {
  auto st = statement::parse(sql, v);
  EXPECT_TRUE(st) << sql << "\n" << (st ? "" : st.error().message);
  if (!st) return {};
  return st->evaluate(context(payload, topic));
}

/// The value of expression `expr` as JSON text ("" for Undefined), by `SELECT expr AS r`.
inline std::string value_of(std::string_view expr, sql_version v, std::string_view payload = "{}") {
  std::string sql = "SELECT " + std::string(expr) + " AS r FROM 't'";
  auto e = run(sql, v, payload);
  boost::system::error_code ec;
  auto out = boost::json::parse(e.payload, ec);
  if (ec || !out.is_object()) return "<bad output: " + e.payload + ">";
  auto* r = out.get_object().if_contains("r");
  if (!r) return "";
  // Re-run as SELECT VALUE under 2016-03-23 semantics would lose v1's number spelling: cut the text.
  const std::string& p = e.payload;
  auto at = p.find("\"r\":");
  return p.substr(at + 4, p.size() - at - 5);
}

/// JSON equality (object key order ignored) when both sides are JSON, else byte equality.
inline ::testing::AssertionResult same_output(const std::string& expected, const std::string& actual) {
  boost::system::error_code e1, e2;
  auto a = boost::json::parse(expected, e1);
  auto b = boost::json::parse(actual, e2);
  if (!e1 && !e2 && a == b) return ::testing::AssertionSuccess();
  if (expected == actual) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "expected " << expected << "\n  actual " << actual;
}

}  // namespace fleetcore::rules::sql::test
