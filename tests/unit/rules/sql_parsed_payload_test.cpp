#include "rules/sql/sql.hpp"

#include <boost/json/monotonic_resource.hpp>
#include <gtest/gtest.h>
#include <string>
#include <utility>
#include <vector>

namespace fleetcore::rules::sql {
namespace {

message_context context_of(std::string_view topic, std::string_view payload) {
  message_context m;
  m.topic = topic;
  m.payload = payload;
  return m;
}

/// `st` over `m`'s payload as the rules engine evaluates it: parsed once beforehand, into an arena.
evaluation evaluate_preparsed(const statement& st, message_context m) {
  unsigned char buf[512];
  boost::json::monotonic_resource mr(buf, sizeof buf);
  boost::json::value doc(&mr);
  m.payload_parsed = true;
  m.parsed_payload = parse_payload(m.payload, &mr, doc) ? &doc : nullptr;
  return st.evaluate(m);
}

/// Checks the engine's rejection of `payload` for the simple WHERE of `st` against the general
/// evaluator: a rejection only where WHERE is false, and a decision in every case but an object or
/// array member (left to the evaluator).
void expect_rejection_as_evaluated(const statement& st, std::string_view payload, const std::string& what) {
  const bool holds = st.evaluate(context_of("t", payload)).matched;
  payload_fields fields;
  std::string_view wanted[] = {"d", st.where_field()};
  const bool json = fields.scan(payload, wanted);
  EXPECT_EQ(json, parse_payload(payload).has_value()) << payload;
  const bool rejected = st.where_rejects(json ? &fields : nullptr);
  if (rejected) {
    EXPECT_FALSE(holds) << what << " over " << payload;
  }
  const auto* member = json ? fields.find(st.where_field()) : nullptr;
  if (!(member && member->complex)) {
    EXPECT_EQ(rejected, !holds) << what << " over " << payload;
  }
}

// A payload parsed once by the caller (the rules engine, for all the rules of one message) gives
// exactly what each statement would get by parsing it itself.
TEST(SqlParsedPayload, SameResultsAsParsingPerStatement) {
  const char* statements[] = {"SELECT a, b.c AS d FROM 't/+' WHERE a > 1", "SELECT * FROM 't'",
                              "SELECT VALUE b FROM 't'", "SELECT get(arr, 1) AS x, topic(1) AS t FROM 't'",
                              "SELECT encode(*, 'base64') AS raw FROM 't'", "SELECT c FROM 't' WHERE c > 1"};
  const char* payloads[] = {R"({"a":2,"b":{"c":[1,2]},"arr":["x","y"],"c":2})", R"({"a":0})", "not json", "",
                            R"([1,2,3])"};
  for (auto v : {sql_version::v2015_10_08, sql_version::v2016_03_23}) {
    for (const char* text : statements) {
      auto st = statement::parse(text, v);
      if (!st) {  // encode() is 2016-03-23 only
        EXPECT_EQ(v, sql_version::v2015_10_08) << text;
        continue;
      }
      for (const char* payload : payloads) {
        auto expected = st->evaluate(context_of("t/1", payload));
        auto got = evaluate_preparsed(*st, context_of("t/1", payload));
        EXPECT_EQ(got.matched, expected.matched) << text << " / " << payload;
        EXPECT_EQ(got.payload, expected.payload) << text << " / " << payload;
        EXPECT_EQ(got.is_json, expected.is_json) << text << " / " << payload;
      }
    }
  }
}

// A WHERE of the form `field <comparison> literal` is rejected by the engine from the payload's
// scanned fields: its decisions must be the general evaluator's, for every type on either side.
TEST(SqlPayloadFields, SimpleWhereRejectsAsTheGeneralEvaluator) {
  const char* ops[] = {"=", "<>", "<", "<=", ">", ">="};
  const char* literals[] = {"10", "10.0", "9.5", "'10'", "'abc'", "true", "-3"};
  const char* values[] = {"10", "10.0", "11", "9.5", "-3", "\"10\"", "\"1e1\"", "\"abc\"", "true", "null", "{}", "[1]",
                          "12345678901234567890", "1e300"};
  std::vector<std::string> payloads = {R"({"d":1})", "[1,2]", "not json", "7"};
  for (const char* value : values) payloads.push_back(std::string(R"({"c":)") + value + "}");
  for (auto v : {sql_version::v2015_10_08, sql_version::v2016_03_23}) {
    for (const char* op : ops) {
      for (const char* lit : literals) {
        std::string sql = std::string("SELECT c FROM 't' WHERE c ") + op + " " + lit;
        auto st = statement::parse(sql, v);
        ASSERT_TRUE(st) << sql;
        ASSERT_TRUE(st->simple_where()) << sql;
        for (const auto& payload : payloads) expect_rejection_as_evaluated(*st, payload, sql);
      }
    }
  }
}

// The same over payloads that test the scan itself: escaped keys and values, duplicate keys (the last
// one counts, as in the document), nesting, a top level that is not an object, invalid JSON.
TEST(SqlPayloadFields, RejectionsOverAwkwardPayloads) {
  const char* wheres[] = {"c > 10", "c = 'x y'", "c <> 10", "c < '9.5'", "c >= true", "c = 10.0", "c <= -1"};
  const char* payloads[] = {
      R"({"c":11})", R"({"c":10})", R"({"c":10.0})", R"({"c":"11"})", R"({"c":"x y"})", R"({"c":"x\u0020y"})",
      R"({"\u0063":11})", R"({"c":1,"c":20})", R"({"c":20,"c":1})", R"({"c":{"d":1}})", R"({"c":[11]})",
      R"({"d":{"c":11}})", R"({"c":null})", R"({"c":true})", R"({"c":-1})", R"({"c":18446744073709551615})",
      R"([{"c":11}])", "11", R"("c")", "not json", R"({"c":11)", R"({"c":11} x)", "", R"({"c":1e400})",
      R"({"a":[[[[[[{"c":1}]]]]]],"c":12})", R"({"c":"a\"b","e":"\ud83d\ude00"})"};
  for (auto v : {sql_version::v2015_10_08, sql_version::v2016_03_23}) {
    for (const char* where : wheres) {
      auto st = statement::parse(std::string("SELECT * FROM 't' WHERE ") + where, v);
      ASSERT_TRUE(st) << where;
      ASSERT_TRUE(st->simple_where()) << where;
      ASSERT_EQ(st->where_field(), "c");
      for (const char* payload : payloads) expect_rejection_as_evaluated(*st, payload, where);
    }
  }
  auto not_simple = statement::parse("SELECT * FROM 't' WHERE c > 10 AND d < 2", sql_version::v2016_03_23);
  ASSERT_TRUE(not_simple);
  EXPECT_FALSE(not_simple->simple_where());
  EXPECT_FALSE(not_simple->where_rejects(nullptr));  // never decided here
}

// Rules whose WHEREs share a key decide once per message for all of them: the key must be equal only
// where the decisions are, whatever the spelling of the statement.
TEST(SqlPayloadFields, WhereKeySharedOnlyByWheresThatDecideAlike) {
  const char* wheres[] = {"c > 10", "c>10", "(c > 10)", "c > 10.0", "c > '10'", "c >= 10", "d > 10", "c > 11"};
  const char* payloads[] = {R"({"c":11,"d":1})", R"({"c":10,"d":11})", R"({"c":"10.5"})", R"({"c":10.5})", R"({})"};
  std::vector<std::pair<std::string, statement>> all;
  for (auto v : {sql_version::v2015_10_08, sql_version::v2016_03_23})
    for (const char* where : wheres) {
      auto st = statement::parse(std::string("SELECT a FROM 't/#' WHERE ") + where, v);
      ASSERT_TRUE(st && st->simple_where()) << where;
      all.emplace_back(where, std::move(*st));
    }
  for (const auto& [w1, s1] : all)
    for (const auto& [w2, s2] : all) {
      if (s1.where_key() != s2.where_key()) continue;
      EXPECT_EQ(s1.version(), s2.version()) << w1 << " / " << w2;
      for (const char* payload : payloads) {
        payload_fields fields;
        std::string_view wanted[] = {s1.where_field(), s2.where_field()};
        ASSERT_TRUE(fields.scan(payload, wanted));
        EXPECT_EQ(s1.where_rejects(&fields), s2.where_rejects(&fields)) << w1 << " / " << w2 << " over " << payload;
      }
    }
  auto key = [](const char* sql) { return statement::parse(sql, sql_version::v2016_03_23)->where_key(); };
  EXPECT_EQ(key("SELECT a FROM 'x' WHERE c > 10"), key("SELECT b, * FROM 'y/+' WHERE c>10"));  // FROM, SELECT apart
  EXPECT_NE(key("SELECT a FROM 'x' WHERE c > 10"), key("SELECT a FROM 'x' WHERE c > '10'"));
  EXPECT_NE(key("SELECT a FROM 'x' WHERE c > 10"), key("SELECT a FROM 'x' WHERE c >= 10"));
  EXPECT_NE(key("SELECT a FROM 'x' WHERE c > 10"), key("SELECT a FROM 'x' WHERE d > 10"));
  EXPECT_NE(statement::parse("SELECT a FROM 'x' WHERE c > 10", sql_version::v2015_10_08)->where_key(),
            key("SELECT a FROM 'x' WHERE c > 10"));
}

// What the engine asks a statement to decide where to evaluate it and whether to parse the payload.
TEST(SqlStatementTraits, ReadsServicesAndUsesPayload) {
  auto v = sql_version::v2016_03_23;
  auto shadow = statement::parse("SELECT get_thing_shadow(topic(2), 'arn:aws:iam::1:role/r') AS s FROM 'a/+'", v);
  ASSERT_TRUE(shadow);
  EXPECT_TRUE(shadow->reads_services());
  auto secret = statement::parse("SELECT topic() FROM 'a' WHERE get_secret('s', 'SecretString', 'arn:aws:iam::1:role/r') = 'x'", v);
  ASSERT_TRUE(secret);
  EXPECT_TRUE(secret->reads_services());
  auto plain = statement::parse("SELECT a FROM 'a' WHERE b > 1", v);
  ASSERT_TRUE(plain);
  EXPECT_FALSE(plain->reads_services());
  EXPECT_TRUE(plain->uses_payload());
  auto topic_only = statement::parse("SELECT topic(1) AS t, clientid() AS c FROM 'a/#'", v);
  ASSERT_TRUE(topic_only);
  EXPECT_FALSE(topic_only->uses_payload());
  auto star = statement::parse("SELECT * FROM 'a'", v);
  ASSERT_TRUE(star);
  EXPECT_TRUE(star->uses_payload());
}

}  // namespace
}  // namespace fleetcore::rules::sql
