#include "common/metrics.hpp"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace fleetcore::common {
namespace {

// More threads than owned slots, each claiming one: the first ones own a slot and increment it without
// a locked instruction, the others share the last slot. Nothing is lost either way.
TEST(Counter, ThreadsWithAndWithoutAnOwnSlotLoseNoIncrement) {
  counter c;
  constexpr unsigned threads = k_owned_metrics_slots * 2 + 3;
  constexpr std::uint64_t per_thread = 200'000;
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < threads; ++t)
    pool.emplace_back([&c, t] {
      if (t % 3 != 0) claim_metrics_slot();  // some never claim: they share too
      for (std::uint64_t i = 0; i < per_thread; ++i) c.inc();
      c.inc(t);
    });
  for (auto& t : pool) t.join();
  EXPECT_EQ(c.value(), threads * per_thread + threads * (threads - 1) / 2);
}

TEST(Counter, AThreadKeepsTheSlotItClaimed) {
  std::thread([] {
    claim_metrics_slot();
    const unsigned first = metrics_slot;
    claim_metrics_slot();
    EXPECT_EQ(metrics_slot, first);
  }).join();
}

}  // namespace
}  // namespace fleetcore::common
