#pragma once
// List pagination as AWS's list operations do it: a page size member checked against its limit, and
// pages of a sorted key range resumed after the token (the last key of the previous page).
#include "common/aws_api.hpp"
#include "common/json_members.hpp"

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace fleetcore::common {

/// The page size member `key` (maxResults, pageSize): `def` when absent, an InvalidRequestException
/// outside [1, limit].
inline std::optional<aws_error> page_size(const boost::json::object& in, std::string_view key, std::int64_t limit,
                                          std::int64_t def, std::int64_t& out) {
  out = def;
  auto v = int_member(in, key);
  if (!v) return std::nullopt;
  if (*v < 1 || *v > limit)
    return aws_error{"InvalidRequestException", 400, std::string(key) + " must be between 1 and " + std::to_string(limit)};
  out = *v;
  return std::nullopt;
}

/// At most `max` of the sorted `keys` after `token`; `next` is set when more remain.
inline std::vector<std::string> page_after(const std::vector<std::string>& keys, const std::optional<std::string>& token,
                                           std::int64_t max, std::optional<std::string>& next) {
  auto it = token ? std::upper_bound(keys.begin(), keys.end(), *token) : keys.begin();
  std::vector<std::string> out;
  for (; it != keys.end() && static_cast<std::int64_t>(out.size()) < max; ++it) out.push_back(*it);
  if (it != keys.end() && !out.empty()) next = out.back();
  return out;
}

}  // namespace fleetcore::common
