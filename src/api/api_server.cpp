#include "api/api_server.hpp"

#include "api/routes.hpp"
#include "auth/sigv4.hpp"
#include "common/log.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

namespace fleetcore::api {

namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using tcp = boost::asio::ip::tcp;

namespace {

constexpr std::size_t max_body = 1 << 20;

std::string request_id() {
  static std::atomic<std::uint64_t> next{1};
  return fmt::format("{:016x}", next.fetch_add(1) * 0x9E3779B97F4A7C15ull);
}


template <class Stream>
class session : public std::enable_shared_from_this<session<Stream>> {
 public:
  session(Stream s, api_server& server) : stream_(std::move(s)), server_(server) {}

  void start() {
    if constexpr (std::is_same_v<Stream, beast::ssl_stream<beast::tcp_stream>>) {
      beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(30));
      stream_.async_handshake(boost::asio::ssl::stream_base::server,
                              [self = this->shared_from_this()](beast::error_code ec) {
                                if (!ec) self->read();
                              });
    } else {
      read();
    }
  }

 private:
  void read() {
    parser_.emplace();
    parser_->body_limit(max_body);
    beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(60));
    http::async_read(stream_, buffer_, *parser_, [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec == http::error::body_limit) return self->reply_too_large();
      if (ec) return;
      self->respond();
    });
  }

  void reply_too_large() {
    write(common::aws_response::error(413, "InvalidRequestException", "request body too large"), false, 11);
  }

  void respond() {
    const auto& req = parser_->get();
    std::vector<std::pair<std::string_view, std::string_view>> headers;
    for (const auto& f : req) headers.emplace_back(std::string_view(f.name_string()), std::string_view(f.value()));
    auto r = server_.handle(std::string_view(req.method_string()), std::string_view(req.target()), headers,
                            std::string_view(req.body()));
    write(r, req.keep_alive(), req.version());
  }

  void write(const api_server::response& r, bool keep_alive, unsigned version) {
    auto res = std::make_shared<http::response<http::string_body>>(static_cast<http::status>(r.status), version);
    res->set(http::field::server, "fleetcore");
    res->set(http::field::content_type, "application/json");
    res->set("x-amzn-RequestId", request_id());
    if (!r.error_type.empty()) res->set("x-amzn-ErrorType", r.error_type);
    res->keep_alive(keep_alive);
    res->body() = r.body;
    res->prepare_payload();
    http::async_write(stream_, *res, [self = this->shared_from_this(), res](beast::error_code ec, std::size_t) {
      if (ec || !res->keep_alive()) {
        beast::error_code ignored;
        beast::get_lowest_layer(self->stream_).socket().shutdown(tcp::socket::shutdown_send, ignored);
        return;
      }
      self->read();
    });
  }

  Stream stream_;
  api_server& server_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
};

}  // namespace

api_server::api_server(const std::vector<transport::bind_address>& addrs, std::uint16_t port,
                       boost::asio::ssl::context* tls, admin_keys& keys, common::clock& clock)
    : acceptors_(io_, "api", addrs, port, 512), tls_(tls), keys_(keys), clock_(clock) {}

api_server::~api_server() { stop(); }

void api_server::start() {
  acceptors_.start([this](tcp::socket s) { accepted(std::move(s)); });
  thread_ = std::thread([this] {
    io_.run();
  });
}

void api_server::stop() {
  if (!thread_.joinable()) return;
  acceptors_.stop();
  boost::asio::post(io_, [this] { io_.stop(); });
  thread_.join();
}

void api_server::post(std::function<void()> fn) { boost::asio::post(io_, std::move(fn)); }

void api_server::accepted(tcp::socket s) {
  if (tls_)
    std::make_shared<session<beast::ssl_stream<beast::tcp_stream>>>(
        beast::ssl_stream<beast::tcp_stream>(beast::tcp_stream(std::move(s)), *tls_), *this)
        ->start();
  else
    std::make_shared<session<beast::tcp_stream>>(beast::tcp_stream(std::move(s)), *this)->start();
}

