#pragma once
// Byte I/O of one MQTT connection over a plain socket, a TLS stream or a WebSocket. The protocol is
// in broker::client_connection; this class only reads, writes and closes.
#include "broker/broker.hpp"
#include "broker/client_connection.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include <type_traits>

namespace fleetcore::transport {

using tcp = boost::asio::ip::tcp;
using tls_stream = boost::asio::ssl::stream<tcp::socket>;
using wss_stream = boost::beast::websocket::stream<tls_stream>;

template <typename Stream>
class stream_connection final : public broker::client_connection {
 public:
  static constexpr bool plain = std::is_same_v<Stream, tcp::socket>;

  stream_connection(broker::broker& b, broker::worker& w, Stream stream, broker::connection_info info)
      : client_connection(b, w, std::move(info)), stream_(std::move(stream)) {}

  Stream& stream() noexcept { return stream_; }

  /// Starts reading; the stream's handshakes are done.
  void start() {
    if constexpr (plain) {
      boost::system::error_code ec;
      stream_.non_blocking(true, ec);
      stream_.set_option(tcp::no_delay(true), ec);
    } else {
      buffer_.resize(4096);
    }
    start_reading();
  }

 protected:
  void start_reading() override {
    if constexpr (plain) {
      read_plain();
    } else {
      if (read_pending_) return;
      read_pending_ = true;
      stream_.async_read_some(boost::asio::buffer(buffer_),
                              [self = shared_this()](const boost::system::error_code& ec, std::size_t n) {
                                self->read_pending_ = false;
                                if (ec) return self->on_transport_closed();
                                if (self->on_data(std::span(self->buffer_.data(), n))) self->start_reading();
                              });
    }
  }

  void write_buffers(std::vector<boost::asio::const_buffer> buffers) override {
    auto handler = [self = shared_this()](const boost::system::error_code& ec, std::size_t) { self->on_write_done(ec); };
    if constexpr (std::is_same_v<Stream, wss_stream>)
      stream_.async_write(buffers, std::move(handler));
    else
      boost::asio::async_write(stream_, buffers, std::move(handler));
  }

  void close_transport() override {
    boost::system::error_code ec;
    auto& sock = boost::beast::get_lowest_layer(stream_);
    sock.shutdown(tcp::socket::shutdown_both, ec);
    sock.close(ec);
    boost::asio::post(sock.get_executor(), [self = shared_this()] { self->on_transport_closed(); });
  }

 private:
  std::shared_ptr<stream_connection> shared_this() {
    return std::static_pointer_cast<stream_connection>(shared_from_this());
  }

  /// Plain TCP: read readiness first, then drain the socket into the worker's scratch buffer, so an
  /// idle connection holds no read buffer. Reads until EAGAIN (the reactor is edge-triggered) or a
  /// few rounds for fairness.
  void read_plain() {
    if (in_read_loop_ || wait_pending_) return;
    in_read_loop_ = true;
    auto scratch = home().scratch();
    for (int round = 0; round < 16; ++round) {
      boost::system::error_code ec;
      std::size_t n = stream_.read_some(boost::asio::buffer(scratch.data(), scratch.size()), ec);
      if (ec == boost::asio::error::would_block) {
        in_read_loop_ = false;
        wait_pending_ = true;
        stream_.async_wait(tcp::socket::wait_read, [self = shared_this()](const boost::system::error_code& ec) {
          self->wait_pending_ = false;
          if (ec) return self->on_transport_closed();
          self->read_plain();
        });
        return;
      }
      if (ec) {
        in_read_loop_ = false;
        on_transport_closed();
        return;
      }
      if (!on_data(std::span<const std::uint8_t>(scratch.data(), n))) {
        in_read_loop_ = false;
        return;  // paused or closing: resume_reading() or close follows
      }
    }
    in_read_loop_ = false;
    boost::asio::post(stream_.get_executor(), [self = shared_this()] { self->read_plain(); });
  }

  Stream stream_;
  std::vector<std::uint8_t> buffer_;  // TLS and WebSocket only
  bool read_pending_ = false;
  bool wait_pending_ = false;
  bool in_read_loop_ = false;
};

}  // namespace fleetcore::transport
