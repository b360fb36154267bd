#pragma once
// Byte I/O of one MQTT connection over a plain socket, a TLS stream or a WebSocket. The protocol is
// in broker::client_connection; this class only reads, writes and closes.
#include "broker/broker.hpp"
#include "broker/client_connection.hpp"
#include "transport/acceptor.hpp"
#include "transport/tls_socket.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/websocket.hpp>

#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <type_traits>

namespace fleetcore::transport {

using tcp = boost::asio::ip::tcp;
using wss_stream = boost::beast::websocket::stream<tls_socket>;

/// Stream is worker_socket (mqtt), tls_socket (mqtts) or wss_stream (wss).
template <typename Stream>
class stream_connection final : public broker::client_connection {
 public:
  static constexpr bool plain = std::is_same_v<Stream, worker_socket>;
  static constexpr bool direct_tls = std::is_same_v<Stream, tls_socket>;

  stream_connection(broker::broker& b, broker::worker& w, Stream stream, broker::connection_info info)
      : client_connection(b, w, std::move(info)), stream_(std::move(stream)) {}

  Stream& stream() noexcept { return stream_; }
  /// Holds the connection's pending-authentication slot until CONNECT is accepted or it closes.
  void hold(admission::ticket t) { ticket_ = std::make_unique<admission::ticket>(std::move(t)); }

  /// Starts reading; the stream's handshakes are done.
  void start() {
    transport_ready();
    if constexpr (plain) {
      boost::system::error_code ec;
      stream_.non_blocking(true, ec);
      stream_.set_option(tcp::no_delay(true), ec);
    } else if constexpr (!direct_tls) {
      buffer_.resize(4096);
    }
    start_reading();
  }

