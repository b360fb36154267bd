#include "transport/http_server.hpp"

#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace fleetcore::transport {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = boost::asio::ip::tcp;

namespace {

class http_session : public std::enable_shared_from_this<http_session> {
 public:
  http_session(tcp::socket s, const http_server::handler& h) : stream_(std::move(s)), handler_(h) {}

  void read() {
    request_ = {};
    stream_.expires_after(std::chrono::seconds(30));
    http::async_read(stream_, buffer_, request_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return self->stream_.socket().close(ec);
      self->respond();
    });
  }

 private:
  void respond() {
    http_reply r = handler_(std::string(request_.method_string()), std::string(request_.target()));
    auto res = std::make_shared<http::response<http::string_body>>(static_cast<http::status>(r.status),
                                                                   request_.version());
    res->set(http::field::server, "fleetcore");
    res->set(http::field::content_type, r.content_type);
    res->keep_alive(request_.keep_alive());
    res->body() = std::move(r.body);
    res->prepare_payload();
    http::async_write(stream_, *res, [self = shared_from_this(), res](beast::error_code ec, std::size_t) {
      if (ec || !res->keep_alive()) {
        beast::error_code ignored;
        self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
        return;
      }
      self->read();
    });
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> request_;
  const http_server::handler& handler_;
};

}  // namespace

http_server::http_server(boost::asio::io_context& io, const std::vector<bind_address>& addrs, std::uint16_t port,
                         handler h)
    : acceptors_(io, "metrics", addrs, port, 128), handler_(std::move(h)) {}

void http_server::start() {
  acceptors_.start([this](tcp::socket s) { std::make_shared<http_session>(std::move(s), handler_)->read(); });
}

void http_server::stop() { acceptors_.stop(); }

}  // namespace fleetcore::transport
