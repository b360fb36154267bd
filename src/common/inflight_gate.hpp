#pragma once
// The requests one MQTT session has in a service (shadow, jobs, streams, fleet provisioning).
//
// A request is admitted on the publisher's worker, up to a limit per session (its incarnation), so a
// flood is refused at once and queues nothing. It counts until its answers are queued for the session:
// `release` runs through `behind_answers`, which the server sets to run on the session's broker worker
// after the answers already posted there. So all the requests of one read of the connection are
// admitted or refused before any of them is released, whatever the threads' speeds.
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <unordered_map>

namespace fleetcore::common {

class inflight_gate {
 public:
  using behind_fn = std::function<void(const std::string& client_id, std::uint64_t session, std::function<void()> then)>;

  explicit inflight_gate(int limit) : limit_(limit) {}

  /// Counts one more request of `session` if it has fewer than the limit in flight. Any thread.
  bool admit(std::uint64_t session) {
    std::lock_guard lock(mutex_);
    int& n = counts_[session];
    if (n < limit_) return ++n, true;
    if (n == 0) counts_.erase(session);
    return false;
  }

  /// Ends one admitted request of `session` (of `client_id`), once its answers are queued. Any thread.
  void release(const std::string& client_id, std::uint64_t session) {
    if (!behind_answers) return done(session);
    behind_answers(client_id, session, [this, session] { done(session); });
  }

  /// Runs `then` behind the answers already posted to the session; unset, release is immediate.
  behind_fn behind_answers;

 private:
  void done(std::uint64_t session) {
    std::lock_guard lock(mutex_);
    if (auto it = counts_.find(session); it != counts_.end() && --it->second <= 0) counts_.erase(it);
  }

  const int limit_;
  std::mutex mutex_;
  std::unordered_map<std::uint64_t, int> counts_;  // session incarnation -> requests in flight
};

}  // namespace fleetcore::common
