#include "rules/filter_index.hpp"

#include "mqtt/topic.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

namespace fleetcore::rules {
namespace {

std::vector<std::uint32_t> matches(const filter_index& idx, std::string_view topic) {
  std::vector<std::uint32_t> out;
  idx.match(topic, [&](std::uint32_t id) { out.push_back(id); });
  std::sort(out.begin(), out.end());
  return out;
}

TEST(RulesFilterIndex, MatchesAsMqttFiltersDo) {
  filter_index idx;
  idx.add("sensors/+/data", 0);
  idx.add("sensors/#", 1);
  idx.add("#", 2);
  idx.add("$aws/things/+/shadow/update/accepted", 3);
  idx.add("a", 4);
  EXPECT_EQ(matches(idx, "sensors/d1/data"), (std::vector<std::uint32_t>{0, 1, 2}));
  EXPECT_EQ(matches(idx, "sensors"), (std::vector<std::uint32_t>{1, 2}));  // "x/#" matches "x"
  EXPECT_EQ(matches(idx, "$aws/things/t/shadow/update/accepted"), (std::vector<std::uint32_t>{3}));  // "#" skips $
  EXPECT_EQ(matches(idx, "a"), (std::vector<std::uint32_t>{2, 4}));
  EXPECT_EQ(matches(idx, "a/b"), (std::vector<std::uint32_t>{2}));
}

// The index agrees with mqtt::topic_matches on random filters and topics.
TEST(RulesFilterIndex, AgreesWithTopicMatches) {
  std::mt19937 rng(7);
  const char* levels[] = {"a", "b", "$x", "", "+", "#"};
  auto random_filter = [&] {
    std::string f;
    int n = 1 + static_cast<int>(rng() % 4);
    for (int i = 0; i < n; ++i) {
      std::string l = levels[rng() % 6];
      if (l == "$x" && i > 0) l = "c";
      if (l == "#" && i != n - 1) l = "+";
      f += (i ? "/" : "") + l;
    }
    return f;
  };
  auto random_topic = [&] {
    std::string t;
    int n = 1 + static_cast<int>(rng() % 4);
    for (int i = 0; i < n; ++i) {
      std::string l = levels[rng() % 4];
      if (l == "$x" && i > 0) l = "c";
      t += (i ? "/" : "") + l;
    }
    return t;
  };
  for (int round = 0; round < 200; ++round) {
    filter_index idx;
    std::vector<std::string> filters;
    for (std::uint32_t i = 0; i < 8; ++i) {
      std::string f;
      do f = random_filter();
      while (!mqtt::valid_topic_filter(f));
      filters.push_back(f);
      idx.add(filters.back(), i);
    }
    for (int k = 0; k < 20; ++k) {
      auto topic = random_topic();
      if (!mqtt::valid_topic_name(topic)) continue;
      std::vector<std::uint32_t> expected;
      for (std::uint32_t i = 0; i < filters.size(); ++i)
        if (mqtt::topic_matches(filters[i], topic)) expected.push_back(i);
      EXPECT_EQ(matches(idx, topic), expected) << "topic " << topic;
    }
  }
}

}  // namespace
}  // namespace fleetcore::rules
