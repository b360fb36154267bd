#include "common/aws_names.hpp"
#include "common/aws_paging.hpp"

#include <gtest/gtest.h>

namespace fleetcore::common {
namespace {

TEST(AwsNames, ThingAndShadowNameRules) {
  EXPECT_TRUE(valid_thing_name("dev-1:a_b"));
  EXPECT_FALSE(valid_thing_name(""));
  EXPECT_FALSE(valid_thing_name("a/b"));
  EXPECT_FALSE(valid_thing_name("a+b"));
  EXPECT_TRUE(valid_thing_name(std::string(128, 'x')));
  EXPECT_FALSE(valid_thing_name(std::string(129, 'x')));
  EXPECT_TRUE(valid_shadow_name(std::string(64, 'x')));
  EXPECT_FALSE(valid_shadow_name(std::string(65, 'x')));
}

TEST(AwsNames, ThingTopicGrammar) {
  auto t = parse_thing_topic("$aws/things/dev-1/shadow/name/cfg/update");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->thing, "dev-1");
  EXPECT_EQ(t->service, "shadow");
  EXPECT_EQ(t->rest, "name/cfg/update");
  auto j = parse_thing_topic("$aws/things/d/jobs");
  ASSERT_TRUE(j);
  EXPECT_EQ(j->service, "jobs");
  EXPECT_EQ(j->rest, "");
  EXPECT_FALSE(parse_thing_topic("$aws/things/d"));
  EXPECT_FALSE(parse_thing_topic("$aws/things/bad name/shadow/get"));
  EXPECT_FALSE(parse_thing_topic("$aws/things//shadow/get"));
  EXPECT_FALSE(parse_thing_topic("things/d/shadow/get"));
}

TEST(AwsPaging, PageSizeDefaultsAndLimits) {
  std::int64_t n = 0;
  EXPECT_FALSE(page_size(boost::json::object{}, "maxResults", 250, 50, n));
  EXPECT_EQ(n, 50);
  EXPECT_FALSE(page_size(boost::json::object{{"maxResults", 250}}, "maxResults", 250, 50, n));
  EXPECT_EQ(n, 250);
  auto e = page_size(boost::json::object{{"maxResults", 251}}, "maxResults", 250, 50, n);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->code, "InvalidRequestException");
  EXPECT_EQ(e->status, 400u);
  EXPECT_TRUE(page_size(boost::json::object{{"maxResults", 0}}, "maxResults", 250, 50, n));
}

TEST(AwsPaging, PagesResumeAfterTheToken) {
  std::vector<std::string> keys{"a", "b", "c", "d", "e"};
  std::optional<std::string> next;
  auto p1 = page_after(keys, std::nullopt, 2, next);
  EXPECT_EQ(p1, (std::vector<std::string>{"a", "b"}));
  ASSERT_EQ(next, "b");
  std::optional<std::string> next2;
  auto p2 = page_after(keys, next, 2, next2);
  EXPECT_EQ(p2, (std::vector<std::string>{"c", "d"}));
  std::optional<std::string> next3;
  auto p3 = page_after(keys, next2, 2, next3);
  EXPECT_EQ(p3, (std::vector<std::string>{"e"}));
  EXPECT_FALSE(next3);  // the last page carries no token
}

}  // namespace
}  // namespace fleetcore::common
