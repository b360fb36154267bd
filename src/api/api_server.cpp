#include "api/api_server.hpp"

#include "api/routes.hpp"
#include "auth/sigv4.hpp"
#include "common/log.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <charconv>

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
class session : public std::enable_shared_from_this<session<Stream>>, public common::http_exchange {
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

  // common::http_exchange (a streamed request: its head read, its body not yet)
  std::string_view method() const override { return head().method_string(); }
  std::string_view target() const override { return head().target(); }
  const std::vector<std::pair<std::string_view, std::string_view>>& request_headers() const override {
    return headers_;
  }
  std::optional<std::uint64_t> content_length() const override {
    if (head().chunked()) return std::nullopt;
    auto v = head()[http::field::content_length];
    std::uint64_t n = 0;
    if (v.empty()) return head().method() == http::verb::get || head().method() == http::verb::head ? 0 : std::optional<std::uint64_t>();
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    return ec == std::errc() && end == v.data() + v.size() ? std::optional<std::uint64_t>(n) : std::nullopt;
  }

  void read_body(std::function<bool(std::string_view)> piece, done_fn done) override {
    body_.emplace(std::move(*head_));
    head_.reset();
    body_->body_limit(boost::none);  // the handler bounds what it keeps
    collect_headers(body_->get());
    piece_ = std::move(piece);
    body_done_ = std::move(done);
    // Beast reads as much as the buffer has room for: room for 64 KiB makes one read (and one write by
    // the handler) per 64 KiB of body instead of one per few KiB.
    buffer_.reserve(buffer_.size() + 64 * 1024);
    if (beast::iequals(body_->get()[http::field::expect], "100-continue") && !body_->is_done()) {
      auto cont = std::make_shared<http::response<http::empty_body>>(http::status::continue_, body_->get().version());
      http::async_write(stream_, *cont, [self = this->shared_from_this(), cont](beast::error_code ec, std::size_t) {
        if (ec) return self->body_read(ec);
        self->read_piece();
      });
      return;
    }
    read_piece();
  }

