#pragma once
#include <chrono>
#include <cstdint>

namespace fleetcore::common {

/// Time source for everything that expires: keepalives, message expiry, will delay, session expiry.
/// Tests inject a manual clock; production uses `system_clock_source`.
class clock {
 public:
  using time_point = std::chrono::steady_clock::time_point;
  virtual ~clock() = default;
  virtual time_point now() const = 0;
  /// Wall-clock milliseconds since the Unix epoch; used for deadlines that must survive a restart.
  virtual std::int64_t wall_ms() const = 0;
};

class system_clock_source final : public clock {
 public:
  time_point now() const override { return std::chrono::steady_clock::now(); }
  std::int64_t wall_ms() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

class manual_clock final : public clock {
 public:
  time_point now() const override { return now_; }
  std::int64_t wall_ms() const override { return wall_ms_; }
  void advance(std::chrono::milliseconds d) {
    now_ += d;
    wall_ms_ += d.count();
  }

 private:
  time_point now_{std::chrono::hours(1)};
  std::int64_t wall_ms_ = 1'700'000'000'000;
};

}  // namespace fleetcore::common
