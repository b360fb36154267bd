// Every example of iot-sql-functions.md and the operator tables of iot-sql-operators.md, as
// (expression, value under 2015-10-08, value under 2016-03-23). "" is Undefined; nullptr: not run
// under that version (a 2016-03-23-only function does not parse under 2015-10-08).
#include "sql_test_support.hpp"

#include <regex>
#include <vector>

namespace fleetcore::rules::sql::test {
namespace {

struct expr_case {
  const char* expr;
  const char* in_v1;
  const char* in_v2;
  const char* payload = "{}";
};

const std::vector<expr_case> function_examples = {
    {"abs(-5)", "5", "5"},
    {"abs(-5.5)", "5.5", "5.5"},
    {"abs('-5.123')", "5.123", "5.123"},
    {"abs(true)", "", ""},
    {"abs(null)", "", ""},
    {"accountid()", R"("123456789012")", R"("123456789012")"},
    {"acos(0)", "1.5707963267948966", "1.5707963267948966"},
    {"acos(2)", "", ""},  // imaginary: Undefined
    {"asin(0)", "0.0", "0"},
    {"atan(0)", "0.0", "0"},
    {"atan2(1, 0)", "1.5707963267948966", "1.5707963267948966"},
    {"atan2('1', 0)", "1.5707963267948966", "1.5707963267948966"},
    {"bitand(13, 5)", "5", "5"},
    {"bitand(13.7, '5')", "5", "5"},
    {"bitor(8, 5)", "13", "13"},
    {"bitxor(13, 5)", "8", "8"},
    // The Guide prints 2 (a four-bit NOT); a 64-bit two's-complement NOT, as Java's ~, is -14.
    {"bitnot(13)", "-14", "-14"},
    {"bitnot('x')", "", ""},
    {"cast(true as Int)", "1", "1"},
    {"cast(false as Integer)", "0", "0"},
    {"cast(1.9 as Int)", "1", "1"},
    {"cast('5.5' as Double)", "5.5", "5.5"},
    {"cast(5 as Double)", "5.0", "5"},
    {"cast(5 as String)", R"("5")", R"("5")"},
    {"cast([1,'a'] as String)", nullptr, R"("[1,\"a\"]")"},
    {"cast(null as String)", "", ""},
    {"cast(true as Decimal)", nullptr, "1"},
    {"cast(0 as Boolean)", nullptr, "false"},
    {"cast(2.5 as Bool)", nullptr, "true"},
    {"cast('TRUE' as Boolean)", nullptr, "true"},
    {"cast('yes' as Boolean)", nullptr, ""},
    {"ceil(1.2)", "2", "2"},
    {"ceil(-1.2)", "-1", "-1"},
    {"ceil('1.2')", "2", "2"},
    {"chr(65)", R"("A")", R"("A")"},
    {"chr(49)", R"("1")", R"("1")"},
    {"chr(300)", "", ""},
    {"clientid()", R"("123456789012")", R"("123456789012")"},
    {"concat()", "", ""},
    {"concat(1)", R"("1")", R"("1")"},
    {"concat([1, 2, 3], 4)", nullptr, "[1,2,3,4]"},
    {"concat([1, 2, 3], \"hello\")", nullptr, R"([1,2,3,"hello"])"},
    {"concat(\"con\", \"cat\")", R"("concat")", R"("concat")"},
    {"concat(1, \"hello\")", R"("1hello")", R"("1hello")"},
    {"concat(\"he\",\"is\",\"man\")", R"("heisman")", R"("heisman")"},
    {"concat([1, 2, 3], \"hello\", [4, 5, 6])", nullptr, R"([1,2,3,"hello",4,5,6])"},
    {"cos(0)", "1.0", "1"},
    {"cosh(2.3)", "5.037220649268761", "5.037220649268761"},
    {"decode('aGVsbG8=', 'base64')", nullptr, R"("hello")"},
    {"decode('eyJhIjoxfQ==', 'base64').a", nullptr, "1"},
    {"decode('!!!', 'base64')", nullptr, "null"},
    {"encode('hello', 'base64')", nullptr, R"("aGVsbG8=")"},
    {"encode(*, 'base64')", nullptr, R"("eyJhIjoxfQ==")", R"({"a":1})"},
    {"endswith(\"cat\",\"at\")", "true", "true"},
    {"endswith(\"cat\",null)", "", ""},
    {"endswith(123, 23)", "true", "true"},
    {"exp(1)", "2.718281828459045", "2.718281828459045"},
    {"floor(1.2)", "1", "1"},
    {"floor(-1.2)", "-2", "-2"},
    {"get([\"a\", \"b\", \"c\"], 1)", nullptr, R"("b")"},
    {"get({\"a\":\"b\"}, \"a\")", nullptr, R"("b")"},
    // The Guide prints "a" but its table says 0-based, like the array case: index 1 is "b".
    {"get(\"abc\", 1)", R"("b")", R"("b")"},
    {"get(\"abc\", 5)", "", ""},
    {"get(arr, '1')", "20", "20", R"({"arr":[10,20]})"},
    {"get(obj, 1)", "", "", R"({"obj":{"1":2}})"},
    {"md5(\"hello\")", R"("5d41402abc4b2a76b9719d911017c592")", R"("5d41402abc4b2a76b9719d911017c592")"},
    {"sha1(\"hello\")", R"("aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d")", R"("aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d")"},
    {"sha224(\"hello\")", R"("ea09ae9cc6768c50fcee903ed054556e5bfc8347907f12598aa24193")", R"("ea09ae9cc6768c50fcee903ed054556e5bfc8347907f12598aa24193")"},
    {"sha256(\"hello\")", R"("2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")", R"("2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")"},
    {"sha384(\"hello\")", R"("59e1748777448c69de6b800d7a33bbfb9ff1b463e44354c3553bcdb9c666fa90125a3c79f90397bdf5f6a13de828684f")", R"("59e1748777448c69de6b800d7a33bbfb9ff1b463e44354c3553bcdb9c666fa90125a3c79f90397bdf5f6a13de828684f")"},
    {"sha512(\"hello\")", R"("9b71d224bd62f3785d96d46ad3ea3d73319bfbc2890caadae2dff72519673ca72323c3d99ba5c11d7c7acc6e14b8c5da0c4663475c2e5c3adef46f73bcdec043")", R"("9b71d224bd62f3785d96d46ad3ea3d73319bfbc2890caadae2dff72519673ca72323c3d99ba5c11d7c7acc6e14b8c5da0c4663475c2e5c3adef46f73bcdec043")"},
    {"md5(5)", R"("e4da3b7fbbce2345d7772b0674a318d5")", R"("e4da3b7fbbce2345d7772b0674a318d5")"},
    {"indexof(\"abcd\", \"bc\")", nullptr, "1"},
    {"indexof(\"abcd\", \"x\")", nullptr, "-1"},
    {"isNull(5)", "false", "false"},
    {"isNull(Null)", "true", "true"},
    {"isUndefined(5)", nullptr, "false"},
    {"isUndefined(floor([1,2,3]))", nullptr, "true"},
    {"length(\"hi\")", nullptr, "2"},
    {"length(false)", nullptr, "5"},
    {"length('\xe2\x82\xac')", nullptr, "1"},
    {"ln(exp(1))", "1.0", "1"},
    {"log(100)", "2.0", "2"},
    {"lower(\"HELLO\")", R"("hello")", R"("hello")"},
    {"lower([\"HELLO\"])", nullptr, R"("[\"hello\"]")"},
    {"lpad(\"hello\", 2)", R"("  hello")", R"("  hello")"},
    {"lpad(1, 3)", R"("   1")", R"("   1")"},
    {"lpad('a', -5)", R"("a")", R"("a")"},
    {"lpad('a', true)", "", ""},
    {"Ltrim(\" h i \")", R"("h i ")", R"("h i ")"},
    {"mod(8, 3)", "2", "2"},
    {"mod(8.5, 3)", "2.5", "2.5"},
    {"nanvl(8, 3)", "8", "8"},
    {"Nanvl(missing, 3)", "3", "3"},
    {"Nanvl(null, 3)", "3", "3"},
    {"numbytes(\"hi\")", nullptr, "2"},
    {"numbytes(\"\xe2\x82\xac\")", nullptr, "3"},
    {"power(2, 5)", "32.0", "32"},
    {"power('2', 0.5)", "1.4142135623730951", "1.4142135623730951"},
    {"principal()", R"("ba67293af50bf2506f5f93469686da660c7c844e7b3950bfb16813e0d31e9373")", R"("ba67293af50bf2506f5f93469686da660c7c844e7b3950bfb16813e0d31e9373")"},
    {"regexp_matches(\"aaaa\", \"a{2,}\")", "true", "true"},
    {"regexp_matches(\"aaaa\", \"b\")", "false", "false"},
    {"regexp_matches(\"aaaa\", \"(\")", "", ""},
    {"regexp_matches(s, p)", "true", "true", R"({"s":"a1","p":"\\d"})"},
    {"regexp_replace(\"abcd\", \"bc\", \"x\")", R"("axd")", R"("axd")"},
    {"regexp_replace(\"abcd\", \"b(.*)d\", \"$1\")", R"("ac")", R"("ac")"},
    {"regexp_substr(\"hihihello\", \"hi\")", R"("hi")", R"("hi")"},
    {"regexp_substr(\"hihihello\", \"(hi)*\")", R"("hihi")", R"("hihi")"},
    {"remainder(8, 3)", "2", "2"},
    {"replace(\"abcd\", \"bc\", \"x\")", R"("axd")", R"("axd")"},
    {"replace(\"abcdabcd\", \"b\", \"x\")", R"("axcdaxcd")", R"("axcdaxcd")"},
    {"rpad(\"hello\", 2)", R"("hello  ")", R"("hello  ")"},
    {"rpad(1, 3)", R"("1   ")", R"("1   ")"},
    {"Round(1.2)", "1", "1"},
    {"Round(1.5)", "2", "2"},
    {"Round(1.7)", "2", "2"},
    {"Round(-1.1)", "-1", "-1"},
    {"Round(-1.5)", "-2", "-2"},
    {"rtrim(\" h i \")", R"(" h i")", R"(" h i")"},
    {"sign(-7)", "-1", "-1"},
    {"sign(0)", "0", "0"},
    {"sign(13)", "1", "1"},
    {"sign('-2.5')", "-1", "-1"},
    {"sin(0)", "0.0", "0"},
    {"sinh(2.3)", "4.936961805545957", "4.936961805545957"},
    {"substring(\"012345\", 0)", R"("012345")", R"("012345")"},
    {"substring(\"012345\", 2)", R"("2345")", R"("2345")"},
    {"substring(\"012345\", 2.745)", R"("2345")", R"("2345")"},
    {"substring(123, 2)", R"("3")", R"("3")"},
    {"substring(\"012345\", -1)", R"("012345")", R"("012345")"},
    {"substring(true, 1.2)", R"("rue")", R"("rue")"},
    {"substring(false, -2.411E247)", R"("false")", R"("false")"},
    {"substring(\"012345\", 1, 3)", R"("12")", R"("12")"},
    {"substring(\"012345\", -50, 50)", R"("012345")", R"("012345")"},
    {"substring(\"012345\", 3, 1)", R"("")", R"("")"},
    {"sql_version()", R"("2015-10-08")", R"("2016-03-23")"},
    {"sqrt(9)", "3.0", "3"},
    {"sqrt(-1)", "", ""},
    {"startswith(\"ranger\",\"ran\")", "true", "true"},
    {"tan(3)", "-0.1425465430742778", "-0.1425465430742778"},
    {"tanh(2.3)", "0.9800963962661914", "0.9800963962661914"},
    {"timestamp()", "1481825251155", "1481825251155"},
    {"topic()", R"("topic/subtopic")", R"("topic/subtopic")"},
    {"topic(1)", R"("topic")", R"("topic")"},
    {"topic(2)", R"("subtopic")", R"("subtopic")"},
    {"topic(3)", "", ""},
    {"topic(0)", "", ""},
    {"traceid()", R"("12345678-1234-1234-1234-123456789012")", R"("12345678-1234-1234-1234-123456789012")"},
    {"Trim(\" hi \")", R"("hi")", R"("hi")"},
    {"trim(5)", R"("5")", R"("5")"},
    {"trunc(2.3, 0)", "2", "2"},
    {"trunc(2.3123, 2)", "2.31", "2.31"},
    {"trunc(2.888, 2)", "2.88", "2.88"},
    {"trunc(2.00, 5)", "2", "2"},
    {"trunc(7, 2)", "7", "7"},
    {"trunc('x', 2)", "", ""},
    {"upper(\"hello\")", R"("HELLO")", R"("HELLO")"},
    {"upper([\"hello\"])", nullptr, R"("[\"HELLO\"]")"},
    {"parse_time(\"yyyy.MM.dd G 'at' HH:mm:ss z\", 100000000, '-06:00')", nullptr, R"("1970.01.01 AD at 21:46:40 -06:00")"},
    {"parse_time(\"yyyy.MM.dd G 'at' HH:mm:ss z\", 1497028786000)", nullptr, R"("2017.06.09 AD at 17:19:46 UTC")"},
    {"parse_time('yyyy', timestamp(), 'UTC')", nullptr, R"("2016")"},
    {"parse_time('yyyy-MM-dd''T''HH:mm:ss.SSSZZ', 1481825251155, 'UTC+01:00')", nullptr, R"("2016-12-15T19:07:31.155+01:00")"},
    {"parse_time('EEE, d MMM yyyy hh:mm a', 1481825251155)", nullptr, R"("Thu, 15 Dec 2016 06:07 PM")"},
    {"parse_time(\"yyyy.MM.dd G 'at' HH:mm:ss z\", 100000000, 'America/Belize')", nullptr, R"("1970.01.01 AD at 21:46:40 CST")"},
    {"parse_time('yyyy-MM-dd HH:mm z VV', 1499000000000, 'America/Los_Angeles')", nullptr, R"("2017-07-02 05:53 PDT America/Los_Angeles")"},
    {"parse_time('yyyy-MM-dd HH:mm z', 1484000000000, 'America/Los_Angeles')", nullptr, R"("2017-01-09 14:13 PST")"},
    {"parse_time('yyyy', 0, '../../etc/passwd')", nullptr, ""},
    {"parse_time('yyyy', 0, 'No/Such_Zone')", nullptr, ""},
    {"time_to_epoch(\"2020-04-03 09:45:18 UTC+01:00\", \"yyyy-MM-dd HH:mm:ss VV\")", nullptr, "1585903518000"},
    {"time_to_epoch(\"18 December 2015\", \"dd MMMM yyyy\")", nullptr, "1450396800000"},
    {"time_to_epoch(\"2007-12-03 10:15:30.592 UTC\", \"yyyy-MM-dd HH:mm:ss.SSS z\")", nullptr, "1196676930592"},
    {"time_to_epoch(\"2007-12-03 10:15:30.592 America/Los_Angeles\", \"yyyy-MM-dd HH:mm:ss.SSS z\")", nullptr, "1196705730592"},
    {"time_to_epoch(\"2007-07-03 10:15:30.592 America/Los_Angeles\", \"yyyy-MM-dd HH:mm:ss.SSS z\")", nullptr, "1183482930592"},
    {"time_to_epoch(\"1969-12-31\", \"yyyy-MM-dd\")", nullptr, "-86400000"},
    {"time_to_epoch(\"nope\", \"yyyy\")", nullptr, ""},
    {"transform('other', {}, [])", nullptr, ""},
};

const std::vector<expr_case> operator_table = {
    // AND / OR / NOT: Booleans or "true"/"false" strings (any case); otherwise Undefined.
    {"true AND true", "true", "true"},
    {"true AND false", "false", "false"},
    {"'TRUE' AND true", "true", "true"},
    {"'true' AND 'False'", "false", "false"},
    {"1 AND true", "", ""},
    {"'yes' AND true", "", ""},
    {"null AND true", "", ""},
    {"missing AND false", "", ""},
    {"false OR true", "true", "true"},
    {"'false' OR 'FALSE'", "false", "false"},
    {"0 OR true", "", ""},
    {"NOT true", "false", "false"},
    {"NOT 'FALSE'", "true", "true"},
    {"NOT 1", "", ""},
    {"NOT missing", "", ""},
    // > >= < <=: both operands converted to Decimal.
    {"5 > 3", "true", "true"},
    {"3 > 5", "false", "false"},
    {"'5' > 3", "true", "true"},
    {"5.5 >= '5.5'", "true", "true"},
    {"'1E1' > 9", "true", "true"},
    {"'abc' > 3", "", ""},
    {"true > 1", "", ""},
    {"null > 1", "", ""},
    {"missing < 1", "", ""},
    {"2 < 3", "true", "true"},
    {"3 <= 3.0", "true", "true"},
    {"'0x10' < 20", "", ""},
    {"'+1' < 20", "", ""},
    // = and <>: type-aware.
    {"1 = 1", "true", "true"},
    {"1 = 1.0", "true", "true"},
    {"'a' = 'a'", "true", "true"},
    {"'1' = 1", "false", "false"},
    {"'1' <> 1", "true", "true"},
    {"null = null", "true", "true"},
    {"null <> null", "false", "false"},
    {"true = 'true'", "false", "false"},
    {"x = missing", "", "", R"({"x":1})"},
    {"missing <> x", "", "", R"({"x":1})"},
    {"a = b", "true", "true", R"({"a":[1,{"k":2}],"b":[1,{"k":2}]})"},
    {"a = b", "false", "false", R"({"a":[1,2],"b":[2,1]})"},
    {"a <> b", "true", "true", R"({"a":[1,2],"b":[2,1]})"},
    {"o1 = o2", "true", "true", R"({"o1":{"a":1,"b":2},"o2":{"b":2,"a":1}})"},
    {"o1 <> o2", "true", "true", R"({"o1":{"a":1,"b":2},"o2":{"b":3,"a":1}})"},
    // +: String concatenation when either side is a String, else numeric.
    {"'a' + 1", R"("a1")", R"("a1")"},
    {"1 + 'a'", R"("1a")", R"("1a")"},
    {"'1' + 1", R"("11")", R"("11")"},
    {"'a' + true", R"("atrue")", R"("atrue")"},
    {"'a' + null", "", ""},
    {"'a' + missing", "", ""},
    {"1 + 2", "3", "3"},
    {"1 + 2.5", "3.5", "3.5"},
    {"1.5 + 1.5", "3.0", "3"},
    {"true + 1", "", ""},
    {"null + 1", "", ""},
    {"9223372036854775807 + 1", "9223372036854775808.0", "9223372036854775808"},
    // - * / %: Int with Int stays Int; strings convert to Decimal.
    {"5 - 2", "3", "3"},
    {"'5' - 2", "3.0", "3"},
    {"5.5 - 1", "4.5", "4.5"},
    {"'a' - 1", "", ""},
    {"true - 1", "", ""},
    {"3 * 4", "12", "12"},
    {"'3' * 4", "12.0", "12"},
    {"1.5 * 3", "4.5", "4.5"},
    {"7 / 2", "3", "3"},
    {"7.0 / 2", "3.5", "3"},
    {"'7' / 2", "3.5", "3.5"},
    {"7 / 0", "", ""},
    {"7.5 / 0", "", ""},
    {"7 % 3", "1", "1"},
    {"-7 % 3", "-1", "-1"},
    {"'7' % 3", "1.0", "1"},
    {"7.5 % 2", "1.5", "1.5"},
    {"7 % 0", "", ""},
    {"-a", "-2", "-2", R"({"a":2})"},
    {"-'2.5'", "-2.5", "-2.5"},
    {"-true", "", ""},
    {"(1 + 2) * 3", "9", "9"},
    {"1 + 2 * 3", "7", "7"},
    {"2 * 3 > 5 AND NOT 1 = 2", "true", "true"},
};

void check(const expr_case& c) {
  if (c.in_v1) {
    EXPECT_EQ(value_of(c.expr, v1, c.payload), c.in_v1) << "2015-10-08: " << c.expr;
  }
  if (c.in_v2) {
    EXPECT_EQ(value_of(c.expr, v2, c.payload), c.in_v2) << "2016-03-23: " << c.expr;
  }
}

class SqlFunctionExamples : public ::testing::TestWithParam<expr_case> {};
TEST_P(SqlFunctionExamples, MatchTheGuide) { check(GetParam()); }
INSTANTIATE_TEST_SUITE_P(Guide, SqlFunctionExamples, ::testing::ValuesIn(function_examples));

class SqlOperatorTable : public ::testing::TestWithParam<expr_case> {};
TEST_P(SqlOperatorTable, FollowsTheTypeRules) { check(GetParam()); }
INSTANTIATE_TEST_SUITE_P(Guide, SqlOperatorTable, ::testing::ValuesIn(operator_table));

TEST(SqlFunctions, V2OnlyFunctionsDoNotParseUnderV1) {
  for (const char* e : {"decode('a', 'base64')", "encode('a', 'base64')", "indexof('a','b')", "isUndefined(1)",
                        "length('a')", "numbytes('a')", "parse_time('yyyy', 0)", "time_to_epoch('1', 'y')",
                        "transform('enrichArray', {}, [])", "get_thing_shadow('a', 'b')", "cast(1 AS Boolean)"}) {
    EXPECT_FALSE(statement::parse("SELECT " + std::string(e) + " AS r FROM 't'", v1)) << e;
    EXPECT_TRUE(statement::parse("SELECT " + std::string(e) + " AS r FROM 't'", v2)) << e;
  }
}

TEST(SqlFunctions, WrongArgumentCountIsUndefined) {
  EXPECT_EQ(value_of("abs(1, 2)", v2), "");
  EXPECT_EQ(value_of("upper()", v2), "");
  EXPECT_EQ(value_of("timestamp(1)", v2), "");
}

TEST(SqlFunctions, RandomValues) {
  const std::regex uuid("\"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\"");
  auto a = value_of("newuuid()", v1);
  EXPECT_TRUE(std::regex_match(a, uuid)) << a;
  EXPECT_NE(a, value_of("newuuid()", v1));
  auto r = std::stod(value_of("rand()", v1));
  EXPECT_GE(r, 0.0);
  EXPECT_LT(r, 1.0);
}

TEST(SqlFunctions, Md2IsUndefinedWithoutProviderOrCorrect) {
  auto e = run("SELECT md2(\"hello\") AS h FROM 't'", v1, "{}");
  if (e.errors.empty()) {
    EXPECT_EQ(e.payload, R"({"h":"a9046c73e00331af68917d3804f70655"})");
  } else {
    EXPECT_EQ(e.payload, "{}");
  }
}

TEST(SqlFunctions, BasicIngestTopic) {
  // The caller strips $aws/rules/BuildingManager/; topic() sees the rest.
  auto e = run("SELECT topic() AS t, topic(3) AS f FROM 'x'", v1, "{}", "Buildings/Building5/Floor2/Room201/Lights");
  EXPECT_EQ(e.payload, R"({"t":"Buildings/Building5/Floor2/Room201/Lights","f":"Floor2"})");
}

}  // namespace
}  // namespace fleetcore::rules::sql::test
