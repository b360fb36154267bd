#include "rules/sql/sql.hpp"

#include <gtest/gtest.h>

namespace fleetcore::rules::sql {
namespace {

// A payload parsed once by the caller (the rules engine, for all the rules of one message) gives
// exactly what each statement would get by parsing it itself.
TEST(SqlParsedPayload, SameResultsAsParsingPerStatement) {
  const char* statements[] = {"SELECT a, b.c AS d FROM 't/+' WHERE a > 1", "SELECT * FROM 't'",
                              "SELECT VALUE b FROM 't'", "SELECT get(arr, 1) AS x, topic(1) AS t FROM 't'",
                              "SELECT encode(*, 'base64') AS raw FROM 't'"};
  const char* payloads[] = {R"({"a":2,"b":{"c":[1,2]},"arr":["x","y"]})", R"({"a":0})", "not json", "",
                            R"([1,2,3])"};
  for (auto v : {sql_version::v2015_10_08, sql_version::v2016_03_23}) {
    for (const char* text : statements) {
      auto st = statement::parse(text, v);
      if (!st) {  // encode() is 2016-03-23 only
        EXPECT_EQ(v, sql_version::v2015_10_08) << text;
        continue;
      }
      for (const char* payload : payloads) {
        message_context plain;
        plain.topic = "t/1";
        plain.payload = payload;
        auto expected = st->evaluate(plain);
        auto parsed = parse_payload(payload);
        message_context pre = plain;
        pre.payload_parsed = true;
        pre.parsed_payload = parsed ? &*parsed : nullptr;
        auto got = st->evaluate(pre);
        EXPECT_EQ(got.matched, expected.matched) << text << " / " << payload;
        EXPECT_EQ(got.payload, expected.payload) << text << " / " << payload;
        EXPECT_EQ(got.is_json, expected.is_json) << text << " / " << payload;
      }
    }
  }
}

}  // namespace
}  // namespace fleetcore::rules::sql
