#pragma once
// Where a listener binds and how it accepts: every address of one `host:port` (dual stack by
// default), one port for all of them, accept errors backed off instead of spun on, and the
// admission of connections that have not authenticated yet.
#include "common/metrics.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace fleetcore::transport {

using tcp = boost::asio::ip::tcp;

/// A connection's socket, on its worker's io_context. With the io_context's own executor instead of
/// any_io_executor the socket is 48 bytes smaller, and so is each operation pending on it (an idle
/// connection always has one: its wait for input).
using worker_socket = boost::asio::basic_stream_socket<tcp, boost::asio::io_context::executor_type>;

/// One address to bind. `optional`: skipped with a warning when this host cannot bind it (the ::1 of
/// `localhost` on a host without IPv6).
struct bind_address {
  boost::asio::ip::address address;
  bool optional = false;
};

/// The addresses a listener spec's host stands for:
/// - `localhost` (and an empty host of a loopback default): 127.0.0.1 and ::1, whatever /etc/hosts says;
/// - `::` (or an empty host): every interface, IPv6 and IPv4 on one dual-stack socket;
/// - an IP literal (`0.0.0.0`, `[::1]`, ...): that address alone;
/// - another host name: every address it resolves to.
/// Throws std::invalid_argument naming the host when it does not resolve.
std::vector<bind_address> bind_addresses(const std::string& host);

/// An address as users read it: IPv4-mapped IPv6 addresses (a dual-stack socket's IPv4 clients)
/// in their IPv4 form.
boost::asio::ip::address unmapped(const boost::asio::ip::address& a);
/// "1.2.3.4:5" or "[::1]:5".
std::string to_string(const tcp::endpoint& ep);

/// The acceptors of one listener: every address bound on the same port (port 0 picks one free port
/// for all), accepting until stop(). An accept error (out of descriptors, ...) is counted and logged
/// at most once a second, and accepting resumes after a back-off (10 ms doubling to 1 s) instead of
/// spinning. Runs on the io_context given at construction.
class acceptor_set {
 public:
  /// Binds now; throws std::runtime_error naming the address that could not be bound.
  acceptor_set(boost::asio::io_context& io, std::string proto, const std::vector<bind_address>& addrs,
               std::uint16_t port, int backlog = 4096);

  /// Accepts on every address; `accepted` receives each socket (on the acceptors' io_context, which
  /// the socket belongs to; it may be moved elsewhere with release()/assign()).
  using accepted_fn = std::function<void(tcp::socket)>;
  void start(accepted_fn accepted);
  /// Closes the acceptors (posted to their io_context).
  void stop();

  std::vector<tcp::endpoint> local_endpoints() const;
  const std::string& proto() const noexcept { return proto_; }
  /// Accept errors since start.
  const common::counter& errors() const noexcept { return errors_; }

 private:
  struct one {
    tcp::acceptor acceptor;
    boost::asio::steady_timer retry;
    std::chrono::milliseconds backoff{0};
  };
  void accept(one& a);

  boost::asio::io_context& io_;
  std::string proto_;
  std::vector<std::unique_ptr<one>> acceptors_;
  accepted_fn accepted_;
  common::counter errors_;
  std::chrono::steady_clock::time_point last_log_{};
};

/// Bounds the connections that have not authenticated yet (TCP accepted; TLS handshake, WebSocket
/// upgrade or MQTT CONNECT not done): at most `max_pending` in all and `max_pending_per_address` from
/// one source address, so idle sockets cannot use up the descriptors that devices need. Thread-safe:
/// taken on accept and on release, never on the publish path.
class admission {
 public:
  struct limits {
    std::uint32_t max_pending = 2048;             // 0 = unlimited
    std::uint32_t max_pending_per_address = 128;  // 0 = unlimited
  };
  explicit admission(limits l) : limits_(l) {}

  /// Holds one pending slot until it is released or destroyed.
  class ticket {
   public:
    ticket() = default;
    ticket(admission* a, boost::asio::ip::address addr) : owner_(a), addr_(std::move(addr)) {}
    ticket(ticket&& o) noexcept : owner_(std::exchange(o.owner_, nullptr)), addr_(std::move(o.addr_)) {}
    ticket& operator=(ticket&& o) noexcept;
    ~ticket() { release(); }
    void release() noexcept;

   private:
    admission* owner_ = nullptr;
    boost::asio::ip::address addr_;
  };

  enum class refusal { none, global, per_address };
  /// A ticket for a new connection from `from`, or the limit that refuses it (counted).
  std::optional<ticket> admit(const boost::asio::ip::address& from, refusal* why = nullptr);

  std::int64_t pending() const noexcept { return pending_.value(); }
  void register_metrics(common::registry& r) const;

 private:
  void release(const boost::asio::ip::address& a) noexcept;

  limits limits_;
  std::mutex mutex_;
  std::unordered_map<std::string, std::uint32_t> by_address_;
  common::gauge pending_;
  common::counter refused_global_, refused_per_address_;
};

}  // namespace fleetcore::transport
