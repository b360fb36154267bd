#pragma once
// The HTTP client of the rules engine's http action and of destination confirmations: one POST per
// call over HTTP/1.1, HTTPS verified (peer certificate chain and host name) against the trust the
// caller's TLS context holds. Never throws; the outcome says what the sink answered or why not.
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>

#include <chrono>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace fleetcore::rules {

struct http_request {
  std::string url;  // http:// or https://
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

struct http_outcome {
  /// The response status, 0 if none arrived (connection refused, TLS failure, timeout...).
  unsigned status = 0;
  /// Why there is no status (or the status line), for logs and error actions.
  std::string error;
  /// A response over 16 KiB is not read (AWS does not retry one).
  bool too_large = false;
};

/// Posts `req` on `io` (its thread runs `done`); the whole exchange is bounded by `timeout`.
void post_http(boost::asio::io_context& io, boost::asio::ssl::context& tls, http_request req,
               std::chrono::milliseconds timeout, std::function<void(http_outcome)> done);

/// Whether AWS's http action retries after `o`: no status (a connection or TLS failure, a timeout),
/// 429 or 5xx; never after a response it did not read.
inline bool retryable(const http_outcome& o) {
  if (o.too_large) return false;
  return o.status == 0 || o.status == 429 || o.status >= 500;
}

}  // namespace fleetcore::rules
