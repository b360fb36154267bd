#pragma once
// A small HTTP/1.1 server for operational endpoints (/metrics, /healthz). Requests are answered by a
// handler on the server's io_context thread.
#include "transport/acceptor.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <functional>
#include <string>

namespace fleetcore::transport {

struct http_reply {
  unsigned status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

class http_server {
 public:
  using handler = std::function<http_reply(const std::string& method, const std::string& target)>;
  /// Binds immediately; throws std::runtime_error naming the address if it cannot.
  http_server(boost::asio::io_context& io, const std::vector<bind_address>& addrs, std::uint16_t port, handler h);
  void start();
  void stop();
  std::vector<boost::asio::ip::tcp::endpoint> local_endpoints() const { return acceptors_.local_endpoints(); }

 private:
  acceptor_set acceptors_;
  handler handler_;
};

}  // namespace fleetcore::transport