api_server::response api_server::handle(std::string_view method, std::string_view target,
                                        const std::vector<std::pair<std::string_view, std::string_view>>& headers,
                                        std::string_view body) {
  requests_.inc();
  if (method == "GET") {
    bool signed_request = false;
    for (const auto& [k, v] : headers)
      if (beast::iequals(k, "authorization")) signed_request = true;
    if (!signed_request && target.find('?') == std::string_view::npos)
      for (const auto& [prefix, fn] : capability_urls_)
        if (target.starts_with(prefix) && target.size() > prefix.size()) return fn(target.substr(prefix.size()));
  }
  auth::http_request_view view{method, target, headers, body};
  auto verdict = auth::verify_sigv4(
      view, [this](std::string_view id) { return keys_.secret_of(id); }, clock_.wall_ms() / 1000);
  if (!verdict.ok()) {
    auth_failures_.inc();
    FC_LOG_INFO("api.unauthenticated", "method={} target={} key={} reason={:q}", common::untrusted(method),
                common::untrusted(target), common::untrusted(verdict.access_key_id), common::untrusted(verdict.message));
    switch (verdict.error) {
      case auth::sigv4_error::missing_authentication:
        return response::error(403, "MissingAuthenticationTokenException", verdict.message);
      case auth::sigv4_error::unknown_access_key:
        return response::error(403, "UnrecognizedClientException", verdict.message);
      case auth::sigv4_error::malformed:
        return response::error(400, "IncompleteSignatureException", verdict.message);
      default:
        return response::error(403, "InvalidSignatureException", verdict.message);
    }
  }
  auto refuse = [&](const bind_error& e) {
    auth_failures_.inc();
    FC_LOG_INFO("api.refused", "method={} target={} key={} region={} service={} reason={:q}", common::untrusted(method),
                common::untrusted(target), common::untrusted(verdict.access_key_id), common::untrusted(verdict.region),
                common::untrusted(verdict.service), common::untrusted(e.message));
    return response::from(e);
  };
  auto header = [&](std::string_view lower) -> std::optional<std::string> {
    for (const auto& [k, v] : headers)
      if (beast::iequals(k, lower)) return std::string(v);
    return std::nullopt;
  };
  if (auto e = check_signed_path(target)) return refuse(*e);
  // The signed service picks the API first: two APIs may share a method and path.
  auto bound = bind_request(verdict.service, method, target, header, body);
  if (auto* e = std::get_if<bind_error>(&bound)) {
    if (e->status != 404) return response::from(*e);
    // Not an operation of the service signed for: if it is another service's, the scope is wrong.
    if (const route* other = find_route("", method, target))
      if (auto wrong = check_scope(*other, verdict.region, verdict.service, region_)) return refuse(*wrong);
    return operations_.unknown(e->message);
  }
  auto& req = std::get<bound_request>(bound);
  if (auto e = check_scope(*req.op, verdict.region, verdict.service, region_)) return refuse(*e);
  auto out = operations_.run(*req.op, req.input);
  FC_LOG_DEBUG("api.call", "op={} key={} status={}", req.op->operation, common::untrusted(verdict.access_key_id),
               out.status);
  return out;
}

void api_server::register_metrics(common::registry& m) const {
  m.add(acceptors_.errors(), "fleetcore_accept_errors_total", "proto=\"api\"",
        "Failed accepts (out of file descriptors, ...); accepting resumes after a back-off.");
  m.add(requests_, "fleetcore_api_requests_total", "", "Control-plane HTTP requests.");
  operations_.register_metrics(m);
  m.add(auth_failures_, "fleetcore_api_unauthenticated_total", "",
        "Control-plane requests refused: unsigned, badly signed, expired, unknown key, signed for another "
        "region or service, or a path other than the one signed.");
}

}  // namespace fleetcore::api
