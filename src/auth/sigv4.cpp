#include "auth/sigv4.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <map>

namespace fleetcore::auth {

namespace {

std::string hex(const unsigned char* p, std::size_t n) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string s(n * 2, '0');
  for (std::size_t i = 0; i < n; ++i) {
    s[2 * i] = digits[p[i] >> 4];
    s[2 * i + 1] = digits[p[i] & 15];
  }
  return s;
}

std::string hmac(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
       data.size(), out, &len);
  return std::string(reinterpret_cast<char*>(out), len);
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool unreserved(unsigned char c) { return std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~'; }

}  // namespace

std::string normalize_path(std::string_view path) {
  if (path.empty()) return "/";
  std::vector<std::string_view> out;
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t slash = path.find('/', start);
    std::string_view seg = path.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (seg == "..") {
      if (!out.empty()) out.pop_back();
    } else if (seg != "." && !seg.empty()) {
      out.push_back(seg);
    }
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  std::string result;
  for (auto seg : out) {
    result += '/';
    result += seg;
  }
  if (result.empty() || (path.back() == '/' && !out.empty())) result += '/';
  return result;
}

namespace {

std::string trim_collapse(std::string_view v) {
  std::string out;
  bool space = false;
  for (char c : v) {
    if (c == ' ' || c == '\t') {
      space = true;
      continue;
    }
    if (space && !out.empty()) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

std::optional<std::string_view> header(const http_request_view& req, std::string_view name) {
  for (const auto& [k, v] : req.headers)
    if (k.size() == name.size() && lower(k) == name) return v;
  return std::nullopt;
}

/// Seconds since the epoch of "YYYYMMDDTHHMMSSZ", or nullopt.
std::optional<std::int64_t> parse_amz_date(std::string_view s) {
  if (s.size() != 16 || s[8] != 'T' || s[15] != 'Z') return std::nullopt;
  for (std::size_t i = 0; i < 15; ++i)
    if (i != 8 && !std::isdigit(static_cast<unsigned char>(s[i]))) return std::nullopt;
  auto num = [&](std::size_t at, std::size_t n) { return std::stoi(std::string(s.substr(at, n))); };
  std::tm tm{};
  tm.tm_year = num(0, 4) - 1900;
  tm.tm_mon = num(4, 2) - 1;
  tm.tm_mday = num(6, 2);
  tm.tm_hour = num(9, 2);
  tm.tm_min = num(11, 2);
  tm.tm_sec = num(13, 2);
  if (tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
    return std::nullopt;
  return static_cast<std::int64_t>(timegm(&tm));
}

}  // namespace

/// RFC 3986 encoding with uppercase hex, as SigV4 requires; `/` kept when `keep_slash`.
std::string uri_encode(std::string_view s, bool keep_slash) {
  static constexpr char digits[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (unreserved(c) || (keep_slash && c == '/')) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += digits[c >> 4];
      out += digits[c & 15];
    }
  }
  return out;
}

std::string uri_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::string sha256_hex(std::string_view data) {
  unsigned char out[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), out);
  return hex(out, sizeof(out));
}

std::string canonical_request(const http_request_view& req, const std::vector<std::string>& signed_headers) {
  std::string_view target = req.target;
  std::size_t q = target.find('?');
  std::string_view path = target.substr(0, q);
  std::string_view query = q == std::string_view::npos ? std::string_view{} : target.substr(q + 1);

  // Non-S3 services sign the path percent-encoded once more than it is sent.
  std::string out(req.method);
  out += '\n';
  out += uri_encode(normalize_path(path), true);
  out += '\n';

  std::vector<std::pair<std::string, std::string>> params;
  std::size_t start = 0;
  while (start < query.size()) {
    std::size_t amp = query.find('&', start);
    std::string_view pair = query.substr(start, amp == std::string_view::npos ? std::string_view::npos : amp - start);
    if (!pair.empty()) {
      std::size_t eq = pair.find('=');
      std::string_view k = pair.substr(0, eq);
      std::string_view v = eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
      params.emplace_back(uri_encode(uri_decode(k), false), uri_encode(uri_decode(v), false));
    }
    if (amp == std::string_view::npos) break;
    start = amp + 1;
  }
  std::sort(params.begin(), params.end());
  for (std::size_t i = 0; i < params.size(); ++i) {
    if (i) out += '&';
    out += params[i].first + '=' + params[i].second;
  }
  out += '\n';

  for (const auto& name : signed_headers) {
    std::string value;
    for (const auto& [k, v] : req.headers) {
      if (lower(k) != name) continue;
      if (!value.empty()) value += ',';
      value += trim_collapse(v);
    }
    out += name + ':' + value + '\n';
  }
  out += '\n';
  for (std::size_t i = 0; i < signed_headers.size(); ++i) {
    if (i) out += ';';
    out += signed_headers[i];
  }
  out += '\n';
  out += sha256_hex(req.body);
  return out;
}

std::string sigv4_signature(std::string_view secret, std::string_view date, std::string_view region,
                            std::string_view service, std::string_view string_to_sign) {
  std::string key = hmac("AWS4" + std::string(secret), date);
  key = hmac(key, region);
  key = hmac(key, service);
  key = hmac(key, "aws4_request");
  std::string sig = hmac(key, string_to_sign);
  return hex(reinterpret_cast<const unsigned char*>(sig.data()), sig.size());
}

sigv4_result verify_sigv4(const http_request_view& req, const secret_lookup& secrets, std::int64_t now_epoch_s,
                          std::int64_t max_skew_s) {
  sigv4_result r;
  auto fail = [&](sigv4_error e, std::string msg) {
    r.error = e;
    r.message = std::move(msg);
    return r;
  };
  auto auth = header(req, "authorization");
  if (!auth) return fail(sigv4_error::missing_authentication, "Missing Authentication Token");
  constexpr std::string_view algorithm = "AWS4-HMAC-SHA256 ";
  if (!auth->starts_with(algorithm)) return fail(sigv4_error::malformed, "Unsupported authorization algorithm");

  // Credential=AKID/date/region/service/aws4_request, SignedHeaders=a;b, Signature=hex
  std::map<std::string, std::string, std::less<>> fields;
  std::string_view rest = auth->substr(algorithm.size());
  while (!rest.empty()) {
    std::size_t comma = rest.find(',');
    std::string_view part = rest.substr(0, comma);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    while (!part.empty() && part.back() == ' ') part.remove_suffix(1);
    std::size_t eq = part.find('=');
    if (eq == std::string_view::npos) return fail(sigv4_error::malformed, "Authorization header is malformed");
    fields[std::string(part.substr(0, eq))] = std::string(part.substr(eq + 1));
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  auto cred = fields.find("Credential"), sh = fields.find("SignedHeaders"), sig = fields.find("Signature");
  if (cred == fields.end() || sh == fields.end() || sig == fields.end())
    return fail(sigv4_error::malformed, "Authorization header requires Credential, SignedHeaders and Signature");

  std::vector<std::string> scope;
  {
    std::string_view c = cred->second;
    std::size_t start = 0;
    while (true) {
      std::size_t slash = c.find('/', start);
      scope.emplace_back(c.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start));
      if (slash == std::string_view::npos) break;
      start = slash + 1;
    }
  }
  if (scope.size() != 5 || scope[4] != "aws4_request" || scope[0].empty() || scope[1].size() != 8)
    return fail(sigv4_error::malformed, "Credential should be scoped to a valid region, service and date");
  r.access_key_id = scope[0];
  r.region = scope[2];
  r.service = scope[3];

  std::vector<std::string> signed_headers;
  {
    std::string_view s = sh->second;
    std::size_t start = 0;
    while (start <= s.size()) {
      std::size_t semi = s.find(';', start);
      signed_headers.push_back(lower(s.substr(start, semi == std::string_view::npos ? std::string_view::npos : semi - start)));
      if (semi == std::string_view::npos) break;
      start = semi + 1;
    }
  }
  if (!std::is_sorted(signed_headers.begin(), signed_headers.end()) ||
      std::find(signed_headers.begin(), signed_headers.end(), "host") == signed_headers.end())
    return fail(sigv4_error::malformed, "SignedHeaders must be sorted and include host");
  for (const auto& h : signed_headers)
    if (!header(req, h)) return fail(sigv4_error::malformed, "Signed header is missing: " + h);

  auto date = header(req, "x-amz-date");
  auto when = date ? parse_amz_date(*date) : std::nullopt;
  if (!when) return fail(sigv4_error::malformed, "X-Amz-Date header is missing or malformed");
  if (date->substr(0, 8) != scope[1]) return fail(sigv4_error::malformed, "Credential date does not match X-Amz-Date");
  if (*when < now_epoch_s - max_skew_s || *when > now_epoch_s + max_skew_s)
    return fail(sigv4_error::expired, "Signature expired: " + std::string(*date) + " is outside the allowed clock skew");
  if (auto declared = header(req, "x-amz-content-sha256"); declared && *declared != sha256_hex(req.body))
    return fail(sigv4_error::signature_mismatch, "The provided x-amz-content-sha256 does not match the body");

  auto secret = secrets ? secrets(r.access_key_id) : std::nullopt;
  if (!secret) return fail(sigv4_error::unknown_access_key, "The security token included in the request is invalid");

  std::string string_to_sign = "AWS4-HMAC-SHA256\n" + std::string(*date) + "\n" + scope[1] + "/" + scope[2] + "/" +
                               scope[3] + "/aws4_request\n" + sha256_hex(canonical_request(req, signed_headers));
  std::string expected = sigv4_signature(*secret, scope[1], scope[2], scope[3], string_to_sign);
  const std::string& given = sig->second;
  if (given.size() != expected.size() || CRYPTO_memcmp(given.data(), expected.data(), expected.size()) != 0)
    return fail(sigv4_error::signature_mismatch,
                "The request signature we calculated does not match the signature you provided");
  return r;
}

}  // namespace fleetcore::auth

namespace fleetcore::auth {

std::string authorization_header(const http_request_view& req, std::string_view access_key_id, std::string_view secret,
                                 std::string_view region, std::string_view service) {
  std::vector<std::string> signed_headers;
  for (const auto& [name, value] : req.headers) signed_headers.push_back(lower(name));
  std::sort(signed_headers.begin(), signed_headers.end());
  auto date = header(req, "x-amz-date");
  std::string day(date ? date->substr(0, 8) : std::string_view());
  std::string scope = day + "/" + std::string(region) + "/" + std::string(service) + "/aws4_request";
  std::string string_to_sign = "AWS4-HMAC-SHA256\n" + std::string(date.value_or("")) + "\n" + scope + "\n" +
                               sha256_hex(canonical_request(req, signed_headers));
  std::string joined;
  for (const auto& h : signed_headers) joined += (joined.empty() ? "" : ";") + h;
  return "AWS4-HMAC-SHA256 Credential=" + std::string(access_key_id) + "/" + scope + ", SignedHeaders=" + joined +
         ", Signature=" + sigv4_signature(secret, day, region, service, string_to_sign);
}

}  // namespace fleetcore::auth
