#include "auth/sigv4.hpp"

#include "common/base64.hpp"
#include "common/hex.hpp"

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

std::string hmac(std::string_view key, std::string_view data, const EVP_MD* md = EVP_sha256()) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(md, key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
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
  return common::hex(out, sizeof(out));
}

namespace {

/// The canonical query string: every parameter but `skip` decoded, encoded again as SigV4 requires and
/// sorted (`?uploads` is `uploads=`).
std::string canonical_query(std::string_view query, std::string_view skip = {}) {
  std::vector<std::pair<std::string, std::string>> params;
  std::size_t start = 0;
  while (start < query.size()) {
    std::size_t amp = query.find('&', start);
    std::string_view pair = query.substr(start, amp == std::string_view::npos ? std::string_view::npos : amp - start);
    if (!pair.empty()) {
      std::size_t eq = pair.find('=');
      std::string k = uri_decode(pair.substr(0, eq));
      std::string_view v = eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
      if (skip.empty() || k != skip) params.emplace_back(uri_encode(k, false), uri_encode(uri_decode(v), false));
    }
    if (amp == std::string_view::npos) break;
    start = amp + 1;
  }
  std::sort(params.begin(), params.end());
  std::string out;
  for (std::size_t i = 0; i < params.size(); ++i) {
    if (i) out += '&';
    out += params[i].first + '=' + params[i].second;
  }
  return out;
}

/// method, canonical path, canonical query, the signed headers (name:value lines, then their list),
/// payload line.
std::string canonical(const http_request_view& req, std::string_view path_line, std::string_view query_line,
                      const std::vector<std::string>& signed_headers, std::string_view payload_line) {
  std::string out(req.method);
  out += '\n';
  out += path_line;
  out += '\n';
  out += query_line;
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
  out += payload_line;
  return out;
}

std::pair<std::string_view, std::string_view> split_target(std::string_view target) {
  std::size_t q = target.find('?');
  return {target.substr(0, q), q == std::string_view::npos ? std::string_view{} : target.substr(q + 1)};
}

}  // namespace

std::string canonical_request(const http_request_view& req, const std::vector<std::string>& signed_headers) {
  auto [path, query] = split_target(req.target);
  // Non-S3 services sign the path percent-encoded once more than it is sent.
  return canonical(req, uri_encode(normalize_path(path), true), canonical_query(query), signed_headers,
                   sha256_hex(req.body));
}

std::string sigv4_signature(std::string_view secret, std::string_view date, std::string_view region,
                            std::string_view service, std::string_view string_to_sign) {
  std::string key = hmac("AWS4" + std::string(secret), date);
  key = hmac(key, region);
  key = hmac(key, service);
  key = hmac(key, "aws4_request");
  std::string sig = hmac(key, string_to_sign);
  return common::hex(sig);
}

namespace {

std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> out;
  for (std::size_t start = 0;;) {
    std::size_t at = s.find(sep, start);
    out.emplace_back(s.substr(start, at == std::string_view::npos ? std::string_view::npos : at - start));
    if (at == std::string_view::npos) return out;
    start = at + 1;
  }
}

}  // namespace

std::map<std::string, std::string, std::less<>> query_params(std::string_view query) {
  std::map<std::string, std::string, std::less<>> out;
  for (const auto& pair : split(query, '&')) {
    if (pair.empty()) continue;
    std::size_t eq = pair.find('=');
    out.emplace(uri_decode(std::string_view(pair).substr(0, eq)),
                eq == std::string::npos ? std::string() : uri_decode(std::string_view(pair).substr(eq + 1)));
  }
  return out;
}

