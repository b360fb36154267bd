#pragma once
#include "broker/message.hpp"

#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace fleetcore::broker {

/// Retained messages by topic. Touched only by retained publishes and new subscriptions, never by
/// ordinary publishes, so one mutex suffices.
class retained_store {
 public:
  /// Sets (non-empty payload) or clears (empty payload) the retained message of `m->topic`. Returns
  /// the change in count (+1, 0 or -1).
  int set(const message_ptr& m);
  /// Messages whose topic matches `filter`, skipping expired ones.
  std::vector<message_ptr> match(std::string_view filter, std::int64_t now_wall_ms) const;
  std::size_t size() const;

 private:
  mutable std::mutex mutex_;
  std::map<std::string, message_ptr, std::less<>> messages_;
};

}  // namespace fleetcore::broker
