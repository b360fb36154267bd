#include "rules/sql/functions.hpp"

#include "common/base64.hpp"

#include "rules/sql/time_format.hpp"

#include <boost/json/parse.hpp>
#include <boost/regex.hpp>
#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <random>

namespace fleetcore::rules::sql::detail {

namespace {

constexpr std::uint8_t any = 255;
constexpr function_info functions[] = {
    {"abs", fn::abs, 1, 1, false},
    {"accountid", fn::accountid, 0, 0, false},
    {"acos", fn::acos, 1, 1, false},
    {"asin", fn::asin, 1, 1, false},
    {"atan", fn::atan, 1, 1, false},
    {"atan2", fn::atan2, 2, 2, false},
    {"aws_lambda", fn::aws_lambda, 2, 2, false},
    {"bitand", fn::bitand_, 2, 2, false},
    {"bitnot", fn::bitnot_, 1, 1, false},
    {"bitor", fn::bitor_, 2, 2, false},
    {"bitxor", fn::bitxor_, 2, 2, false},
    {"ceil", fn::ceil, 1, 1, false},
    {"chr", fn::chr, 1, 1, false},
    {"clientid", fn::clientid, 0, 0, false},
    {"concat", fn::concat, 0, any, false},
    {"cos", fn::cos, 1, 1, false},
    {"cosh", fn::cosh, 1, 1, false},
    {"decode", fn::decode, 2, 2, true},
    {"encode", fn::encode, 2, 2, true},
    {"endswith", fn::endswith, 2, 2, false},
    {"exp", fn::exp, 1, 1, false},
    {"floor", fn::floor, 1, 1, false},
    {"get", fn::get, 2, 2, false},
    {"get_dynamodb", fn::get_dynamodb, 4, 6, true},
    {"get_secret", fn::get_secret, 3, 4, false},
    {"get_thing_shadow", fn::get_thing_shadow, 2, 3, true},
    {"indexof", fn::indexof, 2, 2, true},
    {"isnull", fn::isnull, 1, 1, false},
    {"isundefined", fn::isundefined, 1, 1, true},
    {"length", fn::length, 1, 1, true},
    {"ln", fn::ln, 1, 1, false},
    {"log", fn::log, 1, 1, false},
    {"lower", fn::lower, 1, 1, false},
    {"lpad", fn::lpad, 2, 2, false},
    {"ltrim", fn::ltrim, 1, 1, false},
    {"machinelearning_predict", fn::machinelearning_predict, 3, 3, false},
    {"md2", fn::md2, 1, 1, false},
    {"md5", fn::md5, 1, 1, false},
    {"mod", fn::mod, 2, 2, false},
    {"nanvl", fn::nanvl, 2, 2, false},
    {"newuuid", fn::newuuid, 0, 0, false},
    {"numbytes", fn::numbytes, 1, 1, true},
    {"parse_time", fn::parse_time, 2, 3, true},
    {"power", fn::power, 2, 2, false},
    {"principal", fn::principal, 0, 0, false},
    {"rand", fn::rand, 0, 0, false},
    {"regexp_matches", fn::regexp_matches, 2, 2, false},
    {"regexp_replace", fn::regexp_replace, 3, 3, false},
    {"regexp_substr", fn::regexp_substr, 2, 2, false},
    {"remainder", fn::remainder, 2, 2, false},
    {"replace", fn::replace, 3, 3, false},
    {"round", fn::round, 1, 1, false},
    {"rpad", fn::rpad, 2, 2, false},
    {"rtrim", fn::rtrim, 1, 1, false},
    {"sha1", fn::sha1, 1, 1, false},
    {"sha224", fn::sha224, 1, 1, false},
    {"sha256", fn::sha256, 1, 1, false},
    {"sha384", fn::sha384, 1, 1, false},
    {"sha512", fn::sha512, 1, 1, false},
    {"sign", fn::sign, 1, 1, false},
    {"sin", fn::sin, 1, 1, false},
    {"sinh", fn::sinh, 1, 1, false},
    {"sql_version", fn::sql_version, 0, 0, false},
    {"sqrt", fn::sqrt, 1, 1, false},
    {"startswith", fn::startswith, 2, 2, false},
    {"substring", fn::substring, 2, 3, false},
    {"tan", fn::tan, 1, 1, false},
    {"tanh", fn::tanh, 1, 1, false},
    {"time_to_epoch", fn::time_to_epoch, 2, 2, true},
    {"timestamp", fn::timestamp, 0, 0, false},
    {"topic", fn::topic, 0, 1, false},
    {"traceid", fn::traceid, 0, 0, false},
    {"transform", fn::transform, 3, 3, true},
    {"trim", fn::trim, 1, 1, false},
    {"trunc", fn::trunc, 2, 2, false},
    {"upper", fn::upper, 1, 1, false},
};

// Code point boundaries of UTF-8 text: offsets[i] is where character i starts; offsets.back() == size.
std::vector<std::size_t> char_offsets(std::string_view s) {
  std::vector<std::size_t> o;
  o.reserve(s.size() + 1);
  for (std::size_t i = 0; i < s.size(); ++i)
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) o.push_back(i);
  o.push_back(s.size());
  return o;
}
std::size_t char_count(std::string_view s) {
  std::size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

val int_or_decimal(const eval_ctx& ctx, double d) {
  if (d >= -9.2233720368547758e18 && d < 9.2233720368547758e18) return ctx.integer(static_cast<std::int64_t>(d));
  return ctx.decimal(d);
}


val math1(const eval_ctx& ctx, const val& a, double (*f)(double)) {
  auto d = to_decimal(a);
  if (!d) return {};
  return ctx.decimal(f(*d));
}

std::string to_hex(const unsigned char* p, std::size_t n) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string s;
  s.reserve(n * 2);
  for (std::size_t i = 0; i < n; ++i) {
    s += hex[p[i] >> 4];
    s += hex[p[i] & 15];
  }
  return s;
}

/// `builtin` is OpenSSL's static digest (no provider lookup per call); null: fetch `algorithm` (MD2,
/// which OpenSSL 3 offers only through the legacy provider).
val hash(const eval_ctx& ctx, const val& a, const EVP_MD* builtin, const char* algorithm = nullptr) {
  std::string scratch;
  auto s = to_string_view(a, scratch, ctx.ver);
  if (!s) return {};
  EVP_MD* fetched = builtin ? nullptr : EVP_MD_fetch(nullptr, algorithm, nullptr);
  const EVP_MD* md = builtin ? builtin : fetched;
  if (!md) {
    ctx.error(std::string("hash algorithm ") + algorithm + " is not available");
    return {};
  }
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  const bool ok = EVP_Digest(s->data(), s->size(), out, &len, md, nullptr) == 1;
  EVP_MD_free(fetched);
  if (!ok) return {};
  return ctx.string(to_hex(out, len));
}

std::mt19937_64& rng() {
  // One generator per thread: evaluation is const and may run on every worker at once.
  thread_local std::mt19937_64 g{std::random_device{}()};
  return g;
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

val pad(const eval_ctx& ctx, arg_list& a, bool left) {
  std::string scratch;
  auto s = to_string_view(a[0], scratch, ctx.ver);
  auto n = to_int_floor(a[1]);
  if (!s || !n) return {};
  const std::size_t count = static_cast<std::size_t>(std::clamp<std::int64_t>(*n, 0, 1000));
  std::string r;
  if (left) r.append(count, ' ');
  r += *s;
  if (!left) r.append(count, ' ');
  return ctx.string(r);
}

val regex_call(const eval_ctx& ctx, const node& n, arg_list& a) {
  std::string s1, s2, s3;
  auto subject = to_string_view(a[0], s1, ctx.ver);
  if (!subject) return {};
  std::shared_ptr<const boost::regex> re = n.regex;
  try {
    if (!n.regex_literal) {
      auto p = to_string_view(a[1], s2, ctx.ver);
      if (!p) return {};
      re = std::make_shared<const boost::regex>(p->data(), p->data() + p->size(), boost::regex::perl);
    }
    if (!re) return {};
    switch (n.function) {
      case fn::regexp_matches: return ctx.boolean(boost::regex_search(subject->begin(), subject->end(), *re));
      case fn::regexp_substr: {
        boost::match_results<std::string_view::const_iterator> m;
        if (!boost::regex_search(subject->begin(), subject->end(), m, *re)) return ctx.string("");
        const auto start = static_cast<std::size_t>(m[0].first - subject->begin());
        return ctx.string(subject->substr(start, static_cast<std::size_t>(m[0].length())));
      }
      default: {
        auto fmt = to_string_view(a[2], s3, ctx.ver);
        if (!fmt) return {};
        std::string out;
        boost::regex_replace(std::back_inserter(out), subject->begin(), subject->end(), *re, *fmt,
                             boost::format_perl);
        return ctx.string(out);
      }
    }
  } catch (const std::exception& e) {  // invalid pattern, or a match too complex: Undefined
    ctx.error(std::string(n.name) + ": " + e.what());
    return {};
  }
}

val concat(const eval_ctx& ctx, arg_list& a) {
  if (a.empty()) return {};
  if (a.size() == 1) {
    if (a[0].undefined()) return {};
    if (a[0].j().is_array()) return std::move(a[0]);
    std::string scratch;
    auto s = to_string_view(a[0], scratch, ctx.ver);
    return s ? ctx.string(*s) : val{};
  }
  bool any_array = false;
  for (auto& v : a) {
    if (v.undefined()) return {};
    any_array = any_array || v.j().is_array();
  }
  if (any_array) {
    json::array out(ctx.sp);
    for (auto& v : a) {
      if (v.j().is_array())
        for (const auto& e : v.j().get_array()) out.push_back(e);
      else
        out.push_back(v.j());
    }
    return val(json::value(std::move(out)));
  }
  std::string r, scratch;
  for (auto& v : a) {
    auto s = to_string_view(v, scratch, ctx.ver);
    if (!s) return {};
    r += *s;
  }
  return ctx.string(r);
}

val substring(const eval_ctx& ctx, arg_list& a) {
  std::string scratch;
  auto s = to_string_view(a[0], scratch, ctx.ver);
  if (!s) return {};
  auto offsets = char_offsets(*s);
  const double len = static_cast<double>(offsets.size() - 1);
  auto index = [&](const val& v) -> std::optional<std::size_t> {
    auto d = to_decimal(v);
    if (!d) return std::nullopt;
    return static_cast<std::size_t>(std::clamp(std::floor(*d), 0.0, len));
  };
  auto from = index(a[1]);
  if (!from) return {};
  std::size_t to = offsets.size() - 1;
  if (a.size() == 3) {
    auto t = index(a[2]);
    if (!t) return {};
    to = *t;
  }
  if (*from >= to) return ctx.string("");
  return ctx.string(s->substr(offsets[*from], offsets[to] - offsets[*from]));
}

val trunc(const eval_ctx& ctx, arg_list& a) {
  auto x = to_number(a[0]);
  auto places = to_int_floor(a[1]);
  if (!x || !places) return {};
  if (x->is_int) return ctx.integer(x->i);
  const std::int64_t p = std::clamp<std::int64_t>(*places, 0, 34);
  // Truncate the decimal text, not the binary value: trunc(2.3123, 2) is 2.31, not 2.3099999...
  std::string text;
  write_decimal(text, x->d, sql_version::v2016_03_23);
  if (text.find_first_of("eE") != std::string::npos) {
    const double f = std::pow(10.0, static_cast<double>(p));
    const double t = std::trunc(x->d * f) / f;
    return std::fabs(t) < 9e18 && t == std::floor(t) ? int_or_decimal(ctx, t) : ctx.decimal(t);
  }
  auto dot = text.find('.');
  if (dot != std::string::npos) {
    text.resize(std::min(text.size(), dot + 1 + static_cast<std::size_t>(p)));
    while (text.back() == '0') text.pop_back();
    if (text.back() == '.') text.pop_back();
  }
  if (text.find('.') == std::string::npos) {
    std::int64_t i = 0;
    if (std::from_chars(text.data(), text.data() + text.size(), i).ec == std::errc()) return ctx.integer(i);
  }
  double d = 0;
  std::from_chars(text.data(), text.data() + text.size(), d);
  return ctx.decimal(d);
}

val decode(const eval_ctx& ctx, arg_list& a) {
  std::string s1, s2;
  auto scheme = to_string_view(a[1], s2, ctx.ver);
  auto s = to_string_view(a[0], s1, ctx.ver);
  if (!s || !scheme) return {};
  if (*scheme != "base64") {
    ctx.error("decode: unsupported scheme " + std::string(*scheme));
    return {};
  }
  auto decoded = common::base64_decode(*s);
  if (!decoded) return ctx.null();
  std::string bytes = std::move(*decoded);
  boost::system::error_code ec;
  json::value parsed = json::parse(bytes, ec, ctx.sp);
  if (!ec) return val(std::move(parsed));
  return ctx.string(bytes);
}

val transform(const eval_ctx& ctx, arg_list& a) {
  std::string scratch;
  auto mode = to_string_view(a[0], scratch, ctx.ver);
  if (!mode || *mode != "enrichArray" || a[1].undefined() || a[2].undefined()) return {};
  if (!a[1].j().is_object() || !a[2].j().is_array()) return {};
  const auto& extra = a[1].j().get_object();
  json::array out(ctx.sp);
  for (const auto& e : a[2].j().get_array()) {
    if (!e.is_object()) continue;
    json::object o(e.get_object(), ctx.sp);
    for (const auto& kv : extra) o[kv.key()] = kv.value();
    out.push_back(json::value(std::move(o)));
  }
  return val(json::value(std::move(out)));
}

val get(const eval_ctx& ctx, arg_list& a) {
  if (a[0].undefined() || a[1].undefined()) return {};
  const auto& c = a[0].j();
  if (c.is_object()) {
    if (!a[1].j().is_string()) return {};
    auto* v = c.get_object().if_contains(a[1].j().get_string());
    if (!v) return {};
    return a[0].borrowed() ? val::borrow(*v) : ctx.copy(*v);
  }
  auto i = to_int_standard(a[1]);
  if (!i || *i < 0) return {};
  if (c.is_array()) {
    const auto& arr = c.get_array();
    if (static_cast<std::uint64_t>(*i) >= arr.size()) return {};
    return a[0].borrowed() ? val::borrow(arr[static_cast<std::size_t>(*i)]) : ctx.copy(arr[static_cast<std::size_t>(*i)]);
  }
  if (c.is_string()) {
    auto offsets = char_offsets(c.get_string());
    if (static_cast<std::uint64_t>(*i) + 1 >= offsets.size()) return {};
    std::string_view s = c.get_string();
    auto k = static_cast<std::size_t>(*i);
    return ctx.string(s.substr(offsets[k], offsets[k + 1] - offsets[k]));
  }
  return {};
}

val topic(const eval_ctx& ctx, arg_list& a) {
  std::string_view t = ctx.msg->topic;
  if (a.empty()) return ctx.string(t);
  auto n = to_int_floor(a[0]);
  if (!n || *n < 1) return {};
  std::int64_t level = 1;
  std::size_t start = 0;
  while (true) {
    std::size_t end = t.find('/', start);
    if (level == *n) return ctx.string(t.substr(start, end == std::string_view::npos ? end : end - start));
    if (end == std::string_view::npos) return {};
    start = end + 1;
    ++level;
  }
}

val newuuid(const eval_ctx& ctx) {
  std::array<unsigned char, 16> b;
  auto& g = rng();
  std::uint64_t x = g(), y = g();
  for (int i = 0; i < 8; ++i) {
    b[static_cast<std::size_t>(i)] = static_cast<unsigned char>(x >> (8 * i));
    b[static_cast<std::size_t>(i + 8)] = static_cast<unsigned char>(y >> (8 * i));
  }
  b[6] = static_cast<unsigned char>((b[6] & 0x0F) | 0x40);
  b[8] = static_cast<unsigned char>((b[8] & 0x3F) | 0x80);
  std::string h = to_hex(b.data(), b.size());
  return ctx.string(h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) + "-" +
                    h.substr(20));
}

}  // namespace

