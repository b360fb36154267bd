#include "common/metrics.hpp"

#include <fmt/format.h>

#include <map>

namespace fleetcore::common {

void claim_metrics_slot() noexcept {
  static std::atomic<unsigned> next{0};
  if (metrics_slot != k_owned_metrics_slots) return;               // has one
  if (next.load(std::memory_order_relaxed) >= k_owned_metrics_slots) return;  // none left (and no wrap-around)
  if (auto i = next.fetch_add(1, std::memory_order_relaxed); i < k_owned_metrics_slots) metrics_slot = i;
}

void registry::add(const counter& c, std::string name, std::string labels, std::string help) {
  std::lock_guard lock(mutex_);
  metrics_.push_back({std::move(name), std::move(labels), std::move(help), metric_kind::counter,
                      [&c] { return static_cast<double>(c.value()); }, {}});
}

void registry::add(const gauge& g, std::string name, std::string labels, std::string help) {
  std::lock_guard lock(mutex_);
  metrics_.push_back({std::move(name), std::move(labels), std::move(help), metric_kind::gauge,
                      [&g] { return static_cast<double>(g.value()); }, {}});
}

void registry::add_gauge_fn(std::function<double()> fn, std::string name, std::string labels,
                            std::string help) {
  std::lock_guard lock(mutex_);
  metrics_.push_back(
      {std::move(name), std::move(labels), std::move(help), metric_kind::gauge, std::move(fn), {}});
}

void registry::add_samples_fn(std::function<std::vector<std::pair<std::string, double>>()> fn, std::string name,
                              metric_kind kind, std::string help) {
  std::lock_guard lock(mutex_);
  metrics_.push_back({std::move(name), {}, std::move(help), kind, nullptr, std::move(fn)});
}

std::string registry::render() const {
  std::lock_guard lock(mutex_);
  // Families keep their first registration's position; samples of a family are printed together.
  std::vector<std::string> order;
  std::map<std::string, std::vector<const metric_desc*>> families;
  for (const auto& m : metrics_) {
    auto [it, inserted] = families.try_emplace(m.name);
    if (inserted) order.push_back(m.name);
    it->second.push_back(&m);
  }
  std::string out;
  for (const auto& name : order) {
    const auto& samples = families[name];
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, samples.front()->help, name,
                       samples.front()->kind == metric_kind::counter ? "counter" : "gauge");
    for (const auto* m : samples) {
      if (m->read_samples) {
        for (const auto& [labels, value] : m->read_samples())
          out += labels.empty() ? fmt::format("{} {}\n", name, value) : fmt::format("{}{{{}}} {}\n", name, labels, value);
        continue;
      }
      double v = m->read();
      if (m->labels.empty())
        out += fmt::format("{} {}\n", name, v);
      else
        out += fmt::format("{}{{{}}} {}\n", name, m->labels, v);
    }
  }
  return out;
}

}  // namespace fleetcore::common
