#include "common/inflight_gate.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace fleetcore::common {
namespace {

TEST(InflightGate, AdmitsUpToTheLimitPerSession) {
  inflight_gate g(2);
  EXPECT_TRUE(g.admit(7));
  EXPECT_TRUE(g.admit(7));
  EXPECT_FALSE(g.admit(7));
  EXPECT_TRUE(g.admit(8));  // another session has its own count
  g.release("c7", 7);
  EXPECT_TRUE(g.admit(7));
  EXPECT_FALSE(g.admit(7));
}

TEST(InflightGate, ReleaseWaitsBehindTheAnswers) {
  // The server runs a release on the session's worker after the answers posted there: until that
  // worker gets to it, the request still counts.
  inflight_gate g(1);
  std::vector<std::function<void()>> worker;
  std::vector<std::pair<std::string, std::uint64_t>> seen;
  g.behind_answers = [&](const std::string& client, std::uint64_t session, std::function<void()> then) {
    seen.emplace_back(client, session);
    worker.push_back(std::move(then));
  };
  ASSERT_TRUE(g.admit(3));
  g.release("dev-3", 3);
  EXPECT_EQ(seen, (std::vector<std::pair<std::string, std::uint64_t>>{{"dev-3", 3}}));
  EXPECT_FALSE(g.admit(3));
  worker.front()();
  EXPECT_TRUE(g.admit(3));
}

TEST(InflightGate, AZeroLimitRefusesEverything) {
  inflight_gate g(0);
  for (std::uint64_t s = 1; s <= 100; ++s) EXPECT_FALSE(g.admit(s));
  g.release("nobody", 5);  // never admitted: no count goes below zero
  EXPECT_FALSE(g.admit(5));
}

}  // namespace
}  // namespace fleetcore::common
