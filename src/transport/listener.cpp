#include "transport/listener.hpp"

#include "common/log.hpp"
#include "transport/stream_connection.hpp"
#include "transport/tls.hpp"

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <netinet/in.h>
#include <netinet/tcp.h>

namespace fleetcore::transport {

namespace http = boost::beast::http;
namespace websocket = boost::beast::websocket;

std::string_view to_string(listener_kind k) noexcept {
  switch (k) {
    case listener_kind::mqtt: return "mqtt";
    case listener_kind::mqtts: return "mqtts";
    case listener_kind::wss: return "wss";
  }
  return "?";
}

listener::listener(broker::broker& b, listener_kind kind, const std::vector<bind_address>& addrs, std::uint16_t port,
                   boost::asio::ssl::context* tls, admission& gate)
    : broker_(b),
      kind_(kind),
      tls_(tls),
      gate_(gate),
      acceptors_(b.workers().front()->io(), std::string(to_string(kind)), addrs, port) {}

void listener::start() {
  // Each socket is accepted directly onto the worker that will own it.
  // The worker is chosen once a socket is accepted (round-robin over every address of the
  // listener), and the socket moves to it.
  acceptors_.start([this](tcp::socket sock) {
                     broker::worker& home = broker_.next_worker();
                     boost::system::error_code ec;
                     auto protocol = sock.local_endpoint(ec).protocol();
                     if (ec) return;
                     worker_socket moved(home.io());
                     moved.assign(protocol, sock.release(), ec);
                     if (ec) return;
                     home.post([this, &home, s = std::move(moved)]() mutable { on_accepted(std::move(s), home); });
                   });
}

void listener::stop() { acceptors_.stop(); }

void listener::register_metrics(common::registry& r) const {
  r.add(acceptors_.errors(), "fleetcore_accept_errors_total", fmt::format("proto=\"{}\"", to_string(kind_)),
        "Failed accepts (out of file descriptors, ...); accepting resumes after a back-off.");
}

namespace {

broker::connection_info info_for(listener_kind kind, const worker_socket& s) {
  broker::connection_info info;
  info.listener = std::string(to_string(kind));
  boost::system::error_code ec;
  auto ep = s.remote_endpoint(ec);
  if (!ec) info.remote = to_string(ep);  // a dual-stack socket's IPv4 clients in IPv4 form
  return info;
}

/// Every accepted socket, whatever rides on it (MQTT, TLS, WebSocket):
/// - TCP_NODELAY: a TLS connection often writes twice in a row (a session ticket then CONNACK, a
///   PUBACK then a reply); without it the second write waits for the peer's delayed ACK (~40 ms).
/// - TCP keepalive: a device that vanished (power loss, NAT timeout) without a FIN is found by the
///   kernel even when its MQTT keep alive is long, and its session goes offline and its will out.
void tune_accepted_socket(worker_socket& s) {
  boost::system::error_code ec;
  s.set_option(tcp::no_delay(true), ec);
  s.set_option(boost::asio::socket_base::keep_alive(true), ec);
  int idle = 120, interval = 30, count = 4;
  ::setsockopt(s.native_handle(), IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  ::setsockopt(s.native_handle(), IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
  ::setsockopt(s.native_handle(), IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
}

/// State that lives only while a WebSocket upgrade is read.
struct upgrade_state {
  boost::beast::flat_buffer buffer;
  http::request<http::string_body> request;
};

}  // namespace

template <class Connection, class State>
void listener::serve_https(const std::shared_ptr<Connection>& c, const std::shared_ptr<State>& st) {
  https_request r;
  r.method = std::string(st->request.method_string());
  r.target = std::string(st->request.target());
  r.body = std::move(st->request.body());
  for (const auto& f : st->request) r.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
  unsigned version = st->request.version();
  broker::worker& home = c->home();
  // One request per connection: the reply is written on the connection's worker, then it closes.
  https_(std::move(r), c->info(), [c, &home, version](https_reply reply) {
    home.post([c, version, reply = std::move(reply)]() mutable {
      auto res = std::make_shared<http::response<http::string_body>>(static_cast<http::status>(reply.status), version);
      res->set(http::field::server, "fleetcore");
      res->set(http::field::content_type, "application/json");
      if (!reply.error_type.empty()) res->set("x-amzn-ErrorType", reply.error_type);
      res->keep_alive(false);
      res->body() = std::move(reply.body);
      res->prepare_payload();
      http::async_write(c->stream().next_layer(), *res, [c, res](const boost::system::error_code&, std::size_t) {
        c->close(mqtt::reason_code::success);
      });
    });
  });
}

void listener::on_accepted(worker_socket sock, broker::worker& w) {
  auto info = info_for(kind_, sock);
  boost::system::error_code ec;
  auto peer = sock.remote_endpoint(ec);
  if (ec) return;  // already gone
  admission::refusal why;
  auto ticket = gate_.admit(peer.address(), &why);
  if (!ticket) {
    FC_LOG_DEBUG("listener.refused", "proto={} remote={} reason={}", to_string(kind_), info.remote,
                 why == admission::refusal::global ? "pending_limit" : "pending_per_address_limit");
    return;  // the socket closes here
  }
  tune_accepted_socket(sock);
  auto log_failure = [kind = kind_, remote = info.remote](std::string_view step, const boost::system::error_code& ec) {
    FC_LOG_INFO("transport.handshake_failed", "proto={} remote={} step={} err=\"{}\"", to_string(kind), remote, step,
                ec.message());
  };
  switch (kind_) {
    case listener_kind::mqtt: {
      auto c = std::make_shared<stream_connection<worker_socket>>(broker_, w, std::move(sock), std::move(info));
      c->hold(std::move(*ticket));
      w.connections().insert(c);
      c->start();
      return;
    }
    case listener_kind::mqtts: {
      auto c = std::make_shared<stream_connection<tls_socket>>(broker_, w, tls_socket(std::move(sock), tls_->native_handle()),
                                                               std::move(info));
      c->hold(std::move(*ticket));
      w.connections().insert(c);
      c->stream().async_handshake([c, log_failure](const boost::system::error_code& ec) {
                                    if (ec) {
                                      log_failure("tls", ec);
                                      return c->close(mqtt::reason_code::not_authorized);
                                    }
                                    session_tickets::count_handshake(c->stream().native_handle());
                                    auto id = peer_of(c->stream().native_handle());
                                    c->set_peer(std::move(id.subject), std::move(id.common_name), std::move(id.certificate_id));
                                    c->start();
                                  });
      return;
    }
    case listener_kind::wss: {
      auto c = std::make_shared<stream_connection<wss_stream>>(
          broker_, w, wss_stream(tls_socket(std::move(sock), tls_->native_handle())), std::move(info));
      c->hold(std::move(*ticket));
      w.connections().insert(c);
      c->stream().next_layer().async_handshake([this, c, log_failure](const boost::system::error_code& ec) {
            if (ec) {
              log_failure("tls", ec);
              return c->close(mqtt::reason_code::not_authorized);
            }
            session_tickets::count_handshake(c->stream().next_layer().native_handle());
            auto id = peer_of(c->stream().next_layer().native_handle());
            c->set_peer(std::move(id.subject), std::move(id.common_name), std::move(id.certificate_id));
            auto st = std::make_shared<upgrade_state>();
            http::async_read(c->stream().next_layer(), st->buffer, st->request,
                             [this, c, st, log_failure](const boost::system::error_code& ec, std::size_t) {
                               if (ec) {
                                 log_failure("http", ec);
                                 return c->close(mqtt::reason_code::protocol_error);
                               }
                               auto& req = st->request;
                               if (!websocket::is_upgrade(req) && https_) return serve_https(c, st);
                               auto protocols = req[http::field::sec_websocket_protocol];
                               if (!websocket::is_upgrade(req) || req.target() != "/mqtt" ||
                                   protocols.find("mqtt") == boost::string_view::npos) {
                                 log_failure("upgrade", make_error_code(boost::beast::http::error::bad_target));
                                 return c->close(mqtt::reason_code::protocol_error);
                               }
                               auto& ws = c->stream();
                               ws.set_option(websocket::stream_base::decorator([](websocket::response_type& res) {
                                 res.set(http::field::sec_websocket_protocol, "mqtt");
                                 res.set(http::field::server, "fleetcore");
                               }));
                               ws.read_message_max(c->home().scratch().size() * 64);
                               ws.async_accept(req, [c, log_failure](const boost::system::error_code& ec) {
                                 if (ec) {
                                   log_failure("websocket", ec);
                                   return c->close(mqtt::reason_code::protocol_error);
                                 }
                                 c->stream().binary(true);
                                 c->start();
                               });
                             });
          });
      return;
    }
  }
}

}  // namespace fleetcore::transport
