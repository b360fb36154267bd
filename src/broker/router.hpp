#pragma once
// The subscription trie. Each worker owns one copy and matches against it with no lock; subscribe and
// unsubscribe are applied to every copy (broker::update_routes) before SUBACK/UNSUBACK is sent, so a
// publish that starts after the acknowledgement sees the change on every worker.
#include "broker/message.hpp"

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace fleetcore::broker {

class session;

struct route_entry {
  std::shared_ptr<session> target;
  subscription_options opts;
  bool shared = false;
};

class router {
 public:
  router();
  ~router();
  router(const router&) = delete;
  router& operator=(const router&) = delete;

  /// Adds, or replaces the options of, `target`'s subscription to `filter` (group "" = not shared);
  /// true if it is new.
  bool add(std::string_view filter, std::string_view group, const std::shared_ptr<session>& target,
           const subscription_options& opts);
  /// Removes it; returns false if it did not exist.
  bool remove(std::string_view filter, std::string_view group, const session* target);

  /// Appends every matching non-shared subscription and, per matching shared group, one member
  /// (round-robin, preferring members that are online). With `groups`, appends beside each entry its
  /// shared group's name ("" if not shared), valid until the trie changes. `skip_peers`: other nodes
  /// (`session::peer`) are neither matched nor picked.
  void match(std::string_view topic, std::vector<route_entry>& out, std::vector<std::string_view>* groups = nullptr,
             bool skip_peers = false);

  std::size_t subscription_count() const noexcept { return count_; }
  /// Drops every subscription (shutdown).
  void clear();

 private:
  struct node;
  struct match_state;
  void match_level(node& n, std::size_t i, match_state& st);
  std::unique_ptr<node> root_;
  std::size_t count_ = 0;
  std::vector<std::string_view> levels_;  // reused by match
};

/// Splits `topic` into its levels.
void split_levels(std::string_view topic, std::vector<std::string_view>& out);

}  // namespace fleetcore::broker
