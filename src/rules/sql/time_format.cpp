#include "rules/sql/time_format.hpp"

#include "rules/sql/time_zone.hpp"

#include <charconv>
#include <vector>

namespace fleetcore::rules::sql::detail {
namespace {

constexpr const char* month_names[] = {"January", "February", "March",     "April",   "May",      "June",
                                       "July",    "August",   "September", "October", "November", "December"};
constexpr const char* day_names[] = {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"};

// Howard Hinnant's civil calendar algorithms (proleptic Gregorian).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) noexcept {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

struct civil {
  std::int64_t y;
  unsigned m, d;
};
civil civil_from_days(std::int64_t z) noexcept {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const std::int64_t y = static_cast<std::int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp + (mp < 10 ? 3 : -9);
  return {y + (m <= 2), m, d};
}

bool ieq_prefix(std::string_view text, std::string_view word) {
  if (text.size() < word.size()) return false;
  for (std::size_t i = 0; i < word.size(); ++i) {
    char a = text[i], b = word[i];
    if (a >= 'A' && a <= 'Z') a = static_cast<char>(a - 'A' + 'a');
    if (b >= 'A' && b <= 'Z') b = static_cast<char>(b - 'A' + 'a');
    if (a != b) return false;
  }
  return true;
}

void pad(std::string& out, std::int64_t v, int width) {
  if (v < 0) {
    out += '-';
    v = -v;
  }
  std::string digits = std::to_string(v);
  for (int i = static_cast<int>(digits.size()); i < width; ++i) out += '0';
  out += digits;
}

void write_offset(std::string& out, int seconds, bool colon) {
  out += seconds < 0 ? '-' : '+';
  int a = seconds < 0 ? -seconds : seconds;
  pad(out, a / 3600, 2);
  if (colon) out += ':';
  pad(out, (a / 60) % 60, 2);
}

// Splits a pattern into runs of one letter, or literal text.
struct element {
  char letter;  // 0: literal
  int count;
  std::string text;
};
bool split_pattern(std::string_view p, std::vector<element>& out, std::string& error) {
  for (std::size_t i = 0; i < p.size();) {
    char c = p[i];
    if (c == '\'') {
      std::string lit;
      ++i;
      if (i < p.size() && p[i] == '\'') {
        out.push_back({0, 0, "'"});
        ++i;
        continue;
      }
      while (i < p.size()) {
        if (p[i] == '\'') {
          if (i + 1 < p.size() && p[i + 1] == '\'') {
            lit += '\'';
            i += 2;
            continue;
          }
          break;
        }
        lit += p[i++];
      }
      if (i >= p.size()) {
        error = "unterminated quote in time pattern";
        return false;
      }
      ++i;
      out.push_back({0, 0, std::move(lit)});
    } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
      int n = 0;
      while (i < p.size() && p[i] == c) {
        ++n;
        ++i;
      }
      out.push_back({c, n, {}});
    } else {
      out.push_back({0, 0, std::string(1, c)});
      ++i;
    }
  }
  return true;
}

}  // namespace

std::optional<int> zone_offset(std::string_view z) noexcept {
  for (std::string_view utc : {"UTC", "GMT", "UT", "Z", "Etc/UTC", "Etc/GMT", "Zulu", "Universal"}) {
    if (z == utc) return 0;
  }
  for (std::string_view prefix : {"UTC", "GMT", "UT"}) {
    if (z.size() > prefix.size() && z.substr(0, prefix.size()) == prefix &&
        (z[prefix.size()] == '+' || z[prefix.size()] == '-')) {
      z.remove_prefix(prefix.size());
      break;
    }
  }
  if (z.empty() || (z[0] != '+' && z[0] != '-')) return std::nullopt;
  const int sign = z[0] == '-' ? -1 : 1;
  z.remove_prefix(1);
  int h = 0, m = 0;
  auto num = [](std::string_view s, int& v) {
    return !s.empty() && std::from_chars(s.data(), s.data() + s.size(), v).ptr == s.data() + s.size();
  };
  if (auto colon = z.find(':'); colon != std::string_view::npos) {
    if (!num(z.substr(0, colon), h) || !num(z.substr(colon + 1), m)) return std::nullopt;
  } else if (z.size() <= 2) {
    if (!num(z, h)) return std::nullopt;
  } else if (z.size() == 4) {
    if (!num(z.substr(0, 2), h) || !num(z.substr(2), m)) return std::nullopt;
  } else {
    return std::nullopt;
  }
  if (h > 18 || m > 59) return std::nullopt;
  return sign * (h * 3600 + m * 60);
}

std::optional<std::string> format_time(std::string_view pattern, std::int64_t epoch_ms, std::string_view zone,
                                       std::string& error) {
  const std::int64_t epoch_s = epoch_ms / 1000 - (epoch_ms % 1000 < 0 ? 1 : 0);
  auto zone_at = offset_at_utc(zone, epoch_s);
  if (!zone_at) {
    error = "parse_time: unknown time zone '" + std::string(zone) + "'";
    return std::nullopt;
  }
  const bool is_region = !zone_offset(zone);
  const std::optional<int> off = zone_at->seconds;
  std::vector<element> els;
  if (!split_pattern(pattern, els, error)) return std::nullopt;
  // Floor division, so times before 1970 land on the right day and millisecond.
  std::int64_t local_ms = epoch_ms + static_cast<std::int64_t>(*off) * 1000;
  std::int64_t days = local_ms / 86400000;
  std::int64_t rem = local_ms % 86400000;
  if (rem < 0) {
    rem += 86400000;
    --days;
  }
  const civil c = civil_from_days(days);
  const int hour = static_cast<int>(rem / 3600000), minute = static_cast<int>(rem / 60000 % 60),
            second = static_cast<int>(rem / 1000 % 60), millis = static_cast<int>(rem % 1000);
  const int dow = static_cast<int>(((days % 7) + 7 + 3) % 7);  // 1970-01-01 was a Thursday; 0 = Monday
  const std::int64_t doy = days - days_from_civil(c.y, 1, 1) + 1;
  std::string out;
  for (const auto& e : els) {
    const int n = e.count;
    switch (e.letter) {
      case 0: out += e.text; break;
      case 'G': out += c.y > 0 ? "AD" : "BC"; break;
      case 'y':
      case 'Y':
      case 'u': {
        std::int64_t y = e.letter == 'u' ? c.y : (c.y > 0 ? c.y : 1 - c.y);
        if (n == 2) pad(out, ((y % 100) + 100) % 100, 2);
        else pad(out, y, n);
        break;
      }
      case 'M':
        if (n >= 4) out += month_names[c.m - 1];
        else if (n == 3) out += std::string_view(month_names[c.m - 1]).substr(0, 3);
        else pad(out, c.m, n);
        break;
      case 'd': pad(out, c.d, n); break;
      case 'D': pad(out, doy, n); break;
      case 'E':
        if (n >= 4) out += day_names[dow];
        else out += std::string_view(day_names[dow]).substr(0, 3);
        break;
      case 'e': pad(out, dow + 1, n); break;
      case 'a': out += hour < 12 ? "AM" : "PM"; break;
      case 'H': pad(out, hour, n); break;
      case 'k': pad(out, hour == 0 ? 24 : hour, n); break;
      case 'h': pad(out, hour % 12 == 0 ? 12 : hour % 12, n); break;
      case 'K': pad(out, hour % 12, n); break;
      case 'm': pad(out, minute, n); break;
      case 's': pad(out, second, n); break;
      case 'S': {
        std::string ms;
        pad(ms, millis, 3);
        if (n <= 3) out += ms.substr(0, static_cast<std::size_t>(n));
        else out += ms + std::string(static_cast<std::size_t>(n - 3), '0');
        break;
      }
      case 'Z':
        if (n >= 3 && is_region) out += zone;
        else if (n >= 3 && *off == 0) out += "UTC";
        else write_offset(out, *off, n >= 2);
        break;
      case 'X':
      case 'x':
        if (e.letter == 'X' && *off == 0) out += 'Z';
        else write_offset(out, *off, n >= 3);
        break;
      case 'z':
        if (!is_region && *off == 0 && n >= 4) out += "Coordinated Universal Time";
        else out += zone_at->abbr;
        break;
      case 'V':
        if (is_region) out += zone;
        else out += zone_at->abbr;
        break;
      default:
        error = std::string("parse_time: unsupported pattern letter '") + e.letter + "'";
        return std::nullopt;
    }
  }
  return out;
}

std::optional<std::int64_t> parse_time_text(std::string_view text, std::string_view pattern, std::string& error) {
  std::vector<element> els;
  if (!split_pattern(pattern, els, error)) return std::nullopt;
  std::int64_t year = 1970;
  int month = 1, day = 1, hour = 0, minute = 0, second = 0, millis = 0, offset = 0;
  int pm = -1;
  std::string region;  // a zone named in the text, resolved once the local time is known
  bool twelve_hour = false;
  std::size_t i = 0;
  auto fail = [&](const char* what) {
    error = std::string("time_to_epoch: ") + what + " at offset " + std::to_string(i);
    return std::nullopt;
  };
  auto read_int = [&](int min_digits, int max_digits, std::int64_t& v) {
    std::size_t start = i;
    bool neg = false;
    if (i < text.size() && text[i] == '-' && max_digits > 4) {
      neg = true;
      ++i;
    }
    std::size_t digits_start = i;
    while (i < text.size() && static_cast<int>(i - digits_start) < max_digits && text[i] >= '0' && text[i] <= '9') ++i;
    if (static_cast<int>(i - digits_start) < min_digits) {
      i = start;
      return false;
    }
    std::int64_t r = 0;
    std::from_chars(text.data() + digits_start, text.data() + i, r);
    v = neg ? -r : r;
    return true;
  };
  auto read_zone = [&](bool id) -> bool {
    std::size_t start = i;
    while (i < text.size() && text[i] != ' ' && text[i] != ',' && text[i] != ']' && text[i] != ')') ++i;
    const std::string_view name = text.substr(start, i - start);
    if (auto z = zone_offset(name)) {
      offset = *z;
      return true;
    }
    if (id && zone_known(name)) {
      region = std::string(name);
      return true;
    }
    i = start;
    return false;
  };
  for (std::size_t k = 0; k < els.size(); ++k) {
    const auto& e = els[k];
    const int n = e.count;
    std::int64_t v = 0;
    switch (e.letter) {
      case 0:
        if (text.substr(i, e.text.size()) != e.text) return fail("text does not match the pattern");
        i += e.text.size();
        break;
      case 'y':
      case 'u':
      case 'Y':
        if (!read_int(n == 2 ? 2 : 1, n == 2 ? 2 : (n >= 4 ? 4 : 9), v)) return fail("expected a year");
        year = n == 2 ? 2000 + v : v;
        break;
      case 'M':
        if (n >= 3) {
          int found = -1;
          for (int m = 0; m < 12 && found < 0; ++m) {
            std::string_view full = month_names[m];
            if (n >= 4 && ieq_prefix(text.substr(i), full)) {
              found = m;
              i += full.size();
            } else if (n == 3 && ieq_prefix(text.substr(i), full.substr(0, 3))) {
              found = m;
              i += 3;
            }
          }
          if (found < 0) return fail("expected a month name");
          month = found + 1;
        } else {
          if (!read_int(n, 2, v) || v < 1 || v > 12) return fail("expected a month");
          month = static_cast<int>(v);
        }
        break;
      case 'd':
        if (!read_int(n, 2, v) || v < 1 || v > 31) return fail("expected a day of month");
        day = static_cast<int>(v);
        break;
      case 'E': {
        bool ok = false;
        for (std::string_view d : day_names) {
          if (n >= 4 && ieq_prefix(text.substr(i), d)) {
            i += d.size();
            ok = true;
            break;
          }
          if (n < 4 && ieq_prefix(text.substr(i), d.substr(0, 3))) {
            i += 3;
            ok = true;
            break;
          }
        }
        if (!ok) return fail("expected a day name");
        break;
      }
      case 'H':
      case 'k':
      case 'h':
      case 'K':
        if (!read_int(n, 2, v) || v > 24) return fail("expected an hour");
        hour = static_cast<int>(v) % (e.letter == 'k' ? 24 : 25);
        twelve_hour = e.letter == 'h' || e.letter == 'K';
        break;
      case 'm':
        if (!read_int(n, 2, v) || v > 59) return fail("expected minutes");
        minute = static_cast<int>(v);
        break;
      case 's':
        if (!read_int(n, 2, v) || v > 59) return fail("expected seconds");
        second = static_cast<int>(v);
        break;
      case 'S': {
        std::size_t start = i;
        if (!read_int(n, n, v)) return fail("expected a fraction of second");
        int digits = static_cast<int>(i - start);
        while (digits > 3) {
          v /= 10;
          --digits;
        }
        while (digits < 3) {
          v *= 10;
          ++digits;
        }
        millis = static_cast<int>(v);
        break;
      }
      case 'a':
        if (ieq_prefix(text.substr(i), "AM")) pm = 0;
        else if (ieq_prefix(text.substr(i), "PM")) pm = 1;
        else return fail("expected AM or PM");
        i += 2;
        break;
      case 'G':
        if (ieq_prefix(text.substr(i), "AD")) i += 2;
        else return fail("expected AD");
        break;
      case 'V':
      case 'z':
      case 'Z':
      case 'X':
      case 'x':
        if (e.letter == 'X' && i < text.size() && text[i] == 'Z') {
          ++i;
          offset = 0;
        } else if (!read_zone(e.letter == 'V' || e.letter == 'z')) {
          return fail("expected a supported time zone");
        }
        break;
      default: error = std::string("time_to_epoch: unsupported pattern letter '") + e.letter + "'"; return std::nullopt;
    }
  }
  if (i != text.size()) return fail("unparsed text");
  if (twelve_hour && pm >= 0) hour = hour % 12 + (pm ? 12 : 0);
  else if (pm == 1 && hour < 12) hour += 12;
  if (year < -1000000 || year > 1000000) return fail("year out of range");
  const std::int64_t days = days_from_civil(year, static_cast<unsigned>(month), static_cast<unsigned>(day));
  if (!region.empty()) {
    auto z = offset_at_local(region, ((days * 24 + hour) * 60 + minute) * 60 + second);
    if (!z) return fail("unknown time zone");
    offset = z->seconds;
  }
  return ((days * 24 + hour) * 60 + minute) * 60000 + second * 1000LL + millis - offset * 1000LL;
}

}  // namespace fleetcore::rules::sql::detail
