#include "rules/http_client.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/url/parse.hpp>
#include <fmt/format.h>

#include <openssl/ssl.h>

namespace fleetcore::rules {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t max_response_bytes = 16 * 1024;

struct target {
  bool tls = false;
  std::string host, port, path;
};

std::optional<target> parse_url(std::string_view url, std::string& error) {
  auto u = boost::urls::parse_uri(url);
  if (!u) {
    error = "invalid url";
    return std::nullopt;
  }
  target t;
  if (u->scheme() == "https") t.tls = true;
  else if (u->scheme() != "http") {
    error = "url scheme must be https";
    return std::nullopt;
  }
  t.host = std::string(u->host_address());
  if (t.host.empty()) {
    error = "url has no host";
    return std::nullopt;
  }
  t.port = u->has_port() ? std::string(u->port()) : (t.tls ? "443" : "80");
  t.path = std::string(u->encoded_resource());
  if (t.path.empty()) t.path = "/";
  return t;
}

template <class Stream>
asio::awaitable<http_outcome> exchange(Stream& stream, const target& t, const http_request& req) {
  http::request<http::string_body> r{http::verb::post, t.path, 11};
  r.set(http::field::host, t.host);
  r.set(http::field::user_agent, "fleetcore-rules");
  for (const auto& [k, v] : req.headers) r.set(k, v);
  r.body() = req.body;
  r.prepare_payload();
  auto [wec, wn] = co_await http::async_write(stream, r, use_tuple);
  if (wec) co_return http_outcome{0, "write: " + wec.message(), false};
  beast::flat_buffer buf;
  http::response_parser<http::string_body> parser;
  parser.body_limit(max_response_bytes);
  auto [rec, rn] = co_await http::async_read(stream, buf, parser, use_tuple);
  if (rec == http::error::body_limit) co_return http_outcome{0, "response larger than 16 KiB", true};
  if (rec) co_return http_outcome{0, "read: " + rec.message(), false};
  const auto& res = parser.get();
  co_return http_outcome{res.result_int(), fmt::format("HTTP {}", res.result_int()), false};
}

asio::awaitable<http_outcome> run(asio::ssl::context& tls, http_request req, std::chrono::milliseconds timeout) {
  std::string error;
  auto t = parse_url(req.url, error);
  if (!t) co_return http_outcome{0, error, false};
  auto ex = co_await asio::this_coro::executor;
  asio::ip::tcp::resolver resolver(ex);
  auto [ec, results] = co_await resolver.async_resolve(t->host, t->port, use_tuple);
  if (ec) co_return http_outcome{0, "resolve: " + ec.message(), false};
  if (!t->tls) {
    beast::tcp_stream stream(ex);
    stream.expires_after(timeout);
    auto [cec, ep] = co_await stream.async_connect(results, use_tuple);
    if (cec) co_return http_outcome{0, "connect: " + cec.message(), false};
    auto out = co_await exchange(stream, *t, req);
    beast::error_code ignored;
    stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    co_return out;
  }
  beast::ssl_stream<beast::tcp_stream> stream(ex, tls);
  if (!SSL_set_tlsext_host_name(stream.native_handle(), t->host.c_str()))
    co_return http_outcome{0, "tls: bad host name", false};
  stream.set_verify_callback(asio::ssl::host_name_verification(t->host));
  beast::get_lowest_layer(stream).expires_after(timeout);
  auto [cec, ep] = co_await beast::get_lowest_layer(stream).async_connect(results, use_tuple);
  if (cec) co_return http_outcome{0, "connect: " + cec.message(), false};
  auto [hec] = co_await stream.async_handshake(asio::ssl::stream_base::client, use_tuple);
  if (hec) co_return http_outcome{0, "tls: " + hec.message(), false};
  auto out = co_await exchange(stream, *t, req);
  beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(1));
  co_await stream.async_shutdown(use_tuple);
  co_return out;
}

}  // namespace

void post_http(asio::io_context& io, asio::ssl::context& tls, http_request req, std::chrono::milliseconds timeout,
               std::function<void(http_outcome)> done) {
  asio::co_spawn(io, run(tls, std::move(req), timeout),
                 [done = std::move(done)](std::exception_ptr e, http_outcome o) {
                   if (e) o = http_outcome{0, "internal error", false};
                   done(std::move(o));
                 });
}

}  // namespace fleetcore::rules
