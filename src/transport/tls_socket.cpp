#include "transport/tls_socket.hpp"

#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>

#include <openssl/err.h>

#include <cerrno>

namespace fleetcore::transport {

tls_socket::tls_socket(socket_type sock, SSL_CTX* ctx) : sock_(std::move(sock)) {
  boost::system::error_code ec;
  sock_.non_blocking(true, ec);
  ssl_ = ec ? nullptr : SSL_new(ctx);
  if (!ssl_) return;
  // Release the record buffers whenever they are empty; a write retried after WANT_WRITE may come
  // from another address (the caller keeps a copy only while it waits).
  SSL_set_mode(ssl_, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  // Read what the socket has in one recv, not a record header then its body (two per record).
  SSL_set_read_ahead(ssl_, 1);
  SSL_set_accept_state(ssl_);
  if (SSL_set_fd(ssl_, sock_.native_handle()) != 1) {
    SSL_free(ssl_);
    ssl_ = nullptr;
  }
}

tls_socket::~tls_socket() {
  if (ssl_) SSL_free(ssl_);
}

tls_socket::want tls_socket::check(int r, boost::system::error_code& ec) {
  const int saved_errno = errno;
  switch (SSL_get_error(ssl_, r)) {
    case SSL_ERROR_WANT_READ: return want::read;
    case SSL_ERROR_WANT_WRITE: return want::write;
    case SSL_ERROR_ZERO_RETURN: ec = boost::asio::error::eof; break;  // close_notify
    case SSL_ERROR_SYSCALL:
      ec = saved_errno ? boost::system::error_code(saved_errno, boost::system::system_category())
                       : boost::system::error_code(boost::asio::error::eof);
      break;
    default: {
      unsigned long e = ERR_peek_last_error();
      ec = e ? boost::system::error_code(static_cast<int>(e), boost::asio::error::get_ssl_category())
             : boost::system::error_code(boost::asio::ssl::error::unexpected_result);
    }
  }
  // The error queue is the thread's, shared by every connection of this worker: leave it empty.
  ERR_clear_error();
  return want::nothing;
}

bool tls_socket::usable(boost::system::error_code& ec) const {
  // OpenSSL holds the descriptor's number, not the socket: once the socket is closed that number
  // may already belong to another connection, so no SSL call may run after it.
  if (!ssl_)
    ec = boost::asio::error::no_memory;
  else if (!sock_.is_open())
    ec = boost::asio::error::bad_descriptor;
  return !ec;
}

tls_socket::want tls_socket::handshake(boost::system::error_code& ec) {
  if (!usable(ec)) return want::nothing;
  ERR_clear_error();
  int r = SSL_do_handshake(ssl_);
  return r == 1 ? want::nothing : check(r, ec);
}

std::size_t tls_socket::read_some(std::span<std::uint8_t> buf, want& w, boost::system::error_code& ec) {
  std::size_t n = 0;
  w = want::nothing;
  if (!usable(ec)) return 0;
  ERR_clear_error();
  int r = SSL_read_ex(ssl_, buf.data(), buf.size(), &n);
  w = r == 1 ? want::nothing : check(r, ec);
  return r == 1 ? n : 0;
}

bool tls_socket::write(std::span<const std::uint8_t> data, want& w, boost::system::error_code& ec) {
  std::size_t n = 0;
  w = want::nothing;
  if (!usable(ec)) return false;
  ERR_clear_error();
  int r = SSL_write_ex(ssl_, data.data(), data.size(), &n);
  if (r == 1) {
    w = want::nothing;
    return true;
  }
  w = check(r, ec);
  return false;
}

void teardown(boost::beast::role_type, tls_socket& s, boost::system::error_code& ec) {
  s.socket().shutdown(tls_socket::socket_type::shutdown_both, ec);
  s.socket().close(ec);
}

}  // namespace fleetcore::transport
