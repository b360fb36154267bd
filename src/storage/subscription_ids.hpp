#pragma once
// How both backends keep a queued message's subscription identifiers: a comma-separated list.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace fleetcore::storage::detail {

inline std::string join_ids(const std::vector<std::uint32_t>& ids) {
  std::string s;
  for (auto id : ids) {
    if (!s.empty()) s += ',';
    s += std::to_string(id);
  }
  return s;
}

inline std::vector<std::uint32_t> split_ids(std::string_view s) {
  std::vector<std::uint32_t> ids;
  std::uint32_t v = 0;
  bool any = false;
  for (char c : s) {
    if (c == ',') {
      if (any) ids.push_back(v);
      v = 0;
      any = false;
    } else if (c >= '0' && c <= '9') {
      v = v * 10 + static_cast<std::uint32_t>(c - '0');
      any = true;
    }
  }
  if (any) ids.push_back(v);
  return ids;
}

}  // namespace fleetcore::storage::detail