/// The standard "to Int" conversion (get's index): Decimal rounded to nearest, String truncated.
std::optional<std::int64_t> to_int_standard(const val& v) {
  if (v.undefined()) return std::nullopt;
  const auto& j = v.j();
  if (is_int(j)) return int_of(j);
  double d;
  if (j.is_double()) {
    d = std::round(j.get_double());
  } else if (j.is_string()) {
    auto p = parse_numeric_string(j.get_string());
    if (!p) return std::nullopt;
    d = std::trunc(*p);
  } else {
    return std::nullopt;
  }
  if (!(d >= -9.2233720368547758e18 && d < 9.2233720368547758e18)) return std::nullopt;
  return static_cast<std::int64_t>(d);
}

const function_info* find_function(std::string_view lower_name) noexcept {
  for (const auto& f : functions)
    if (f.name == lower_name) return &f;
  return nullptr;
}

val eval_ctx::decimal(double d) const {
  if (!std::isfinite(d)) return {};
  if (!v1() && d == std::floor(d) && d >= -9.2233720368547758e18 && d < 9.2233720368547758e18)
    return integer(static_cast<std::int64_t>(d));
  return val(json::value(d, sp));
}

val cast_value(const eval_ctx& ctx, const val& v, cast_type t) {
  if (v.undefined()) return {};
  const auto& j = v.j();
  switch (t) {
    case cast_type::string: {
      if (j.is_string()) return ctx.copy(j);
      std::string scratch;
      auto s = to_string_view(v, scratch, ctx.ver);
      return s ? ctx.string(*s) : val{};
    }
    case cast_type::integer: {
      if (j.is_bool()) return ctx.integer(j.get_bool() ? 1 : 0);
      auto i = to_int_floor(v);
      return i ? ctx.integer(*i) : val{};
    }
    case cast_type::decimal:
    case cast_type::double_: {
      if (j.is_bool()) return ctx.decimal(j.get_bool() ? 1.0 : 0.0);
      auto d = to_decimal(v);
      if (!d) return {};
      return ctx.decimal(*d);
    }
    case cast_type::boolean: {
      if (is_number(j)) return ctx.boolean(j.to_number<double>() != 0);
      auto b = to_boolean(v);
      return b ? ctx.boolean(*b) : val{};
    }
  }
  return {};
}