namespace {

bool same_secret_text(std::string_view given, std::string_view expected) {
  return given.size() == expected.size() && CRYPTO_memcmp(given.data(), expected.data(), expected.size()) == 0;
}

/// What a SigV4 signature covers, however it was sent (header or query).
struct signed_parts {
  std::vector<std::string> scope;           // access key, date, region, service, "aws4_request"
  std::vector<std::string> signed_headers;  // lowercase, sorted, with host
  std::string signature;
};

/// Checks `credential` (AKID/yyyymmdd/region/service/aws4_request) and the signed header list into `p`
/// and the identity fields of `r`; the message of the first problem, if any.
std::optional<std::string> check_parts(const http_request_view& req, std::string_view credential,
                                       std::string_view signed_headers, signed_parts& p, sigv4_result& r) {
  p.scope = split(credential, '/');
  if (p.scope.size() != 5 || p.scope[4] != "aws4_request" || p.scope[0].empty() || p.scope[1].size() != 8)
    return "Credential should be scoped to a valid region, service and date";
  r.access_key_id = p.scope[0];
  r.region = p.scope[2];
  r.service = p.scope[3];
  for (auto& h : split(signed_headers, ';')) p.signed_headers.push_back(lower(h));
  if (!std::is_sorted(p.signed_headers.begin(), p.signed_headers.end()) ||
      std::find(p.signed_headers.begin(), p.signed_headers.end(), "host") == p.signed_headers.end())
    return "SignedHeaders must be sorted and include host";
  for (const auto& h : p.signed_headers)
    if (!header(req, h)) return "Signed header is missing: " + h;
  return std::nullopt;
}

/// The Authorization header's parts; the message of a malformed header.
std::optional<std::string> parse_authorization(const http_request_view& req, std::string_view auth, signed_parts& p,
                                               sigv4_result& r) {
  constexpr std::string_view algorithm = "AWS4-HMAC-SHA256 ";
  if (!auth.starts_with(algorithm)) return "Unsupported authorization algorithm";
  // Credential=AKID/date/region/service/aws4_request, SignedHeaders=a;b, Signature=hex
  std::map<std::string, std::string, std::less<>> fields;
  for (auto& part : split(auth.substr(algorithm.size()), ',')) {
    std::string_view f = part;
    while (!f.empty() && f.front() == ' ') f.remove_prefix(1);
    while (!f.empty() && f.back() == ' ') f.remove_suffix(1);
    if (f.empty() && fields.empty()) break;
    std::size_t eq = f.find('=');
    if (eq == std::string_view::npos) return "Authorization header is malformed";
    fields[std::string(f.substr(0, eq))] = std::string(f.substr(eq + 1));
  }
  auto cred = fields.find("Credential"), sh = fields.find("SignedHeaders"), sig = fields.find("Signature");
  if (cred == fields.end() || sh == fields.end() || sig == fields.end())
    return "Authorization header requires Credential, SignedHeaders and Signature";
  p.signature = sig->second;
  return check_parts(req, cred->second, sh->second, p, r);
}

/// Whether `p.signature` signs `canonical_req` at `amz_date` with the scope's key; sets `r`'s error if not.
bool signature_holds(const signed_parts& p, std::string_view amz_date, const std::string& canonical_req,
                     const secret_lookup& secrets, sigv4_result& r) {
  auto secret = secrets ? secrets(r.access_key_id) : std::nullopt;
  if (!secret) {
    r.error = sigv4_error::unknown_access_key;
    r.message = "The security token included in the request is invalid";
    return false;
  }
  const auto& sc = p.scope;
  std::string string_to_sign = "AWS4-HMAC-SHA256\n" + std::string(amz_date) + "\n" + sc[1] + "/" + sc[2] + "/" +
                               sc[3] + "/aws4_request\n" + sha256_hex(canonical_req);
  if (!same_secret_text(p.signature, sigv4_signature(*secret, sc[1], sc[2], sc[3], string_to_sign))) {
    r.error = sigv4_error::signature_mismatch;
    r.message = "The request signature we calculated does not match the signature you provided";
    return false;
  }
  return true;
}

/// The Authorization-header form, for the IoT APIs (`s3` false: path normalized and encoded again,
/// payload line the body's hash) or S3 (path as sent, payload line x-amz-content-sha256 as sent).
sigv4_result verify_header_form(const http_request_view& req, const secret_lookup& secrets, std::int64_t now_epoch_s,
                                std::int64_t max_skew_s, bool s3) {
  sigv4_result r;
  auto fail = [&](sigv4_error e, std::string msg) {
    r.error = e;
    r.message = std::move(msg);
    return r;
  };
  auto auth = header(req, "authorization");
  if (!auth) return fail(sigv4_error::missing_authentication, "Missing Authentication Token");
  signed_parts p;
  if (auto e = parse_authorization(req, *auth, p, r)) return fail(sigv4_error::malformed, std::move(*e));

  auto date = header(req, "x-amz-date");
  auto when = date ? parse_amz_date(*date) : std::nullopt;
  if (!when) return fail(sigv4_error::malformed, "X-Amz-Date header is missing or malformed");
  if (date->substr(0, 8) != p.scope[1])
    return fail(sigv4_error::malformed, "Credential date does not match X-Amz-Date");
  if (*when < now_epoch_s - max_skew_s || *when > now_epoch_s + max_skew_s)
    return fail(sigv4_error::expired, "Signature expired: " + std::string(*date) + " is outside the allowed clock skew");
  auto declared = header(req, "x-amz-content-sha256");
  auto [path, query] = split_target(req.target);
  std::string payload_line;
  if (s3) {
    // The body may still be on its way: its hash is the caller's to check (content_sha256).
    if (!declared) return fail(sigv4_error::malformed, "Missing required header for this request: x-amz-content-sha256");
    payload_line = std::string(*declared);
    if (payload_line.starts_with("STREAMING-"))  // aws-chunked framing, signed or with trailing checksums
      return fail(sigv4_error::unsupported, "aws-chunked payloads (" + payload_line + ") are not supported");
    const bool hex_hash = payload_line.size() == 64 &&
                          std::all_of(payload_line.begin(), payload_line.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
    if (hex_hash)
      r.content_sha256 = lower(payload_line);
    else if (payload_line != "UNSIGNED-PAYLOAD")
      return fail(sigv4_error::malformed, "x-amz-content-sha256 must be UNSIGNED-PAYLOAD or a SHA-256 hex digest");
  } else {
    payload_line = sha256_hex(req.body);
    if (declared && *declared != payload_line)
      return fail(sigv4_error::signature_mismatch, "The provided x-amz-content-sha256 does not match the body");
  }
  const std::string path_line = s3 ? std::string(path.empty() ? "/" : path) : uri_encode(normalize_path(path), true);
  signature_holds(p, *date, canonical(req, path_line, canonical_query(query), p.signed_headers, payload_line), secrets,
                  r);
  return r;
}

/// Presigned SigV4 (X-Amz-* query parameters), S3's form: path as sent, payload UNSIGNED-PAYLOAD.
sigv4_result verify_s3_presigned_v4(const http_request_view& req, const std::map<std::string, std::string, std::less<>>& q,
                                    std::string_view query, const secret_lookup& secrets, std::int64_t now_epoch_s,
                                    std::int64_t max_skew_s) {
  sigv4_result r;
  r.presigned = true;
  auto fail = [&](sigv4_error e, std::string msg) {
    r.error = e;
    r.message = std::move(msg);
    return r;
  };
  auto param = [&](std::string_view k) -> std::optional<std::string_view> {
    auto it = q.find(k);
    return it == q.end() ? std::nullopt : std::optional<std::string_view>(it->second);
  };
  auto algorithm = param("X-Amz-Algorithm"), credential = param("X-Amz-Credential"), date = param("X-Amz-Date"),
       expires = param("X-Amz-Expires"), signed_headers = param("X-Amz-SignedHeaders"), signature = param("X-Amz-Signature");
  if (algorithm != "AWS4-HMAC-SHA256")
    return fail(sigv4_error::malformed, "X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"");
  if (!credential || !date || !expires || !signed_headers || !signature)
    return fail(sigv4_error::malformed,
                "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, "
                "X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.");
  if (param("X-Amz-Security-Token")) return fail(sigv4_error::unknown_access_key, "Session tokens are not supported");
  signed_parts p;
  p.signature = std::string(*signature);
  if (auto e = check_parts(req, *credential, *signed_headers, p, r)) return fail(sigv4_error::malformed, std::move(*e));
  auto when = parse_amz_date(*date);
  if (!when || date->substr(0, 8) != p.scope[1])
    return fail(sigv4_error::malformed, "X-Amz-Date must be in the ISO8601 Long Format and match the credential's date");
  std::int64_t valid_for = 0;
  if (expires->empty() || expires->size() > 6 ||
      !std::all_of(expires->begin(), expires->end(), [](char c) { return c >= '0' && c <= '9'; }) ||
      (valid_for = std::stoll(std::string(*expires))) < 1 || valid_for > 604800)
    return fail(sigv4_error::malformed, "X-Amz-Expires must be between 1 and 604800 seconds");
  if (now_epoch_s > *when + valid_for) return fail(sigv4_error::expired, "Request has expired");
  if (*when > now_epoch_s + max_skew_s) return fail(sigv4_error::expired, "Request is not valid yet");
  auto [path, unused] = split_target(req.target);
  signature_holds(p, *date,
                  canonical(req, path.empty() ? "/" : path, canonical_query(query, "X-Amz-Signature"), p.signed_headers,
                            "UNSIGNED-PAYLOAD"),
                  secrets, r);
  return r;
}

/// Presigned SigV2 (AWSAccessKeyId, Signature, Expires: boto3's default presigning in us-east-1).
sigv4_result verify_s3_presigned_v2(const http_request_view& req, const std::map<std::string, std::string, std::less<>>& q,
                                    const secret_lookup& secrets, std::int64_t now_epoch_s) {
  sigv4_result r;
  r.presigned = true;
  auto fail = [&](sigv4_error e, std::string msg) {
    r.error = e;
    r.message = std::move(msg);
    return r;
  };
  auto key = q.find("AWSAccessKeyId"), sig = q.find("Signature"), exp = q.find("Expires");
  if (key == q.end() || sig == q.end() || exp == q.end())
    return fail(sigv4_error::malformed, "Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters");
  r.access_key_id = key->second;
  r.service = "s3";
  const std::string& expires = exp->second;
  if (expires.empty() || expires.size() > 12 ||
      !std::all_of(expires.begin(), expires.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return fail(sigv4_error::malformed, "Expires must be a number of seconds since the epoch");
  if (now_epoch_s > std::stoll(expires)) return fail(sigv4_error::expired, "Request has expired");
  auto secret = secrets ? secrets(r.access_key_id) : std::nullopt;
  if (!secret) return fail(sigv4_error::unknown_access_key, "The AWS Access Key Id you provided does not exist in our records.");
  // METHOD \n Content-MD5 \n Content-Type \n Expires \n x-amz-* headers, then the resource: the path as sent
  // and the sub-resources botocore signs, sorted, with decoded values.
  std::string sts = std::string(req.method) + "\n" + std::string(header(req, "content-md5").value_or("")) + "\n" +
                    std::string(header(req, "content-type").value_or("")) + "\n" + expires + "\n";
  std::map<std::string, std::string> amz;
  for (const auto& [k, v] : req.headers)
    if (auto name = lower(k); name.starts_with("x-amz-")) {
      auto& value = amz[name];
      value += (value.empty() ? "" : ",") + trim_collapse(v);
    }
  for (const auto& [k, v] : amz) sts += k + ":" + v + "\n";
  static constexpr std::string_view sub_resources[] = {
      "acl", "delete", "location", "partNumber", "response-cache-control", "response-content-disposition",
      "response-content-encoding", "response-content-language", "response-content-type", "response-expires",
      "tagging", "uploadId", "uploads", "versionId", "versioning", "versions"};
  auto [path, query] = split_target(req.target);
  sts += path.empty() ? "/" : std::string(path);
  char sep = '?';
  for (auto name : sub_resources)  // already in byte order
    if (auto it = q.find(name); it != q.end()) {
      sts += sep;
      sts += name;
      if (query.find(std::string(name) + "=") != std::string_view::npos) sts += "=" + it->second;
      sep = '&';
    }
  if (!same_secret_text(sig->second, common::base64_encode(hmac(*secret, sts, EVP_sha1()))))
    return fail(sigv4_error::signature_mismatch,
                "The request signature we calculated does not match the signature you provided. Check your key and signing method.");
  return r;
}

}  // namespace

std::string presign_s3_get(std::string_view host, std::string_view path, std::string_view access_key_id,
                           std::string_view secret, std::string_view region, std::int64_t now_epoch_s,
                           std::int64_t expires_s, std::string_view extra_query) {
  std::time_t t = static_cast<std::time_t>(now_epoch_s);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char date[17];
  std::strftime(date, sizeof date, "%Y%m%dT%H%M%SZ", &tm);
  const std::string day(date, 8);
  const std::string scope = day + "/" + std::string(region) + "/s3/aws4_request";
  std::string query = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=" +
                      uri_encode(std::string(access_key_id) + "/" + scope, false) + "&X-Amz-Date=" + date +
                      "&X-Amz-Expires=" + std::to_string(expires_s) + "&X-Amz-SignedHeaders=host";
  if (!extra_query.empty()) query = std::string(extra_query) + "&" + query;
  const std::string target = std::string(path) + "?" + query;
  http_request_view req{"GET", target, {{"host", host}}, ""};
  const std::string string_to_sign = "AWS4-HMAC-SHA256\n" + std::string(date) + "\n" + scope + "\n" +
                                     sha256_hex(canonical(req, path, canonical_query(query), {"host"}, "UNSIGNED-PAYLOAD"));
  return target + "&X-Amz-Signature=" + sigv4_signature(secret, day, region, "s3", string_to_sign);
}

sigv4_result verify_sigv4(const http_request_view& req, const secret_lookup& secrets, std::int64_t now_epoch_s,
                          std::int64_t max_skew_s) {
  return verify_header_form(req, secrets, now_epoch_s, max_skew_s, false);
}

sigv4_result verify_s3(const http_request_view& req, const secret_lookup& secrets, std::int64_t now_epoch_s,
                       std::int64_t max_skew_s) {
  if (header(req, "authorization")) return verify_header_form(req, secrets, now_epoch_s, max_skew_s, true);
  auto [path, query] = split_target(req.target);
  auto q = query_params(query);
  if (q.contains("X-Amz-Algorithm") || q.contains("X-Amz-Credential") || q.contains("X-Amz-Signature"))
    return verify_s3_presigned_v4(req, q, query, secrets, now_epoch_s, max_skew_s);
  if (q.contains("AWSAccessKeyId") || q.contains("Signature")) return verify_s3_presigned_v2(req, q, secrets, now_epoch_s);
  sigv4_result r;
  r.error = sigv4_error::missing_authentication;
  r.message = "Anonymous access is not allowed";
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
