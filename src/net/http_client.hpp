#pragma once
// The outbound HTTP client (the rules engine's http action, destination confirmations, provisioning
// hooks): POSTs over HTTP/1.1, HTTPS verified (peer certificate chain and host name) against the trust the TLS context
// holds. Connections are kept alive and reused per origin (scheme, host, port), at most
// `max_per_origin` at once: a burst of matches queues here instead of opening a connection per
// message (a sink, and the process's file descriptors, see a bounded number). Never throws; the
// outcome says what the sink answered or why not. Single-threaded: call it from the io_context's
// thread only.
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>

#include <chrono>
#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace fleetcore::net {

struct http_request {
  std::string url;  // http:// or https://
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  /// Set (by the caller, on the client's thread) once nobody wants the answer: a request still
  /// waiting for a connection then is never sent.
  std::shared_ptr<const bool> abandoned;
};

struct http_outcome {
  /// The response status, 0 if none arrived (connection refused, TLS failure, timeout...).
  unsigned status = 0;
  /// Why there is no status (or the status line), for logs and error actions.
  std::string error;
  /// A response over 16 KiB is not read (AWS does not retry one).
  bool too_large = false;
  /// The response body (a provisioning hook's answer).
  std::string body;
};

/// Whether AWS's http action retries after `o`: no status (a connection or TLS failure, a timeout),
/// 429 or 5xx; never after a response it did not read.
inline bool retryable(const http_outcome& o) {
  if (o.too_large) return false;
  return o.status == 0 || o.status == 429 || o.status >= 500;
}

class http_client {
 public:
  http_client(boost::asio::io_context& io, boost::asio::ssl::context& tls, std::size_t max_per_origin = 16);
  ~http_client();
  http_client(const http_client&) = delete;
  http_client& operator=(const http_client&) = delete;

  /// Posts `req`; `done` runs on the io_context's thread. `timeout` bounds each exchange (connect,
  /// handshake, request and response), not the wait for a free connection.
  void post(http_request req, std::chrono::milliseconds timeout, std::function<void(http_outcome)> done);

  struct connection;

 private:
  struct pending {
    http_request req;
    std::chrono::milliseconds timeout;
    std::function<void(http_outcome)> done;
  };
  struct origin {
    std::vector<std::unique_ptr<connection>> idle;
    std::size_t busy = 0;
    std::deque<pending> waiting;
  };
  void start(const std::string& key, pending p);
  void finished(const std::string& key, std::unique_ptr<connection> reusable);

  boost::asio::io_context& io_;
  boost::asio::ssl::context& tls_;
  std::size_t max_per_origin_;
  std::map<std::string, origin> origins_;
  std::shared_ptr<bool> alive_;  // the coroutines' completions see whether the client still exists
};

}  // namespace fleetcore::net