  void send_head(unsigned status, headers h, std::uint64_t length, done_fn done) override {
    res_.emplace(static_cast<http::status>(status), head().version());
    res_->set(http::field::server, "fleetcore");
    for (auto& [k, v] : h) res_->insert(k, v);
    if (status != 204 && status != 304) res_->content_length(length);
    // A body left unread closes the connection after the answer: say so.
    const bool body_read = body_ ? body_->is_done() : head_ && head_->is_done();
    res_->keep_alive(head().keep_alive() && body_read);
    sr_.emplace(*res_);
    beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(60));
    http::async_write_header(stream_, *sr_, [self = this->shared_from_this(), done = std::move(done)](
                                               beast::error_code ec, std::size_t) { done(ec); });
  }

  void send_body(std::string piece, done_fn done) override {
    out_ = std::move(piece);
    beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(60));
    boost::asio::async_write(stream_, boost::asio::buffer(out_),
                             [self = this->shared_from_this(), done = std::move(done)](beast::error_code ec,
                                                                                       std::size_t) { done(ec); });
  }

  void finish(bool keep_alive) override {
    // A body left unread (an error answered before it) cannot be skipped safely: close.
    const bool body_read = body_ ? body_->is_done() : head_ && head_->is_done();
    if (!keep_alive || !body_read || !head().keep_alive()) {
      beast::error_code ignored;
      beast::get_lowest_layer(stream_).socket().shutdown(tcp::socket::shutdown_send, ignored);
      return;
    }
    read();
  }

 private:
  const http::request<http::empty_body>& head() const { return body_ ? body_stub() : head_->get(); }
  // A buffer_body request shares its head with the empty_body one it was made from.
  const http::request<http::empty_body>& body_stub() const {
    if (!stub_) {
      stub_.emplace();
      static_cast<http::request_header<>&>(*stub_) = static_cast<const http::request_header<>&>(body_->get());
    }
    return *stub_;
  }

  template <class Message>
  void collect_headers(const Message& m) {
    headers_.clear();
    for (const auto& f : m) headers_.emplace_back(std::string_view(f.name_string()), std::string_view(f.value()));
  }

  void read() {
    body_.reset();
    stub_.reset();
    res_.reset();
    sr_.reset();
    head_.emplace();
    head_->body_limit(boost::none);  // a streamed body has its handler's limit; the others max_body, below
    beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(60));
    http::async_read_header(stream_, buffer_, *head_, [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return;
      const auto& req = self->head_->get();
      self->collect_headers(req);
      if (self->server_.streamed(std::string_view(req.method_string()), std::string_view(req.target()), self->headers_))
        return self->server_.stream(self);
      if (auto n = self->head_->content_length(); n && *n > max_body) return self->reply_too_large();
      self->parser_.emplace(std::move(*self->head_));
      self->head_.reset();
      self->parser_->body_limit(max_body);
      http::async_read(self->stream_, self->buffer_, *self->parser_,
                       [self](beast::error_code ec, std::size_t) {
                         if (ec == http::error::body_limit) return self->reply_too_large();
                         if (ec) return;
                         self->respond();
                       });
    });
  }

  void read_piece() {
    if (body_->is_done()) return body_read({});
    chunk_.resize(64 * 1024);
    body_->get().body().data = chunk_.data();
    body_->get().body().size = chunk_.size();
    beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(60));
    http::async_read_some(stream_, buffer_, *body_, [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec == http::error::need_buffer) ec = {};
      if (ec) return self->body_read(ec);
      const std::size_t got = self->chunk_.size() - self->body_->get().body().size;
      if (got && !self->piece_(std::string_view(self->chunk_.data(), got)))
        return self->body_read(boost::asio::error::operation_aborted);
      self->read_piece();
    });
  }

  /// The body is read (or failed): the handler's callbacks are let go first, as they hold this
  /// exchange (a cycle otherwise).
  void body_read(boost::system::error_code ec) {
    auto done = std::move(body_done_);
    body_done_ = nullptr;
    piece_ = nullptr;
    done(ec);
  }

  void reply_too_large() {
    write(common::aws_response::error(413, "InvalidRequestException", "request body too large"), false, 11);
  }

  void respond() {
    const auto& req = parser_->get();
    collect_headers(req);
    beast::error_code ec;
    const auto peer = beast::get_lowest_layer(stream_).socket().remote_endpoint(ec);
    const std::string address = ec ? std::string() : peer.address().to_string();
    auto r = server_.handle(std::string_view(req.method_string()), std::string_view(req.target()), headers_,
                            std::string_view(req.body()), address);
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
  std::vector<std::pair<std::string_view, std::string_view>> headers_;
  std::optional<http::request_parser<http::empty_body>> head_;
  std::optional<http::request_parser<http::string_body>> parser_;
  // A streamed request and its response.
  std::optional<http::request_parser<http::buffer_body>> body_;
  mutable std::optional<http::request<http::empty_body>> stub_;
  std::vector<char> chunk_;
  std::function<bool(std::string_view)> piece_;
  done_fn body_done_;
  std::optional<http::response<http::empty_body>> res_;
  std::optional<http::response_serializer<http::empty_body>> sr_;
  std::string out_;
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
                                        std::string_view body, std::string_view peer) {
  requests_.inc();
  const std::string_view path = target.substr(0, target.find('?'));
  // A prefix matches the whole path or a path below it, never a longer name.
  auto extension_of = [&](bool signed_only) -> const extension* {
    for (const auto& e : extensions_)
      if (e.signed_only == signed_only && path.starts_with(e.prefix) &&
          (path.size() == e.prefix.size() || path[e.prefix.size()] == '/'))
        return &e;
    return nullptr;
  };
  if (const auto* e = extension_of(false)) return e->fn(method, path.substr(e->prefix.size()), body, peer);
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
  if (const auto* e = extension_of(true)) {
    // Signed as an iot operation would be: the service and, once required, the region.
    if ((verdict.service != "iot" && verdict.service != "execute-api") || (!region_.empty() && verdict.region != region_))
      return refuse(bind_error{"InvalidSignatureException", 403,
                               "fleetcore's endpoints are signed for service iot in region " + region_});
    return e->fn(method, path.substr(e->prefix.size()), body, peer);
  }
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