 protected:
  void start_reading() override {
    if constexpr (plain || direct_tls) {
      read_ready();
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
    if constexpr (plain) {
      out_ = std::move(buffers);
      out_index_ = 0;
      out_offset_ = 0;
      write_plain();
    } else if constexpr (direct_tls) {
      out_ = std::move(buffers);
      out_index_ = 0;
      out_offset_ = 0;
      write_tls();
    } else {
      // TLS and WebSocket copy into records/frames anyway: hand them one contiguous buffer, so the
      // write is not split into many small steps.
      flat_.clear();
      for (const auto& b : buffers) {
        auto* p = static_cast<const std::uint8_t*>(b.data());
        flat_.insert(flat_.end(), p, p + b.size());
      }
      auto handler = [self = shared_this()](const boost::system::error_code& ec, std::size_t) {
        if (self->flat_.capacity() > 256 * 1024) std::vector<std::uint8_t>().swap(self->flat_);
        self->on_write_done(ec);
      };
      if constexpr (std::is_same_v<Stream, wss_stream>)
        stream_.async_write(boost::asio::buffer(flat_), std::move(handler));
      else
        boost::asio::async_write(stream_, boost::asio::buffer(flat_), std::move(handler));
    }
  }

  void on_authenticated() override { ticket_.reset(); }

  void close_transport() override {
    boost::system::error_code ec;
    auto& sock = lowest_layer();
    sock.shutdown(worker_socket::shutdown_both, ec);
    sock.close(ec);
    boost::asio::post(sock.get_executor(), [self = shared_this()] { self->on_transport_closed(); });
  }

 private:
  std::shared_ptr<stream_connection> shared_this() {
    return std::static_pointer_cast<stream_connection>(shared_from_this());
  }

  worker_socket& lowest_layer() {
    if constexpr (plain)
      return stream_;
    else if constexpr (direct_tls)
      return stream_.socket();
    else
      return stream_.next_layer().socket();
  }

  /// TLS: gathers the batch into a per-thread buffer one record's worth at a time and writes it. Only
  /// a chunk OpenSSL could not finish is copied to the heap (`flat_`), to be written again once the
  /// socket is writable, and that copy is freed once it is written. (Not the worker's scratch
  /// buffer: a write can start while a read's bytes are still in it, when a packet closes the
  /// connection.)
  void write_tls() {
    auto staging = tls_socket::staging();
    while (!flat_.empty() || out_index_ < out_.size()) {
      std::span<const std::uint8_t> chunk;
      if (!flat_.empty()) {
        chunk = flat_;
      } else {
        std::size_t n = 0;
        while (out_index_ < out_.size() && n < staging.size()) {
          auto* p = static_cast<const std::uint8_t*>(out_[out_index_].data()) + out_offset_;
          std::size_t take = std::min(out_[out_index_].size() - out_offset_, staging.size() - n);
          std::memcpy(staging.data() + n, p, take);
          n += take;
          out_offset_ += take;
          if (out_offset_ == out_[out_index_].size()) {
            ++out_index_;
            out_offset_ = 0;
          }
        }
        chunk = std::span<const std::uint8_t>(staging.data(), n);
      }
      boost::system::error_code ec;
      tls_socket::want w;
      if (stream_.write(chunk, w, ec)) {
        if (!flat_.empty()) std::vector<std::uint8_t>().swap(flat_);
        continue;
      }
      if (w == tls_socket::want::nothing) {
        out_ = {};
        std::vector<std::uint8_t>().swap(flat_);
        return on_write_done(ec);
      }
      if (flat_.empty()) flat_.assign(chunk.begin(), chunk.end());
      stream_.async_wait(w, [self = shared_this()](const boost::system::error_code& ec) {
        if (ec) {
          self->out_ = {};
          std::vector<std::uint8_t>().swap(self->flat_);
          return self->on_write_done(ec);
        }
        self->write_tls();
      });
      return;
    }
    out_ = {};
    on_write_done({});
  }

  /// Plain TCP and TLS: drain the socket into the worker's scratch buffer (TLS: OpenSSL decrypts
  /// into it), then wait for the readiness the transport asks for, so an idle connection holds no
  /// read buffer. Reads until the socket would block (the reactor is edge-triggered) or a few rounds
  /// for fairness. TLS may ask for writability (a record to send first while our writes are blocked).
  void read_ready() {
    if (in_read_loop_ || wait_pending_) return;
    in_read_loop_ = true;
    auto scratch = home().scratch();
    for (int round = 0; round < 8; ++round) {
      boost::system::error_code ec;
      tls_socket::want w = tls_socket::want::nothing;
      std::size_t n;
      if constexpr (plain) {
        n = stream_.read_some(boost::asio::buffer(scratch.data(), scratch.size()), ec);
        if (ec == boost::asio::error::would_block) {
          ec = {};
          w = tls_socket::want::read;
        }
      } else {
        n = stream_.read_some(std::span(scratch.data(), scratch.size()), w, ec);
      }
      if (w != tls_socket::want::nothing) {
        in_read_loop_ = false;
        wait_pending_ = true;
        wait_for(w, [self = shared_this()](const boost::system::error_code& ec) {
          self->wait_pending_ = false;
          if (ec) return self->on_transport_closed();
          self->read_ready();
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
    boost::asio::post(stream_.get_executor(), [self = shared_this()] { self->read_ready(); });
  }

  template <class Handler>
  void wait_for(tls_socket::want w, Handler&& h) {
    if constexpr (plain)
      stream_.async_wait(w == tls_socket::want::write ? worker_socket::wait_write : worker_socket::wait_read,
                         std::forward<Handler>(h));
    else
      stream_.async_wait(w, std::forward<Handler>(h));
  }

  /// Plain TCP: gather-write the whole batch with sendmsg (up to 1024 buffers a call) until the
  /// kernel would block, then wait for writability. Asio's composed write sends 64 buffers per step
  /// and queues each step behind every other ready handler, which starves a busy subscriber.
  void write_plain() {
    constexpr std::size_t max_iov = 1024;
    iovec iov[max_iov];
    while (out_index_ < out_.size()) {
      std::size_t n = 0;
      for (std::size_t i = out_index_; i < out_.size() && n < max_iov; ++i, ++n) {
        std::size_t skip = i == out_index_ ? out_offset_ : 0;
        iov[n].iov_base = const_cast<std::uint8_t*>(static_cast<const std::uint8_t*>(out_[i].data()) + skip);
        iov[n].iov_len = out_[i].size() - skip;
      }
      msghdr msg{};
      msg.msg_iov = iov;
      msg.msg_iovlen = n;
      ssize_t sent = ::sendmsg(stream_.native_handle(), &msg, MSG_NOSIGNAL);
      if (sent < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
          stream_.async_wait(worker_socket::wait_write, [self = shared_this()](const boost::system::error_code& ec) {
            if (ec) return self->on_write_done(ec);
            self->write_plain();
          });
          return;
        }
        out_ = {};
        return on_write_done(boost::system::error_code(errno, boost::system::system_category()));
      }
      auto left = static_cast<std::size_t>(sent);
      while (left > 0) {
        std::size_t avail = out_[out_index_].size() - out_offset_;
        if (left >= avail) {
          left -= avail;
          ++out_index_;
          out_offset_ = 0;
        } else {
          out_offset_ += left;
          left = 0;
        }
      }
    }
    out_ = {};
    on_write_done({});
  }

  Stream stream_;
  std::unique_ptr<admission::ticket> ticket_;  // until authenticated; nothing once idle
  // Each kind of stream has only the members it uses.
  static constexpr bool websocket = !plain && !direct_tls;
  template <int>
  struct none {};
  [[no_unique_address]] std::conditional_t<websocket, std::vector<std::uint8_t>, none<0>> buffer_;  // WebSocket reads
  // WebSocket writes; TLS: a chunk waiting for writability.
  [[no_unique_address]] std::conditional_t<plain, none<1>, std::vector<std::uint8_t>> flat_;
  // Plain TCP and TLS: the write in progress (a new vector with each write: none kept while idle).
  [[no_unique_address]] std::conditional_t<websocket, none<2>, std::vector<boost::asio::const_buffer>> out_;
  std::size_t out_index_ = 0;
  std::size_t out_offset_ = 0;
  bool read_pending_ = false;
  bool wait_pending_ = false;
  bool in_read_loop_ = false;
};

}  // namespace fleetcore::transport
