#include "rules/sql/time_zone.hpp"

#include "rules/sql/time_format.hpp"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

namespace fleetcore::rules::sql::detail {
namespace {

constexpr const char* zoneinfo_dir = "/usr/share/zoneinfo/";

struct local_type {
  int offset;
  std::string abbr;
};

struct region {
  std::vector<std::int64_t> transitions;  // UTC seconds
  std::vector<std::uint8_t> types;        // type index in effect from transitions[i]
  std::vector<local_type> local_types;
  std::size_t initial = 0;                // type before the first transition
};

std::int64_t be(const unsigned char* p, int bytes) {
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | p[i];
  if (bytes == 4) return static_cast<std::int32_t>(static_cast<std::uint32_t>(v));
  return static_cast<std::int64_t>(v);
}

// Reads a TZif file (RFC 8536), version 2+ data block preferred.
std::unique_ptr<region> read_tzif(const std::string& bytes) {
  auto header = [&](std::size_t at, std::size_t counts[6]) {
    if (bytes.size() < at + 44 || bytes.compare(at, 4, "TZif") != 0) return false;
    const auto* p = reinterpret_cast<const unsigned char*>(bytes.data() + at + 20);
    for (int i = 0; i < 6; ++i) counts[i] = static_cast<std::size_t>(be(p + 4 * i, 4));
    return true;
  };
  std::size_t c[6];  // isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt
  if (!header(0, c)) return nullptr;
  std::size_t at = 44;
  int tbytes = 4;
  if (bytes[4] >= '2') {
    at += c[3] * 4 + c[3] + c[4] * 6 + c[5] + c[2] * 8 + c[1] + c[0];
    if (!header(at, c)) return nullptr;
    at += 44;
    tbytes = 8;
  }
  const std::size_t need = c[3] * static_cast<std::size_t>(tbytes) + c[3] + c[4] * 6 + c[5];
  if (c[4] == 0 || c[4] > 256 || bytes.size() < at + need) return nullptr;
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data() + at);
  auto r = std::make_unique<region>();
  for (std::size_t i = 0; i < c[3]; ++i) r->transitions.push_back(be(p + i * static_cast<std::size_t>(tbytes), tbytes));
  p += c[3] * static_cast<std::size_t>(tbytes);
  for (std::size_t i = 0; i < c[3]; ++i) {
    if (p[i] >= c[4]) return nullptr;
    r->types.push_back(p[i]);
  }
  p += c[3];
  const char* chars = reinterpret_cast<const char*>(p + c[4] * 6);
  bool initial_set = false;
  for (std::size_t i = 0; i < c[4]; ++i) {
    const unsigned char* t = p + i * 6;
    std::size_t idx = t[5];
    std::string abbr;
    while (idx < c[5] && chars[idx] != '\0') abbr += chars[idx++];
    r->local_types.push_back({static_cast<int>(be(t, 4)), std::move(abbr)});
    if (!initial_set && t[4] == 0) {
      r->initial = i;
      initial_set = true;
    }
  }
  return r;
}

bool safe_name(std::string_view z) {
  if (z.empty() || z.size() > 64 || z.front() == '/' || z.find("..") != std::string_view::npos) return false;
  return std::all_of(z.begin(), z.end(), [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '/' ||
           ch == '_' || ch == '-' || ch == '+';
  });
}

// The process-wide cache of regions read so far: entries are immutable once inserted and never removed,
// so a pointer handed out stays valid without the lock.
const region* find_region(std::string_view name) {
  static std::mutex mu;
  static std::map<std::string, std::unique_ptr<region>, std::less<>> cache;
  if (!safe_name(name)) return nullptr;
  std::lock_guard lock(mu);
  if (auto it = cache.find(name); it != cache.end()) return it->second.get();
  std::ifstream in(zoneinfo_dir + std::string(name), std::ios::binary);
  if (!in) return nullptr;
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto r = read_tzif(bytes);
  if (!r) return nullptr;
  const region* out = r.get();
  cache.emplace(std::string(name), std::move(r));
  return out;
}

const local_type& type_at(const region& r, std::int64_t utc) {
  auto it = std::upper_bound(r.transitions.begin(), r.transitions.end(), utc);
  if (it == r.transitions.begin()) return r.local_types[r.initial];
  return r.local_types[r.types[static_cast<std::size_t>(it - r.transitions.begin() - 1)]];
}

zone_offset_at fixed(int seconds) {
  zone_offset_at z;
  z.seconds = seconds;
  if (seconds == 0) {
    z.abbr = "UTC";
    return z;
  }
  const int a = seconds < 0 ? -seconds : seconds;
  char buf[16];
  std::snprintf(buf, sizeof buf, "%c%02d:%02d", seconds < 0 ? '-' : '+', a / 3600, a / 60 % 60);
  z.abbr = buf;
  return z;
}

}  // namespace

bool zone_known(std::string_view zone) { return zone_offset(zone) || find_region(zone); }

std::optional<zone_offset_at> offset_at_utc(std::string_view zone, std::int64_t utc_seconds) {
  if (auto f = zone_offset(zone)) return fixed(*f);
  const region* r = find_region(zone);
  if (!r) return std::nullopt;
  const local_type& t = type_at(*r, utc_seconds);
  return zone_offset_at{t.offset, t.abbr};
}

std::optional<zone_offset_at> offset_at_local(std::string_view zone, std::int64_t local_seconds) {
  auto first = offset_at_utc(zone, local_seconds);
  if (!first) return std::nullopt;
  // Two rounds settle every instant but the skipped and repeated hours of a DST change.
  auto second = offset_at_utc(zone, local_seconds - first->seconds);
  return offset_at_utc(zone, local_seconds - second->seconds);
}

}  // namespace fleetcore::rules::sql::detail
