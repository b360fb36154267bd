#pragma once
// A server-side TLS connection with OpenSSL working directly on the socket (SSL_set_fd), driven by
// the worker's reactor: a call that would block says which readiness it needs, the caller waits for
// it and calls again. There is no BIO pair and no stream buffer in between (Asio's ssl::stream keeps
// four 17 KiB buffers per connection for that), and with SSL_MODE_RELEASE_BUFFERS OpenSSL frees its
// record buffers whenever they are empty: an idle connection holds the SSL object, its session and
// the socket, nothing else. Single-threaded: every call on the connection's worker.
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/role.hpp>
#include <boost/system/error_code.hpp>

#include <openssl/ssl.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>

namespace fleetcore::transport {

class tls_socket {
 public:
  using tcp = boost::asio::ip::tcp;
  using socket_type = boost::asio::basic_stream_socket<tcp, boost::asio::io_context::executor_type>;
  /// What a call that could not go on waits for.
  enum class want : std::uint8_t { nothing, read, write };

  /// Takes `sock` (non-blocking from here on) and a new SSL object of `ctx` in server mode. An SSL
  /// object that cannot be made leaves native_handle() null: the handshake then fails.
  tls_socket(socket_type sock, SSL_CTX* ctx);
  tls_socket(tls_socket&& other) noexcept : sock_(std::move(other.sock_)), ssl_(std::exchange(other.ssl_, nullptr)) {}
  tls_socket& operator=(tls_socket&&) = delete;
  ~tls_socket();

  SSL* native_handle() const noexcept { return ssl_; }
  socket_type& socket() noexcept { return sock_; }
  auto get_executor() { return sock_.get_executor(); }

  /// One step of the server handshake: done (`want::nothing`, no error), needs readiness, or failed.
  want handshake(boost::system::error_code& ec);
  /// Decrypted bytes into `buf` (at most one record's worth): their count, or 0 with the readiness
  /// to wait for, or 0 with `ec` set (the peer closed, or the connection failed).
  std::size_t read_some(std::span<std::uint8_t> buf, want& w, boost::system::error_code& ec);
  /// Writes all of `data` in records: true once it is all written. Otherwise `w` is the readiness to
  /// wait for and the same bytes (at any address) must be written again, or `ec` is set.
  bool write(std::span<const std::uint8_t> data, want& w, boost::system::error_code& ec);

  /// The thread's buffer for gathering one record's worth of plaintext (16 KiB) before write(): a
  /// write fills it and is done with it before returning (a chunk to retry is re-gathered or copied).
  static std::span<std::uint8_t, 16384> staging() noexcept {
    static thread_local std::array<std::uint8_t, 16384> buffer;
    return buffer;
  }

  /// Runs `handler(ec)` once the socket has the readiness `w` asks for (w is read or write).
  template <class Handler>
  void async_wait(want w, Handler&& handler) {
    sock_.async_wait(w == want::write ? socket_type::wait_write : socket_type::wait_read,
                     std::forward<Handler>(handler));
  }

  // --- Asio's AsyncStream, for Beast (the WebSocket stream and HTTP reads and writes on top) ---

  using executor_type = socket_type::executor_type;

  /// Decrypted bytes into the first non-empty buffer of `buffers`; completes (never inline) with the
  /// count or the error. `buffers` must stay valid until then, as for any Asio read.
  template <class MutableBufferSequence, class ReadHandler>
  auto async_read_some(const MutableBufferSequence& buffers, ReadHandler&& handler) {
    return boost::asio::async_initiate<ReadHandler, void(boost::system::error_code, std::size_t)>(
        [this](auto h, const MutableBufferSequence& b) { this->read_op(std::move(h), first_buffer(b)); }, handler,
        buffers);
  }

