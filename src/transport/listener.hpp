#pragma once
#include "broker/broker.hpp"
#include "common/aws_api.hpp"
#include "transport/acceptor.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace fleetcore::transport {

enum class listener_kind { mqtt, mqtts, wss };

/// A plain HTTPS request that arrived on the wss listener (AWS IoT serves devices' HTTPS publish
/// and shadow requests on the same port as MQTT over WebSocket).
struct https_request {
  std::string method, target, body;
  std::vector<std::pair<std::string, std::string>> headers;
};
/// The answer: status, JSON body and, for an error, x-amzn-ErrorType (the AWS edge's one response type).
using https_reply = common::aws_response;
/// Answers a device's HTTPS request; may run anywhere, must call `reply` exactly once (any thread).
using https_handler = std::function<void(https_request req, const auth::connection_info& peer,
                                         std::function<void(https_reply)> reply)>;

std::string_view to_string(listener_kind k) noexcept;

/// Accepts connections on every address of one listener and spreads them over the broker's workers
/// round-robin. Connections that have not authenticated yet are bounded by `admission`.
class listener {
 public:
  /// Binds immediately (so port 0 resolves); throws std::runtime_error naming the address if it
  /// cannot. `tls` is required for mqtts and wss; `tls` and `gate` must outlive the listener.
  listener(broker::broker& b, listener_kind kind, const std::vector<bind_address>& addrs, std::uint16_t port,
           boost::asio::ssl::context* tls, admission& gate);
  /// For wss: requests that are not a WebSocket upgrade go to `h` (else they are refused).
  void set_https_handler(https_handler h) { https_ = std::move(h); }
  void start();
  void stop();
  std::vector<boost::asio::ip::tcp::endpoint> local_endpoints() const { return acceptors_.local_endpoints(); }
  listener_kind kind() const noexcept { return kind_; }
  void register_metrics(common::registry& r) const;

 private:
  void on_accepted(worker_socket sock, broker::worker& w);
  template <class Connection, class State>
  void serve_https(const std::shared_ptr<Connection>& c, const std::shared_ptr<State>& st);

  broker::broker& broker_;
  listener_kind kind_;
  boost::asio::ssl::context* tls_;
  admission& gate_;
  acceptor_set acceptors_;
  https_handler https_;
};

}  // namespace fleetcore::transport
