#include "rules/sql/value.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>

namespace fleetcore::rules::sql::detail {

type val::kind() const noexcept {
  if (!defined_) return type::undefined;
  const json::value& v = j();
  switch (v.kind()) {
    case json::kind::null: return type::null;
    case json::kind::bool_: return type::boolean;
    case json::kind::int64:
    case json::kind::uint64: return type::integer;
    case json::kind::double_: return type::decimal;
    case json::kind::string: return type::string;
    case json::kind::array: return type::array;
    case json::kind::object: return type::object;
  }
  return type::undefined;
}

std::optional<double> parse_numeric_string(std::string_view s) noexcept {
  std::size_t i = 0;
  const std::size_t n = s.size();
  auto digits = [&] {
    std::size_t start = i;
    while (i < n && s[i] >= '0' && s[i] <= '9') ++i;
    return i > start;
  };
  if (i < n && s[i] == '-') ++i;
  if (!digits()) return std::nullopt;
  if (i < n && s[i] == '.') {
    ++i;
    if (!digits()) return std::nullopt;
  }
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < n && s[i] == '-') ++i;
    if (!digits()) return std::nullopt;
  }
  if (i != n) return std::nullopt;
  double d = 0;
  auto r = std::from_chars(s.data(), s.data() + n, d);
  if (r.ec == std::errc::result_out_of_range) {
    // Overflow or underflow: AWS's Decimal would hold it; the nearest double is the best we have.
    return s.find_first_of("eE") != std::string_view::npos && s.find("E-") == std::string_view::npos &&
                   s.find("e-") == std::string_view::npos
               ? (s[0] == '-' ? -HUGE_VAL : HUGE_VAL)
               : 0.0;
  }
  if (r.ec != std::errc()) return std::nullopt;
  return d;
}

std::optional<number> to_number(const val& v) noexcept {
  if (v.undefined()) return std::nullopt;
  const json::value& j = v.j();
  number n;
  switch (j.kind()) {
    case json::kind::int64:
      n.is_int = true;
      n.i = j.get_int64();
      return n;
    case json::kind::uint64:
      if (j.get_uint64() <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        n.is_int = true;
        n.i = static_cast<std::int64_t>(j.get_uint64());
      } else {
        n.d = static_cast<double>(j.get_uint64());
      }
      return n;
    case json::kind::double_:
      n.d = j.get_double();
      return n;
    case json::kind::string: {
      auto d = parse_numeric_string(j.get_string());
      if (!d || !std::isfinite(*d)) return std::nullopt;
      n.d = *d;
      return n;
    }
    default: return std::nullopt;
  }
}

std::optional<double> to_decimal(const val& v) noexcept {
  auto n = to_number(v);
  if (!n) return std::nullopt;
  return n->as_double();
}

std::optional<std::int64_t> to_int_floor(const val& v) noexcept {
  auto n = to_number(v);
  if (!n) return std::nullopt;
  if (n->is_int) return n->i;
  double f = std::floor(n->d);
  if (!(f >= -9.2233720368547758e18 && f < 9.2233720368547758e18)) return std::nullopt;
  return static_cast<std::int64_t>(f);
}

namespace {
bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}
}  // namespace

std::optional<bool> to_boolean(const val& v) noexcept {
  if (v.undefined()) return std::nullopt;
  const json::value& j = v.j();
  if (j.is_bool()) return j.get_bool();
  if (j.is_string()) {
    if (iequals(j.get_string(), "true")) return true;
    if (iequals(j.get_string(), "false")) return false;
  }
  return std::nullopt;
}

std::optional<std::string_view> to_string_view(const val& v, std::string& scratch, sql_version ver) {
  if (v.undefined()) return std::nullopt;
  const json::value& j = v.j();
  switch (j.kind()) {
    case json::kind::null: return std::nullopt;
    case json::kind::string: return std::string_view(j.get_string());
    case json::kind::bool_: return j.get_bool() ? std::string_view("true") : std::string_view("false");
    default:
      scratch.clear();
      write_json(scratch, j, ver);
      return std::string_view(scratch);
  }
}

