#include "net/http_client.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/url/parse.hpp>
#include <fmt/format.h>

#include <openssl/ssl.h>

namespace fleetcore::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

struct http_client::connection {
  std::unique_ptr<beast::tcp_stream> plain;
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> secure;
  beast::flat_buffer buffer;  // bytes read past a response stay here for the next one
  std::chrono::steady_clock::time_point idle_since;

  beast::tcp_stream& lowest() { return plain ? *plain : beast::get_lowest_layer(*secure); }
};

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

/// An exchange that got no status: why.
http_outcome no_response(std::string error, bool too_large = false) {
  http_outcome o;
  o.error = std::move(error);
  o.too_large = too_large;
  return o;
}
constexpr std::size_t max_response_bytes = 16 * 1024;
// A kept connection unused for this long is closed rather than reused (sinks close idle
// connections after a few seconds to a minute; a connection found closed is retried on a new one).
constexpr auto max_idle = std::chrono::seconds(20);

struct target {
  bool tls = false;
  std::string host, port, path;
  std::string origin() const { return fmt::format("{}://{}:{}", tls ? "https" : "http", host, port); }
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

struct result {
  http_outcome outcome;
  std::unique_ptr<http_client::connection> keep;  // reusable after this exchange
  bool retry_fresh = false;                        // a kept connection the sink had closed
  bool keep_alive = false;                         // the sink did not ask to close
};

template <class Stream>
asio::awaitable<result> exchange(Stream& stream, http_client::connection& c, const target& t,
                                 const http_request& req, bool reused) {
  http::request<http::string_body> r{http::verb::post, t.path, 11};
  r.set(http::field::host, t.host);
  r.set(http::field::user_agent, "fleetcore");
  for (const auto& [k, v] : req.headers) r.set(k, v);
  r.body() = req.body;
  r.prepare_payload();
  auto failed = [&](std::string what, const boost::system::error_code& ec) {
    return result{no_response(what + ": " + ec.message()), nullptr, reused && ec != beast::error::timeout};
  };
  auto [wec, wn] = co_await http::async_write(stream, r, use_tuple);
  if (wec) co_return failed("write", wec);
  http::response_parser<http::string_body> parser;
  parser.body_limit(max_response_bytes);
  auto [rec, rn] = co_await http::async_read(stream, c.buffer, parser, use_tuple);
  if (rec == http::error::body_limit) co_return result{no_response("response larger than 16 KiB", true), nullptr, false};
  if (rec) co_return failed("read", rec);
  const auto& res = parser.get();
  co_return result{http_outcome{res.result_int(), fmt::format("HTTP {}", res.result_int()), false, res.body()}, nullptr,
                   false, res.keep_alive()};
}

asio::awaitable<result> attempt(asio::ssl::context& tls, const target& t, const http_request& req,
                                std::chrono::milliseconds timeout, std::unique_ptr<http_client::connection> c) {
  const bool reused = c != nullptr;
  if (!c) {
    auto ex = co_await asio::this_coro::executor;
    asio::ip::tcp::resolver resolver(ex);
    auto [ec, results] = co_await resolver.async_resolve(t.host, t.port, use_tuple);
    if (ec) co_return result{no_response("resolve: " + ec.message()), nullptr, false};
    c = std::make_unique<http_client::connection>();
    if (t.tls) {
      c->secure = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(ex, tls);
      if (!SSL_set_tlsext_host_name(c->secure->native_handle(), t.host.c_str()))
        co_return result{no_response("tls: bad host name"), nullptr, false};
      c->secure->set_verify_callback(asio::ssl::host_name_verification(t.host));
    } else {
      c->plain = std::make_unique<beast::tcp_stream>(ex);
    }
    c->lowest().expires_after(timeout);
    auto [cec, ep] = co_await c->lowest().async_connect(results, use_tuple);
    if (cec) co_return result{no_response("connect: " + cec.message()), nullptr, false};
    if (c->secure) {
      auto [hec] = co_await c->secure->async_handshake(asio::ssl::stream_base::client, use_tuple);
      if (hec) co_return result{no_response("tls: " + hec.message()), nullptr, false};
    }
  }
  c->lowest().expires_after(timeout);
  result r;  // (not a conditional expression: GCC 12 miscompiles co_await inside one)
  if (c->secure) r = co_await exchange(*c->secure, *c, t, req, reused);
  else r = co_await exchange(*c->plain, *c, t, req, reused);
  if (r.outcome.status != 0 && r.keep_alive) {
    c->lowest().expires_never();
    r.keep = std::move(c);
  }
  co_return r;
}

asio::awaitable<result> run(asio::ssl::context& tls, target t, http_request req, std::chrono::milliseconds timeout,
                            std::unique_ptr<http_client::connection> kept) {
  if (kept) {
    auto r = co_await attempt(tls, t, req, timeout, std::move(kept));
    if (!r.retry_fresh) co_return r;
  }
  co_return co_await attempt(tls, t, req, timeout, nullptr);
}

}  // namespace

http_client::http_client(asio::io_context& io, asio::ssl::context& tls, std::size_t max_per_origin)
    : io_(io), tls_(tls), max_per_origin_(max_per_origin), alive_(std::make_shared<bool>(true)) {}

http_client::~http_client() { *alive_ = false; }

void http_client::post(http_request req, std::chrono::milliseconds timeout, std::function<void(http_outcome)> done) {
  std::string error;
  auto t = parse_url(req.url, error);
  if (!t) return done(no_response(error));
  auto key = t->origin();
  auto& o = origins_[key];
  pending p{std::move(req), timeout, std::move(done)};
  if (o.busy >= max_per_origin_) {
    o.waiting.push_back(std::move(p));
    return;
  }
  start(key, std::move(p));
}

void http_client::start(const std::string& key, pending p) {
  if (p.req.abandoned && *p.req.abandoned) {
    p.done(no_response("abandoned before it was sent"));
    if (auto& o = origins_[key]; !o.waiting.empty() && o.busy < max_per_origin_) {
      auto next = std::move(o.waiting.front());
      o.waiting.pop_front();
      start(key, std::move(next));
    }
    return;
  }
  auto& o = origins_[key];
  ++o.busy;
  std::unique_ptr<connection> kept;
  const auto now = std::chrono::steady_clock::now();
  while (!o.idle.empty() && !kept) {
    kept = std::move(o.idle.back());
    o.idle.pop_back();
    if (now - kept->idle_since > max_idle) kept.reset();
  }
  std::string error;
  auto t = parse_url(p.req.url, error);  // parsed by post()
  asio::co_spawn(io_, run(tls_, std::move(*t), std::move(p.req), p.timeout, std::move(kept)),
                 [this, alive = alive_, key, done = std::move(p.done)](std::exception_ptr e, result r) {
                   if (!*alive) return;
                   if (e) r = result{no_response("internal error"), nullptr, false};
                   finished(key, std::move(r.keep));
                   done(std::move(r.outcome));
                 });
}

void http_client::finished(const std::string& key, std::unique_ptr<connection> reusable) {
  auto& o = origins_[key];
  --o.busy;
  if (reusable && o.idle.size() < max_per_origin_) {
    reusable->idle_since = std::chrono::steady_clock::now();
    o.idle.push_back(std::move(reusable));
  }
  if (!o.waiting.empty() && o.busy < max_per_origin_) {
    auto next = std::move(o.waiting.front());
    o.waiting.pop_front();
    start(key, std::move(next));
  }
}

}  // namespace fleetcore::net
