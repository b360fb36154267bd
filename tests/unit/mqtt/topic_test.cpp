#include "mqtt/topic.hpp"

#include <gtest/gtest.h>

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
