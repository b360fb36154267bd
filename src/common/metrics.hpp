#pragma once
// Metrics: counters are per worker (one cache line per slot, summed on scrape), gauges are single
// atomics. Each module declares its metrics in one struct with name, labels and help text and registers
// them with the process registry, which renders the Prometheus text exposition format.
#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

namespace fleetcore::common {

/// Counter slots: the first `k_owned_metrics_slots` belong to one thread each (claim_metrics_slot), the
/// last one is shared by every other thread.
inline constexpr unsigned k_owned_metrics_slots = 15;
/// The calling thread's counter slot: the shared one unless it claimed its own.
inline thread_local unsigned metrics_slot = k_owned_metrics_slots;
/// Gives the calling thread a slot of its own while one is left (the workers: their counters are the
/// hot ones); otherwise it keeps the shared slot. For the life of the process.
void claim_metrics_slot() noexcept;

class counter {
 public:
  void inc(std::uint64_t n = 1) noexcept {
    auto& v = slots_[metrics_slot].v;
    if (metrics_slot < k_owned_metrics_slots)  // its only writer: no locked instruction
      v.store(v.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    else
      v.fetch_add(n, std::memory_order_relaxed);
  }
  std::uint64_t value() const noexcept {
    std::uint64_t sum = 0;
    for (const auto& s : slots_) sum += s.v.load(std::memory_order_relaxed);
    return sum;
  }

 private:
  struct alignas(64) slot {
    std::atomic<std::uint64_t> v{0};
  };
  std::array<slot, k_owned_metrics_slots + 1> slots_{};
};

class gauge {
 public:
  void add(std::int64_t n = 1) noexcept { v_.fetch_add(n, std::memory_order_relaxed); }
  void sub(std::int64_t n = 1) noexcept { v_.fetch_sub(n, std::memory_order_relaxed); }
  void set(std::int64_t n) noexcept { v_.store(n, std::memory_order_relaxed); }
  std::int64_t value() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::int64_t> v_{0};
};

enum class metric_kind { counter, gauge };

/// One exported sample: family name (`fleetcore_...`), optional label set (`qos="1"`), help text.
struct metric_desc {
  std::string name;
  std::string labels;
  std::string help;
  metric_kind kind;
  std::function<double()> read;
  /// A family whose label sets change at run time (one sample per rule...): read instead of `read`.
  std::function<std::vector<std::pair<std::string, double>>()> read_samples;
};

/// Process-wide list of metrics. Registration happens at start-up; rendering may run on any thread.
class registry {
 public:
  void add(const counter& c, std::string name, std::string labels, std::string help);
  void add(const gauge& g, std::string name, std::string labels, std::string help);
  void add_gauge_fn(std::function<double()> fn, std::string name, std::string labels, std::string help);
  /// A family whose samples (label set, value) are read at each render: per-rule metrics.
  void add_samples_fn(std::function<std::vector<std::pair<std::string, double>>()> fn, std::string name,
                      metric_kind kind, std::string help);

  /// Prometheus text exposition format 0.0.4.
  std::string render() const;

 private:
  mutable std::mutex mutex_;
  std::vector<metric_desc> metrics_;
};

}  // namespace fleetcore::common