  /// Encrypts up to one record's worth of `buffers` (gathered into a per-thread buffer; after a
  /// would-block, the same bytes are gathered again from `buffers`, which stay valid, as for any
  /// Asio write) and completes, never inline, with the count written.
  template <class ConstBufferSequence, class WriteHandler>
  auto async_write_some(const ConstBufferSequence& buffers, WriteHandler&& handler) {
    return boost::asio::async_initiate<WriteHandler, void(boost::system::error_code, std::size_t)>(
        [this](auto h, const ConstBufferSequence& b) { this->write_op(std::move(h), b); }, handler, buffers);
  }

  /// Runs the whole handshake, then `handler(ec)`. `handler` must keep this socket alive.
  template <class Handler>
  void async_handshake(Handler handler) {
    boost::system::error_code ec;
    want w = handshake(ec);
    if (w == want::nothing) return handler(ec);
    async_wait(w, [this, handler = std::move(handler)](const boost::system::error_code& ec) mutable {
      if (ec) return handler(ec);
      async_handshake(std::move(handler));
    });
  }

 private:
  /// False (and `ec` set) once the socket is closed, or if the SSL object could not be made.
  bool usable(boost::system::error_code& ec) const;
  /// Maps the result `r` of an SSL call: the readiness it needs, or `ec` set.
  want check(int r, boost::system::error_code& ec);

  template <class MutableBufferSequence>
  static boost::asio::mutable_buffer first_buffer(const MutableBufferSequence& buffers) {
    for (auto it = boost::asio::buffer_sequence_begin(buffers); it != boost::asio::buffer_sequence_end(buffers); ++it)
      if (boost::asio::mutable_buffer b(*it); b.size()) return b;
    return {};
  }

  template <class Handler>
  void complete(Handler h, boost::system::error_code ec, std::size_t n) {
    auto ex = boost::asio::get_associated_executor(h, sock_.get_executor());
    boost::asio::post(ex, [h = std::move(h), ec, n]() mutable { h(ec, n); });
  }

  template <class Handler>
  void read_op(Handler h, boost::asio::mutable_buffer b) {
    if (b.size() == 0) return complete(std::move(h), {}, 0);
    boost::system::error_code ec;
    want w;
    std::size_t n = read_some(std::span(static_cast<std::uint8_t*>(b.data()), b.size()), w, ec);
    if (w == want::nothing) return complete(std::move(h), ec, n);
    async_wait(w, [this, h = std::move(h), b](const boost::system::error_code& ec) mutable {
      if (ec) return h(ec, std::size_t{0});
      read_op(std::move(h), b);
    });
  }

  template <class Handler, class ConstBufferSequence>
  void write_op(Handler h, const ConstBufferSequence& buffers) {
    auto staging = tls_socket::staging();
    std::size_t n = boost::asio::buffer_copy(boost::asio::buffer(staging.data(), staging.size()), buffers);
    if (n == 0) return complete(std::move(h), {}, 0);
    boost::system::error_code ec;
    want w;
    if (write(std::span<const std::uint8_t>(staging.data(), n), w, ec)) return complete(std::move(h), {}, n);
    if (w == want::nothing) return complete(std::move(h), ec, 0);
    async_wait(w, [this, h = std::move(h), buffers](const boost::system::error_code& ec) mutable {
      if (ec) return h(ec, std::size_t{0});
      write_op(std::move(h), buffers);
    });
  }

  socket_type sock_;
  SSL* ssl_ = nullptr;
};

/// Beast closes the socket this way when a WebSocket operation times out.
inline void beast_close_socket(tls_socket& s) {
  boost::system::error_code ec;
  s.socket().close(ec);
}

/// Beast's WebSocket close over a tls_socket: the TCP connection is shut down and closed (no TLS
/// close_notify, as for every other connection the broker closes).
void teardown(boost::beast::role_type, tls_socket& s, boost::system::error_code& ec);

template <class TeardownHandler>
void async_teardown(boost::beast::role_type role, tls_socket& s, TeardownHandler&& handler) {
  boost::system::error_code ec;
  teardown(role, s, ec);
  boost::asio::post(s.get_executor(), [h = std::forward<TeardownHandler>(handler), ec]() mutable { h(ec); });
}

}  // namespace fleetcore::transport