val call_function(const eval_ctx& ctx, const node& n, arg_list& a) {
  if (!n.arity_ok) return {};
  std::string s1, s2, s3;
  auto str = [&](std::size_t i, std::string& scratch) { return to_string_view(a[i], scratch, ctx.ver); };
  auto ints2 = [&](auto f) -> val {
    auto x = to_int_floor(a[0]);
    auto y = to_int_floor(a[1]);
    if (!x || !y) return {};
    return ctx.integer(f(*x, *y));
  };
  switch (n.function) {
    case fn::abs: {
      auto x = to_number(a[0]);
      if (!x) return {};
      if (x->is_int) return x->i == INT64_MIN ? ctx.decimal(-static_cast<double>(x->i)) : ctx.integer(x->i < 0 ? -x->i : x->i);
      return ctx.decimal(std::fabs(x->d));
    }
    case fn::accountid: return ctx.string(ctx.msg->account_id);
    case fn::acos: return math1(ctx, a[0], [](double x) { return std::acos(x); });
    case fn::asin: return math1(ctx, a[0], [](double x) { return std::asin(x); });
    case fn::atan: return math1(ctx, a[0], [](double x) { return std::atan(x); });
    case fn::cos: return math1(ctx, a[0], [](double x) { return std::cos(x); });
    case fn::cosh: return math1(ctx, a[0], [](double x) { return std::cosh(x); });
    case fn::exp: return math1(ctx, a[0], [](double x) { return std::exp(x); });
    case fn::ln: return math1(ctx, a[0], [](double x) { return std::log(x); });
    case fn::log: return math1(ctx, a[0], [](double x) { return std::log10(x); });
    case fn::sin: return math1(ctx, a[0], [](double x) { return std::sin(x); });
    case fn::sinh: return math1(ctx, a[0], [](double x) { return std::sinh(x); });
    case fn::sqrt: return math1(ctx, a[0], [](double x) { return std::sqrt(x); });
    case fn::tan: return math1(ctx, a[0], [](double x) { return std::tan(x); });
    case fn::tanh: return math1(ctx, a[0], [](double x) { return std::tanh(x); });
    case fn::atan2:
    case fn::power: {
      auto x = to_decimal(a[0]);
      auto y = to_decimal(a[1]);
      if (!x || !y) return {};
      return ctx.decimal(n.function == fn::atan2 ? std::atan2(*x, *y) : std::pow(*x, *y));
    }
    case fn::aws_lambda:
    case fn::get_dynamodb:
    case fn::machinelearning_predict:
      ctx.error(n.name + " is not supported (it needs an AWS service); the value is Undefined");
      return {};
    case fn::bitand_: return ints2([](std::int64_t x, std::int64_t y) { return x & y; });
    case fn::bitor_: return ints2([](std::int64_t x, std::int64_t y) { return x | y; });
    case fn::bitxor_: return ints2([](std::int64_t x, std::int64_t y) { return x ^ y; });
    case fn::bitnot_: {
      auto x = to_int_floor(a[0]);
      return x ? ctx.integer(~*x) : val{};
    }
    case fn::ceil:
    case fn::floor:
    case fn::round: {
      auto x = to_number(a[0]);
      if (!x) return {};
      if (x->is_int) return ctx.integer(x->i);
      double r = n.function == fn::ceil ? std::ceil(x->d) : n.function == fn::floor ? std::floor(x->d) : std::round(x->d);
      return int_or_decimal(ctx, r);
    }
    case fn::sign: {
      auto x = to_number(a[0]);
      if (!x) return {};
      double d = x->as_double();
      return ctx.integer(d > 0 ? 1 : d < 0 ? -1 : 0);
    }
    case fn::chr: {
      auto x = to_int_floor(a[0]);
      if (!x || *x < 0 || *x > 127) return {};
      return ctx.string(std::string(1, static_cast<char>(*x)));
    }
    case fn::clientid: return ctx.string(ctx.msg->client_id);
    case fn::concat: return concat(ctx, a);
    case fn::decode: return decode(ctx, a);
    case fn::encode: {
      auto scheme = str(1, s2);
      if (!scheme) return {};
      if (*scheme != "base64") {
        ctx.error("encode: unsupported scheme " + std::string(*scheme));
        return {};
      }
      if (n.args[0]->kind == op::star) return ctx.string(common::base64_encode(ctx.msg->payload));
      auto s = str(0, s1);
      return s ? ctx.string(common::base64_encode(*s)) : val{};
    }
    case fn::endswith:
    case fn::startswith: {
      auto x = str(0, s1);
      auto y = str(1, s2);
      if (!x || !y) return {};
      return ctx.boolean(n.function == fn::startswith ? x->substr(0, y->size()) == *y
                                                      : x->size() >= y->size() && x->substr(x->size() - y->size()) == *y);
    }
    case fn::get: return get(ctx, a);
    case fn::get_secret: {
      if (!ctx.msg->secret_reader) {
        ctx.error("get_secret: no secrets are configured");
        return {};
      }
      auto id = str(0, s1);
      std::optional<std::string_view> key = std::string_view{};
      if (a.size() == 4) key = str(2, s3);
      if (!id || !key) return {};
      auto secret = ctx.msg->secret_reader(*id, *key);
      if (!secret) {
        ctx.error("get_secret: secret " + std::string(*id) + " not found");
        return {};
      }
      return ctx.string(*secret);
    }
    case fn::get_thing_shadow: {
      if (!ctx.msg->shadow_reader) {
        ctx.error("get_thing_shadow: shadows are not available to this evaluation");
        return {};
      }
      auto thing = str(0, s1);
      std::optional<std::string_view> shadow = std::string_view{};
      if (a.size() == 3) shadow = str(1, s2);
      if (!thing || !shadow) return {};
      auto doc = ctx.msg->shadow_reader(*thing, *shadow);
      if (!doc) return {};
      return ctx.copy(*doc);
    }
    case fn::indexof: {
      auto x = str(0, s1);
      auto y = str(1, s2);
      if (!x || !y) return {};
      auto p = x->find(*y);
      if (p == std::string_view::npos) return ctx.integer(-1);
      return ctx.integer(static_cast<std::int64_t>(char_count(x->substr(0, p))));
    }
    case fn::isnull: return ctx.boolean(!a[0].undefined() && a[0].j().is_null());
    case fn::isundefined: return ctx.boolean(a[0].undefined());
    case fn::length:
    case fn::numbytes: {
      auto x = str(0, s1);
      if (!x) return {};
      return ctx.integer(static_cast<std::int64_t>(n.function == fn::length ? char_count(*x) : x->size()));
    }
    case fn::lower:
    case fn::upper: {
      auto x = str(0, s1);
      if (!x) return {};
      std::string r(*x);
      for (char& c : r) {
        if (n.function == fn::lower && c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        if (n.function == fn::upper && c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
      }
      return ctx.string(r);
    }
    case fn::lpad: return pad(ctx, a, true);
    case fn::rpad: return pad(ctx, a, false);
    case fn::ltrim:
    case fn::rtrim:
    case fn::trim: {
      auto x = str(0, s1);
      if (!x) return {};
      std::string_view r = *x;
      if (n.function != fn::rtrim)
        while (!r.empty() && is_space(r.front())) r.remove_prefix(1);
      if (n.function != fn::ltrim)
        while (!r.empty() && is_space(r.back())) r.remove_suffix(1);
      return ctx.string(r);
    }
    case fn::mod:
    case fn::remainder: return arith(ctx, op::mod, a[0], a[1]);
    case fn::nanvl: {
      if (a[0].undefined() || a[0].j().is_null()) return std::move(a[1]);
      if (a[0].j().is_double() && std::isnan(a[0].j().get_double())) return std::move(a[1]);
      return std::move(a[0]);
    }
    case fn::newuuid: return newuuid(ctx);
    case fn::parse_time: {
      auto pattern = str(0, s1);
      auto ms = to_int_floor(a[1]);
      std::optional<std::string_view> zone = std::string_view("UTC");
      if (a.size() == 3) zone = str(2, s3);
      if (!pattern || !ms || !zone) return {};
      if (*ms < -8'000'000'000'000'000 || *ms > 8'000'000'000'000'000) return {};
      std::string err;
      auto r = format_time(*pattern, *ms, *zone, err);
      if (!r) {
        ctx.error(err);
        return {};
      }
      return ctx.string(*r);
    }
    case fn::time_to_epoch: {
      auto text = str(0, s1);
      auto pattern = str(1, s2);
      if (!text || !pattern) return {};
      std::string err;
      auto r = parse_time_text(*text, *pattern, err);
      if (!r) {
        ctx.error(err);
        return {};
      }
      return ctx.integer(*r);
    }
    case fn::principal: return ctx.string(ctx.msg->principal);
    case fn::rand: return val(json::value(std::uniform_real_distribution<double>(0.0, 1.0)(rng()), ctx.sp));
    case fn::regexp_matches:
    case fn::regexp_replace:
    case fn::regexp_substr: return regex_call(ctx, n, a);
    case fn::replace: {
      auto x = str(0, s1);
      auto from = str(1, s2);
      auto to = str(2, s3);
      if (!x || !from || !to) return {};
      std::string r;
      if (from->empty()) {  // Java: the replacement goes between every character and at both ends
        auto offsets = char_offsets(*x);
        for (std::size_t i = 0; i + 1 < offsets.size(); ++i) {
          r += *to;
          r += x->substr(offsets[i], offsets[i + 1] - offsets[i]);
        }
        r += *to;
        return ctx.string(r);
      }
      std::size_t start = 0;
      while (true) {
        auto p = x->find(*from, start);
        if (p == std::string_view::npos) break;
        r += x->substr(start, p - start);
        r += *to;
        start = p + from->size();
      }
      r += x->substr(start);
      return ctx.string(r);
    }
    case fn::substring: return substring(ctx, a);
    case fn::sql_version: return ctx.string(to_string(ctx.ver));
    case fn::timestamp: return ctx.integer(ctx.msg->timestamp_ms);
    case fn::topic: return topic(ctx, a);
    case fn::traceid: return ctx.msg->trace_id.empty() ? val{} : ctx.string(ctx.msg->trace_id);
    case fn::transform: return transform(ctx, a);
    case fn::trunc: return trunc(ctx, a);
    case fn::md2: return hash(ctx, a[0], nullptr, "MD2");
    case fn::md5: return hash(ctx, a[0], EVP_md5());
    case fn::sha1: return hash(ctx, a[0], EVP_sha1());
    case fn::sha224: return hash(ctx, a[0], EVP_sha224());
    case fn::sha256: return hash(ctx, a[0], EVP_sha256());
    case fn::sha384: return hash(ctx, a[0], EVP_sha384());
    case fn::sha512: return hash(ctx, a[0], EVP_sha512());
  }
  return {};
}

}  // namespace fleetcore::rules::sql::detail
