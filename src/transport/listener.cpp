#include "transport/listener.hpp"

#include "common/log.hpp"
#include "transport/stream_connection.hpp"
#include "transport/tls.hpp"

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

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

listener::listener(broker::broker& b, listener_kind kind, const tcp::endpoint& ep, boost::asio::ssl::context* tls)
    : broker_(b), kind_(kind), tls_(tls), acceptor_(b.workers().front()->io()), retry_(b.workers().front()->io()) {
  acceptor_.open(ep.protocol());
  acceptor_.set_option(tcp::acceptor::reuse_address(true));
  acceptor_.bind(ep);
  acceptor_.listen(4096);
}

void listener::start() {
  boost::asio::post(acceptor_.get_executor(), [this] { accept(); });
}

void listener::stop() {
  boost::asio::post(acceptor_.get_executor(), [this] {
    boost::system::error_code ec;
    acceptor_.close(ec);
    retry_.cancel();
  });
}

void listener::accept() {
  broker::worker& w = broker_.next_worker();
  acceptor_.async_accept(w.io(), [this, &w](const boost::system::error_code& ec, tcp::socket sock) {
    if (ec == boost::asio::error::operation_aborted) return;
    if (ec) {
      // Out of file descriptors and the like: back off instead of spinning.
      FC_LOG_WARN("listener.accept_failed", "proto={} err=\"{}\"", to_string(kind_), ec.message());
      retry_.expires_after(std::chrono::milliseconds(100));
      retry_.async_wait([this](const boost::system::error_code& e) {
        if (!e) accept();
      });
      return;
    }
    w.post([this, &w, s = std::move(sock)]() mutable { on_accepted(std::move(s), w); });
    accept();
  });
}

namespace {

broker::connection_info info_for(listener_kind kind, const tcp::socket& s) {
  broker::connection_info info;
  info.listener = std::string(to_string(kind));
  boost::system::error_code ec;
  auto ep = s.remote_endpoint(ec);
  if (!ec) info.remote = ep.address().to_string() + ":" + std::to_string(ep.port());
  return info;
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

void listener::on_accepted(tcp::socket sock, broker::worker& w) {
  auto info = info_for(kind_, sock);
  auto log_failure = [kind = kind_, remote = info.remote](std::string_view step, const boost::system::error_code& ec) {
    FC_LOG_INFO("transport.handshake_failed", "proto={} remote={} step={} err=\"{}\"", to_string(kind), remote, step,
                ec.message());
  };
  switch (kind_) {
    case listener_kind::mqtt: {
      auto c = std::make_shared<stream_connection<tcp::socket>>(broker_, w, std::move(sock), std::move(info));
      w.connections().insert(c);
      c->start();
      return;
    }
    case listener_kind::mqtts: {
      auto c = std::make_shared<stream_connection<tls_stream>>(broker_, w, tls_stream(std::move(sock), *tls_),
                                                               std::move(info));
      w.connections().insert(c);
      c->stream().async_handshake(boost::asio::ssl::stream_base::server,
                                  [c, log_failure](const boost::system::error_code& ec) {
                                    if (ec) {
                                      log_failure("tls", ec);
                                      return c->close(mqtt::reason_code::not_authorized);
                                    }
                                    auto id = peer_of(c->stream().native_handle());
                                    c->set_peer(std::move(id.subject), std::move(id.common_name), std::move(id.certificate_id));
                                    c->start();
                                  });
      return;
    }
    case listener_kind::wss: {
      auto c = std::make_shared<stream_connection<wss_stream>>(broker_, w, wss_stream(tls_stream(std::move(sock), *tls_)),
                                                               std::move(info));
      w.connections().insert(c);
      c->stream().next_layer().async_handshake(
          boost::asio::ssl::stream_base::server, [this, c, log_failure](const boost::system::error_code& ec) {
            if (ec) {
              log_failure("tls", ec);
              return c->close(mqtt::reason_code::not_authorized);
            }
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
