#pragma once
// AWS Signature Version 4 verification for the control-plane and data-plane HTTP APIs
// (Authorization header form, as the aws CLI and boto3 sign), and S3's variants: the path signed as
// sent, the payload line as declared (so that a body can be streamed), presigned URLs (SigV4 query
// parameters, and the SigV2 ones boto3 makes by default in us-east-1). The caller supplies the request as
// received and a lookup of secret keys; the clock is passed in, so tests need no sleeping.
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fleetcore::auth {

struct http_request_view {
  std::string_view method;
  std::string_view target;  // path and query exactly as received, percent-encoded
  std::vector<std::pair<std::string_view, std::string_view>> headers;  // as received, any case
  std::string_view body;
};

/// Secret access key of an access key id, or nullopt if the key is unknown or disabled.
using secret_lookup = std::function<std::optional<std::string>(std::string_view access_key_id)>;

enum class sigv4_error {
  none,
  missing_authentication,  // no Authorization header: AWS's MissingAuthenticationTokenException
  malformed,               // Authorization or X-Amz-Date not in SigV4 form
  unknown_access_key,      // UnrecognizedClientException
  expired,                 // outside the clock-skew window: InvalidSignatureException "Signature expired"
  signature_mismatch,      // InvalidSignatureException
  unsupported,             // a form of signing fleetcore does not take (S3's signed aws-chunked payloads)
};

struct sigv4_result {
  sigv4_error error = sigv4_error::none;
  std::string message;        // why, for the error response and the log
  std::string access_key_id;  // set once the Authorization header parsed
  std::string region;
  std::string service;
  /// S3: the lowercase hex SHA-256 the body must have (x-amz-content-sha256), empty when the payload is
  /// unsigned; the caller checks it once the body has been read.
  std::string content_sha256;
  bool presigned = false;  // S3: authenticated by query parameters (a presigned URL)
  bool ok() const noexcept { return error == sigv4_error::none; }
};

/// Verifies the request's SigV4 signature. `now_epoch_s` is the server's clock; requests whose
/// X-Amz-Date differs by more than `max_skew_s` are refused.
sigv4_result verify_sigv4(const http_request_view& req, const secret_lookup& secrets, std::int64_t now_epoch_s,
                          std::int64_t max_skew_s = 300);

/// Verifies an S3 request: the Authorization header (SigV4, S3's rules), else a presigned URL's query
/// parameters (SigV4: expiry by X-Amz-Date + X-Amz-Expires; SigV2: Expires); neither is
/// missing_authentication. The clock skew applies to the header form only.
sigv4_result verify_s3(const http_request_view& req, const secret_lookup& secrets, std::int64_t now_epoch_s,
                       std::int64_t max_skew_s = 300);

/// A presigned SigV4 GET of `path` (as it will be sent, percent-encoded) on `host` (as the client will
/// send it in Host, with the port): the path and query, valid for `expires_s` seconds from now.
/// `extra_query` (encoded, e.g. "versionId=...") is signed and sent with it.
std::string presign_s3_get(std::string_view host, std::string_view path, std::string_view access_key_id,
                           std::string_view secret, std::string_view region, std::int64_t now_epoch_s,
                           std::int64_t expires_s, std::string_view extra_query = {});

/// The canonical request of SigV4 for `req` with the given signed header names (lowercase, sorted);
/// exposed for tests and diagnostics.
std::string canonical_request(const http_request_view& req, const std::vector<std::string>& signed_headers);

/// Signature of `string_to_sign` with the key derived from secret, date (YYYYMMDD), region, service.
std::string sigv4_signature(std::string_view secret, std::string_view date, std::string_view region,
                            std::string_view service, std::string_view string_to_sign);

std::string sha256_hex(std::string_view data);

/// The Authorization header value that signs `req` (whose headers must include host and
/// x-amz-date, and are all signed) with SigV4, as a client does.
std::string authorization_header(const http_request_view& req, std::string_view access_key_id, std::string_view secret,
                                 std::string_view region, std::string_view service);

/// The path as SigV4 signs it (before encoding), like botocore: "." and ".." segments resolved and
/// empty segments removed; a trailing slash kept. A request whose path differs from this was signed
/// for another path than the one it names.
std::string normalize_path(std::string_view path);

/// RFC 3986 percent-encoding with uppercase hex, as SigV4 requires; `/` kept when `keep_slash`.
std::string uri_encode(std::string_view s, bool keep_slash);

/// The decoded parameters of a query string (the first of each name; `a` without `=` has an empty
/// value).
std::map<std::string, std::string, std::less<>> query_params(std::string_view query);

/// Decodes %XX escapes (malformed escapes are kept as they are).
std::string uri_decode(std::string_view s);

}  // namespace fleetcore::auth
