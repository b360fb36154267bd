#include "mqtt/topic.hpp"

#include <gtest/gtest.h>

#include <string>

namespace fleetcore::mqtt {
namespace {

TEST(topic, filter_validation) {
  for (auto f : {"a", "a/b", "+", "#", "a/+/c", "a/#", "+/+", "/", "a//b", "$SYS/#"})
    EXPECT_TRUE(valid_topic_filter(f)) << f;
  for (auto f : {"", "a#", "a/#/b", "a+", "a/b+/c", "##", "#/a"})
    EXPECT_FALSE(valid_topic_filter(f)) << f;
}

TEST(topic, name_validation) {
  EXPECT_TRUE(valid_topic_name("a/b"));
  EXPECT_TRUE(valid_topic_name("/"));
  EXPECT_FALSE(valid_topic_name(""));
  EXPECT_FALSE(valid_topic_name("a/+"));
  EXPECT_FALSE(valid_topic_name("#"));
}

TEST(topic, matching) {
  struct c {
    const char* filter;
    const char* topic;
    bool match;
  };
  for (auto [f, t, m] : std::initializer_list<c>{
           {"a/b", "a/b", true},         {"a/b", "a/c", false},     {"a/+", "a/b", true},
           {"a/+", "a/b/c", false},      {"a/#", "a", true},        {"a/#", "a/b/c", true},
           {"#", "a/b", true},           {"+/+", "/b", true},       {"+", "/b", false},
           {"a/+/c", "a//c", true},      {"#", "$SYS/x", false},    {"+/x", "$SYS/x", false},
           {"$SYS/#", "$SYS/x", true},   {"a/b/#", "a/b", true},    {"a/b", "a/b/c", false},
           {"sport/+", "sport/", true},  {"+/+/#", "a", false},     {"+/#", "a", true},
       })
    EXPECT_EQ(topic_matches(f, t), m) << f << " vs " << t;
}

TEST(topic, shared_filters) {
  auto s = parse_shared("$share/g1/a/+/c");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->group, "g1");
  EXPECT_EQ(s->filter, "a/+/c");
  EXPECT_FALSE(parse_shared("a/b"));
  EXPECT_TRUE(parse_shared("$share/g")->group.empty());
  EXPECT_TRUE(parse_shared("$share//a")->group.empty());
  EXPECT_TRUE(parse_shared("$share/g+/a")->group.empty());
}

TEST(topic, levels) {
  EXPECT_EQ(topic_levels("a"), 1u);
  EXPECT_EQ(topic_levels("a/b/"), 3u);
}

}  // namespace
}  // namespace fleetcore::mqtt

TEST(topic, publish_rules_for_every_origin) {
  using fleetcore::mqtt::check_topic_name;
  using fleetcore::mqtt::topic_name_error;
  EXPECT_EQ(check_topic_name("a/b", 1024, 16), topic_name_error::none);
  EXPECT_EQ(check_topic_name("caf\xc3\xa9/\xe2\x82\xac", 1024, 16), topic_name_error::none);
  EXPECT_EQ(check_topic_name("", 1024, 16), topic_name_error::invalid);
  EXPECT_EQ(check_topic_name("a/+", 1024, 16), topic_name_error::invalid);
  EXPECT_EQ(check_topic_name("a/#", 1024, 16), topic_name_error::invalid);
  EXPECT_EQ(check_topic_name("\xff", 1024, 16), topic_name_error::invalid);
  EXPECT_EQ(check_topic_name(std::string_view("a\0b", 3), 1024, 16), topic_name_error::invalid);
  EXPECT_EQ(check_topic_name("a\nb", 1024, 16), topic_name_error::invalid);
  EXPECT_EQ(check_topic_name("a\x7f", 1024, 16), topic_name_error::invalid);
  EXPECT_EQ(check_topic_name("a\xc2\x85", 1024, 16), topic_name_error::invalid);  // U+0085
  EXPECT_EQ(check_topic_name("a\xc2\xa0", 1024, 16), topic_name_error::none);     // U+00A0
  EXPECT_EQ(check_topic_name(std::string(1025, 'a'), 1024, 16), topic_name_error::too_long);
  EXPECT_EQ(check_topic_name(std::string(1024, 'a'), 1024, 16), topic_name_error::none);
  EXPECT_EQ(check_topic_name("1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16", 1024, 16), topic_name_error::none);
  EXPECT_EQ(check_topic_name("1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16/17", 1024, 16), topic_name_error::too_deep);
}
