#include "broker/retained.hpp"

#include "mqtt/topic.hpp"

namespace fleetcore::broker {

int retained_store::set(const message_ptr& m) {
  std::lock_guard lock(mutex_);
  if (m->payload.empty()) return messages_.erase(m->topic) ? -1 : 0;
  auto [it, inserted] = messages_.insert_or_assign(m->topic, m);
  return inserted ? 1 : 0;
}

std::vector<message_ptr> retained_store::match(std::string_view filter, std::int64_t now_wall_ms) const {
  std::vector<message_ptr> out;
  auto live = [&](const message_ptr& m) { return m->expiry_at_ms == 0 || m->expiry_at_ms > now_wall_ms; };
  std::lock_guard lock(mutex_);
  if (filter.find_first_of("+#") == std::string_view::npos) {
    if (auto it = messages_.find(filter); it != messages_.end() && live(it->second)) out.push_back(it->second);
    return out;
  }
  // Only topics sharing the filter's literal prefix can match.
  std::string_view prefix = filter.substr(0, filter.find_first_of("+#"));
  for (auto it = messages_.lower_bound(prefix); it != messages_.end() && it->first.starts_with(prefix); ++it)
    if (mqtt::topic_matches(filter, it->first) && live(it->second)) out.push_back(it->second);
  return out;
}

std::size_t retained_store::size() const {
  std::lock_guard lock(mutex_);
  return messages_.size();
}

}  // namespace fleetcore::broker