void write_decimal(std::string& out, double d, sql_version ver) {
  if (!std::isfinite(d)) {  // only a payload number beyond double range gets here
    out += "null";
    return;
  }
  char buf[400];
  std::to_chars_result r;
  const double a = std::fabs(d);
  const bool fixed = a == 0 || (a >= 1e-7 && a < 1e21);
  if (fixed) {
    r = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::fixed);
  } else {
    r = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  }
  if (r.ec != std::errc()) {
    out += '0';
    return;
  }
  std::string_view s(buf, static_cast<std::size_t>(r.ptr - buf));
  if (fixed) {
    out += s;
    if (ver == sql_version::v2015_10_08 && s.find('.') == std::string_view::npos) out += ".0";
    return;
  }
  for (char c : s) out += c == 'e' ? 'E' : c;
}

namespace {
// Length of the well-formed UTF-8 sequence at s[i] (RFC 3629: no overlongs, surrogates or > U+10FFFF),
// or 0.
std::size_t utf8_sequence(std::string_view s, std::size_t i) {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  std::size_t n;
  unsigned char lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) n = 2;
  else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (i + n > s.size() || b(i + 1) < lo || b(i + 1) > hi) return 0;
  for (std::size_t k = 2; k < n; ++k)
    if (b(i + k) < 0x80 || b(i + k) > 0xBF) return 0;
  return n;
}
}  // namespace

void write_json_string(std::string& out, std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  out += '"';
  std::size_t start = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {  // text from a binary payload or a decoded value may not be UTF-8: keep the JSON valid
      if (std::size_t n = utf8_sequence(s, i)) {
        i += n - 1;
        continue;
      }
      out.append(s.data() + start, i - start);
      start = i + 1;
      out += "\\ufffd";
      continue;
    }
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(s.data() + start, i - start);
    start = i + 1;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        out += "\\u00";
        out += hex[c >> 4];
        out += hex[c & 15];
    }
  }
  out.append(s.data() + start, s.size() - start);
  out += '"';
}

void write_json(std::string& out, const json::value& v, sql_version ver) {
  char buf[32];
  switch (v.kind()) {
    case json::kind::null: out += "null"; return;
    case json::kind::bool_: out += v.get_bool() ? "true" : "false"; return;
    case json::kind::int64: {
      auto r = std::to_chars(buf, buf + sizeof buf, v.get_int64());
      out.append(buf, r.ptr);
      return;
    }
    case json::kind::uint64: {
      auto r = std::to_chars(buf, buf + sizeof buf, v.get_uint64());
      out.append(buf, r.ptr);
      return;
    }
    case json::kind::double_: write_decimal(out, v.get_double(), ver); return;
    case json::kind::string: write_json_string(out, v.get_string()); return;
    case json::kind::array: {
      out += '[';
      bool first = true;
      for (const auto& e : v.get_array()) {
        if (!first) out += ',';
        first = false;
        write_json(out, e, ver);
      }
      out += ']';
      return;
    }
    case json::kind::object: {
      out += '{';
      bool first = true;
      for (const auto& kv : v.get_object()) {
        if (!first) out += ',';
        first = false;
        write_json_string(out, kv.key());
        out += ':';
        write_json(out, kv.value(), ver);
      }
      out += '}';
      return;
    }
  }
}

bool sql_equal(const json::value& a, const json::value& b) noexcept {
  if (is_number(a) && is_number(b)) {
    if (a.is_int64() && b.is_int64()) return a.get_int64() == b.get_int64();
    if (a.is_uint64() && b.is_uint64()) return a.get_uint64() == b.get_uint64();
    if (is_int(a) && is_int(b)) {  // one int64, one uint64
      const std::int64_t s = a.is_int64() ? a.get_int64() : b.get_int64();
      const std::uint64_t u = a.is_uint64() ? a.get_uint64() : b.get_uint64();
      return s >= 0 && static_cast<std::uint64_t>(s) == u;
    }
    return a.to_number<double>() == b.to_number<double>();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case json::kind::null: return true;
    case json::kind::bool_: return a.get_bool() == b.get_bool();
    case json::kind::string: return a.get_string() == b.get_string();
    case json::kind::array: {
      const auto& x = a.get_array();
      const auto& y = b.get_array();
      if (x.size() != y.size()) return false;
      for (std::size_t i = 0; i < x.size(); ++i)
        if (!sql_equal(x[i], y[i])) return false;
      return true;
    }
    case json::kind::object: {
      const auto& x = a.get_object();
      const auto& y = b.get_object();
      if (x.size() != y.size()) return false;
      for (const auto& kv : x) {
        auto* o = y.if_contains(kv.key());
        if (!o || !sql_equal(kv.value(), *o)) return false;
      }
      return true;
    }
    default: return false;
  }
}

}  // namespace fleetcore::rules::sql::detail
