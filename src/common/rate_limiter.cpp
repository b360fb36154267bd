#include "common/rate_limiter.hpp"

#include "common/hex.hpp"

#include <boost/asio/ip/address.hpp>

#include <algorithm>

namespace fleetcore::common {

rate_limiter::rate_limiter(const clock& c, limits l, std::size_t max_sources)
    : clock_(c), limits_(l), max_sources_(max_sources), global_{std::max(1.0, l.global_burst), c.now()} {
  limits_.per_address_burst = std::max(1.0, limits_.per_address_burst);
  limits_.global_burst = std::max(1.0, limits_.global_burst);
}

std::string rate_limiter::source_key(std::string_view source) {
  std::string text(source);
  boost::system::error_code ec;
  auto address = boost::asio::ip::make_address(text, ec);
  if (ec) {  // an endpoint: drop the port
    if (!text.empty() && text.front() == '[') {
      text = text.substr(1, text.find(']') - 1);
    } else if (auto colon = text.rfind(':'); colon != std::string::npos) {
      text.resize(colon);
    }
    address = boost::asio::ip::make_address(text, ec);
    if (ec) return text;  // not an address: counted as given
  }
  if (address.is_v6() && address.to_v6().is_v4_mapped())
    return boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, address.to_v6()).to_string();
  if (address.is_v6()) {
    auto bytes = address.to_v6().to_bytes();
    return common::hex(bytes.data(), 8) + "::/64";
  }
  return address.to_string();
}

double rate_limiter::refilled(const bucket& b, double rate, double burst, clock::time_point now) const {
  const double elapsed = std::max(0.0, std::chrono::duration<double>(now - b.at).count());
  return std::min(burst, b.tokens + rate * elapsed);
}

rate_limiter::verdict rate_limiter::admit(std::string_view source) {
  const bool per_source = limits_.per_address_per_s > 0, global = limits_.global_per_s > 0;
  if (!per_source && !global) return verdict::admitted;
  const std::string key = per_source ? source_key(source) : std::string();
  std::lock_guard lock(mutex_);
  const auto now = clock_.now();  // under the lock: a bucket's time never goes back
  if (global) {
    global_.tokens = refilled(global_, limits_.global_per_s, limits_.global_burst, now);
    global_.at = now;
  }
  bucket* mine = nullptr;
  if (per_source) {
    if (sources_.size() >= max_sources_ && !sources_.contains(key)) {
      if (now - last_sweep_ >= std::chrono::seconds(1)) {
        last_sweep_ = now;
        std::erase_if(sources_, [&](const auto& kv) {
          return refilled(kv.second, limits_.per_address_per_s, limits_.per_address_burst, now) >=
                 limits_.per_address_burst;
        });
      }
      if (sources_.size() >= max_sources_) return verdict::per_address;
    }
    mine = &sources_.try_emplace(key, bucket{limits_.per_address_burst, now}).first->second;
    mine->tokens = refilled(*mine, limits_.per_address_per_s, limits_.per_address_burst, now);
    mine->at = now;
    if (mine->tokens < 1) return verdict::per_address;
  }
  if (global && global_.tokens < 1) return verdict::global;
  if (mine) mine->tokens -= 1;
  if (global) global_.tokens -= 1;
  return verdict::admitted;
}

}  // namespace fleetcore::common
