#pragma once
// Token buckets that admit attempts (connections, bootstrap requests): one for every source together
// and one per source address, refilled on the steady clock.
#include "common/clock.hpp"

#include <chrono>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace fleetcore::common {

/// Admits an attempt when both its source's bucket and the global one hold a token, and takes one
/// from each. A source is an IPv4 address, or an IPv6 address by its /64 (a host has a whole /64 to
/// pick from). A bucket with a rate of 0 is off (admits everything). The per-source table is bounded:
/// full buckets are forgotten (at most one sweep a second), and while it is still full a new source
/// waits. Thread-safe.
class rate_limiter {
 public:
  struct limits {
    double per_address_per_s = 0;  // refill of one source's bucket; 0 = no per-source limit
    double per_address_burst = 0;  // its size (at least 1 when on)
    double global_per_s = 0;       // refill of the bucket of all sources; 0 = no global limit
    double global_burst = 0;
  };
  enum class verdict { admitted, global, per_address };

  rate_limiter(const clock& c, limits l, std::size_t max_sources = 100'000);

  /// `source`: an IP address, or an endpoint "1.2.3.4:5" / "[::1]:5" (the port is ignored).
  verdict admit(std::string_view source);
  /// The bucket `source` counts in: "1.2.3.4", "2001:db8:0:1::/64" (IPv4-mapped IPv6 as IPv4).
  static std::string source_key(std::string_view source);

 private:
  struct bucket {
    double tokens = 0;
    clock::time_point at{};
  };
  double refilled(const bucket& b, double rate, double burst, clock::time_point now) const;

  const clock& clock_;
  limits limits_;
  std::size_t max_sources_;
  std::mutex mutex_;
  std::unordered_map<std::string, bucket> sources_;
  bucket global_;
  clock::time_point last_sweep_{};
};

}  // namespace fleetcore::common
