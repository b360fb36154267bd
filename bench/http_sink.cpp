// An HTTPS sink for the rules engine's http action benchmark (bench/rules.sh): HTTP/1.1 with
// keep-alive, answers every POST with 200 and an empty body, one thread. A topic rule destination's
// confirmation request (a body with "confirmationToken") is printed on stdout, one line each, for the
// script to confirm the destination with; everything else is only counted (the engine's own metrics
// measure delivery).
//
//   http_sink --cert sink.crt --key sink.key --port 0     # prints "port N" first
#include <CLI/CLI.hpp>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <cstdio>
#include <iostream>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

asio::awaitable<void> serve(beast::ssl_stream<beast::tcp_stream> stream) {
  auto [hec] = co_await stream.async_handshake(asio::ssl::stream_base::server, asio::as_tuple(asio::use_awaitable));
  if (hec) co_return;
  beast::flat_buffer buf;
  for (;;) {
    http::request<http::string_body> req;
    auto [rec, rn] = co_await http::async_read(stream, buf, req, asio::as_tuple(asio::use_awaitable));
    if (rec) co_return;
    if (req.body().find("confirmationToken") != std::string::npos) {
      std::cout << req.body() << std::endl;
    }
    http::response<http::empty_body> res{http::status::ok, 11};
    res.keep_alive(req.keep_alive());
    res.prepare_payload();
    auto [wec, wn] = co_await http::async_write(stream, res, asio::as_tuple(asio::use_awaitable));
    if (wec || !req.keep_alive()) co_return;
  }
}

asio::awaitable<void> accept(asio::ip::tcp::acceptor& acceptor, asio::ssl::context& tls) {
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;
    socket.set_option(asio::ip::tcp::no_delay(true));
    asio::co_spawn(acceptor.get_executor(),
                   serve(beast::ssl_stream<beast::tcp_stream>(beast::tcp_stream(std::move(socket)), tls)),
                   asio::detached);
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"HTTPS sink for the rules engine's http action benchmark"};
  std::string cert, key;
  unsigned short port = 0;
  app.add_option("--cert", cert, "certificate chain (PEM)")->required();
  app.add_option("--key", key, "private key (PEM)")->required();
  app.add_option("--port", port, "port on 127.0.0.1 (0: any)");
  CLI11_PARSE(app, argc, argv);

  asio::io_context io(1);
  asio::ssl::context tls(asio::ssl::context::tls_server);
  tls.use_certificate_chain_file(cert);
  tls.use_private_key_file(key, asio::ssl::context::pem);
  asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), port});
  std::cout << "port " << acceptor.local_endpoint().port() << std::endl;
  asio::signal_set stop(io, SIGINT, SIGTERM);
  stop.async_wait([&](auto, int) { io.stop(); });
  asio::co_spawn(io, accept(acceptor, tls), asio::detached);
  io.run();
}
