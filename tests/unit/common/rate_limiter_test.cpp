#include "common/rate_limiter.hpp"

#include <gtest/gtest.h>

namespace fleetcore::common {
namespace {

using namespace std::chrono_literals;
using verdict = rate_limiter::verdict;

TEST(RateLimiter, OffAdmitsEverything) {
  manual_clock clock;
  rate_limiter r(clock, {});
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(r.admit("10.0.0.1"), verdict::admitted);
}

TEST(RateLimiter, PerSourceBucketsRefillAndDoNotHoldOthersBack) {
  manual_clock clock;
  rate_limiter r(clock, {.per_address_per_s = 2, .per_address_burst = 2});
  EXPECT_EQ(r.admit("10.0.0.1:4000"), verdict::admitted);
  EXPECT_EQ(r.admit("10.0.0.1:4001"), verdict::admitted);  // the port does not make another source
  EXPECT_EQ(r.admit("10.0.0.1"), verdict::per_address);
  EXPECT_EQ(r.admit("10.0.0.2:4000"), verdict::admitted);
  clock.advance(500ms);  // one token back
  EXPECT_EQ(r.admit("10.0.0.1"), verdict::admitted);
  EXPECT_EQ(r.admit("10.0.0.1"), verdict::per_address);
}

TEST(RateLimiter, IPv6SourcesCountByTheirSlash64AndMappedIPv4AsIPv4) {
  EXPECT_EQ(rate_limiter::source_key("[2001:db8:0:1::5]:8883"), "20010db800000001::/64");
  EXPECT_EQ(rate_limiter::source_key("2001:db8:0:1:ffff::9"), "20010db800000001::/64");
  EXPECT_EQ(rate_limiter::source_key("[::ffff:10.1.2.3]:1"), "10.1.2.3");
  EXPECT_EQ(rate_limiter::source_key("10.1.2.3:1883"), "10.1.2.3");
  manual_clock clock;
  rate_limiter r(clock, {.per_address_per_s = 1, .per_address_burst = 1});
  EXPECT_EQ(r.admit("[2001:db8::1]:1"), verdict::admitted);
  EXPECT_EQ(r.admit("[2001:db8::2]:1"), verdict::per_address);
  EXPECT_EQ(r.admit("[2001:db8:0:1::2]:1"), verdict::admitted);
}

TEST(RateLimiter, GlobalBucketSpansSourcesAndARefusalCostsNothing) {
  manual_clock clock;
  rate_limiter r(clock, {.per_address_per_s = 1, .per_address_burst = 1, .global_per_s = 10, .global_burst = 2});
  EXPECT_EQ(r.admit("10.0.0.1"), verdict::admitted);
  EXPECT_EQ(r.admit("10.0.0.2"), verdict::admitted);
  EXPECT_EQ(r.admit("10.0.0.3"), verdict::global);
  clock.advance(100ms);  // one global token; 10.0.0.3's own bucket was not spent by its refusal
  EXPECT_EQ(r.admit("10.0.0.3"), verdict::admitted);
}

TEST(RateLimiter, TheSourceTableIsBounded) {
  manual_clock clock;
  rate_limiter r(clock, {.per_address_per_s = 1, .per_address_burst = 1}, 2);
  EXPECT_EQ(r.admit("10.0.0.1"), verdict::admitted);
  EXPECT_EQ(r.admit("10.0.0.2"), verdict::admitted);
  EXPECT_EQ(r.admit("10.0.0.3"), verdict::per_address);  // full of sources still counting
  clock.advance(1s);                                      // both refilled: forgotten at the next sweep
  EXPECT_EQ(r.admit("10.0.0.3"), verdict::admitted);
}

}  // namespace
}  // namespace fleetcore::common
