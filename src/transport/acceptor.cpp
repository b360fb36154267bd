#include "transport/acceptor.hpp"

#include "common/log.hpp"

#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>

#include <stdexcept>

namespace fleetcore::transport {

namespace ip = boost::asio::ip;

std::vector<bind_address> bind_addresses(const std::string& host) {
  if (host.empty() || host == "::") return {{ip::address_v6::any(), false}};
  // RFC 6761: localhost is the loopback interface, both families, whatever the hosts file lists first.
  if (host == "localhost") return {{ip::address_v4::loopback(), false}, {ip::address_v6::loopback(), true}};
  boost::system::error_code ec;
  auto literal = ip::make_address(host, ec);
  if (!ec) return {{literal, false}};
  boost::asio::io_context io;
  ip::tcp::resolver resolver(io);
  auto results = resolver.resolve(host, "", ip::resolver_base::passive, ec);
  if (ec) throw std::invalid_argument("cannot resolve listener host '" + host + "': " + ec.message());
  std::vector<bind_address> out;
  for (const auto& r : results) {
    auto a = unmapped(r.endpoint().address());
    bool seen = false;
    for (const auto& o : out) seen = seen || o.address == a;
    if (!seen) out.push_back({a, false});
  }
  if (out.empty()) throw std::invalid_argument("listener host '" + host + "' has no address");
  return out;
}

ip::address unmapped(const ip::address& a) {
  if (a.is_v6() && a.to_v6().is_v4_mapped()) return ip::make_address_v4(ip::v4_mapped, a.to_v6());
  return a;
}

std::string to_string(const tcp::endpoint& ep) {
  auto a = unmapped(ep.address());
  return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(ep.port());
}

namespace {

/// Opens and binds one acceptor; IPv6 "any" also takes IPv4 clients (IPV6_V6ONLY off).
boost::system::error_code open_bind(tcp::acceptor& a, const tcp::endpoint& ep, int backlog) {
  boost::system::error_code ec;
  a.open(ep.protocol(), ec);
  if (ec) return ec;
  a.set_option(tcp::acceptor::reuse_address(true), ec);
  if (ep.address().is_v6()) a.set_option(ip::v6_only(!ep.address().is_unspecified()), ec);
  a.bind(ep, ec);
  if (!ec) a.listen(backlog, ec);
  if (ec) {
    boost::system::error_code ignored;
    a.close(ignored);
  }
  return ec;
}

bool ipv6_unavailable(const boost::system::error_code& ec) {
  return ec == boost::asio::error::address_family_not_supported || ec == boost::system::errc::address_not_available;
}

}  // namespace

acceptor_set::acceptor_set(boost::asio::io_context& io, std::string proto, const std::vector<bind_address>& addrs,
                           std::uint16_t port, int backlog)
    : io_(io), proto_(std::move(proto)) {
  // Port 0 with several addresses: the first bind picks the port, the others take the same one; if
  // it is taken on another address, start over with a new one.
  for (int attempt = 0; attempt < 20; ++attempt) {
    acceptors_.clear();
    std::uint16_t chosen = port;
    boost::system::error_code failure;
    std::string failed_address;
    for (const auto& b : addrs) {
      auto a = std::make_unique<one>(one{tcp::acceptor(io_), boost::asio::steady_timer(io_)});
      auto ec = open_bind(a->acceptor, {b.address, chosen}, backlog);
      if (ec && ipv6_unavailable(ec) && b.address.is_v6() && b.address.is_unspecified()) {
        FC_LOG_WARN("listener.ipv6_unavailable", "proto={} note=\"binding IPv4 only\" err=\"{}\"", proto_,
                    ec.message());
        ec = open_bind(a->acceptor, {ip::address_v4::any(), chosen}, backlog);
      }
      if (ec && b.optional && ipv6_unavailable(ec)) {
        FC_LOG_WARN("listener.address_skipped", "proto={} addr={} err=\"{}\"", proto_,
                    to_string(tcp::endpoint(b.address, chosen)), ec.message());
        continue;
      }
      if (ec) {
        failure = ec;
        failed_address = to_string(tcp::endpoint(b.address, chosen));
        break;
      }
      if (chosen == 0) chosen = a->acceptor.local_endpoint().port();
      acceptors_.push_back(std::move(a));
    }
    if (!failure) {
      if (acceptors_.empty()) throw std::runtime_error("listener " + proto_ + ": no address could be bound");
      return;
    }
    if (port != 0 || failure != boost::asio::error::address_in_use || acceptors_.empty())
      throw std::runtime_error("listener " + proto_ + ": cannot listen on " + failed_address + ": " +
                               failure.message());
  }
  throw std::runtime_error("listener " + proto_ + ": no free port common to its addresses");
}

void acceptor_set::start(accepted_fn accepted) {
  accepted_ = std::move(accepted);
  boost::asio::post(io_, [this] {
    for (auto& a : acceptors_) accept(*a);
  });
}

void acceptor_set::stop() {
  boost::asio::post(io_, [this] {
    for (auto& a : acceptors_) {
      boost::system::error_code ec;
      a->acceptor.close(ec);
      a->retry.cancel();
    }
  });
}

std::vector<tcp::endpoint> acceptor_set::local_endpoints() const {
  std::vector<tcp::endpoint> out;
  for (const auto& a : acceptors_) out.push_back(a->acceptor.local_endpoint());
  return out;
}

void acceptor_set::accept(one& a) {
  a.acceptor.async_accept([this, &a](const boost::system::error_code& ec, tcp::socket sock) {
    if (ec == boost::asio::error::operation_aborted || !a.acceptor.is_open()) return;
    if (ec) {
      // Out of descriptors and the like: the pending connection stays in the backlog, so accepting
      // again at once would fail at once, at 100% of a core. Wait, longer each time.
      errors_.inc();
      a.backoff = std::min(std::chrono::milliseconds(1000), std::max(std::chrono::milliseconds(10), a.backoff * 2));
      auto now = std::chrono::steady_clock::now();
      if (now - last_log_ >= std::chrono::seconds(1)) {
        last_log_ = now;
        FC_LOG_WARN("listener.accept_failed", "proto={} err=\"{}\" retry_ms={}", proto_, ec.message(),
                    a.backoff.count());
      }
      a.retry.expires_after(a.backoff);
      a.retry.async_wait([this, &a](const boost::system::error_code& e) {
        if (!e) accept(a);
      });
      return;
    }
    a.backoff = std::chrono::milliseconds(0);
    accepted_(std::move(sock));
    accept(a);
  });
}

admission::ticket& admission::ticket::operator=(ticket&& o) noexcept {
  if (this != &o) {
    release();
    owner_ = std::exchange(o.owner_, nullptr);
    addr_ = std::move(o.addr_);
  }
  return *this;
}

void admission::ticket::release() noexcept {
  if (auto* a = std::exchange(owner_, nullptr)) a->release(addr_);
}

std::optional<admission::ticket> admission::admit(const ip::address& from, refusal* why) {
  auto addr = unmapped(from);
  std::lock_guard lock(mutex_);
  if (limits_.max_pending && pending_.value() >= static_cast<std::int64_t>(limits_.max_pending)) {
    refused_global_.inc();
    if (why) *why = refusal::global;
    return std::nullopt;
  }
  auto& n = by_address_[addr.to_string()];
  if (limits_.max_pending_per_address && n >= limits_.max_pending_per_address) {
    refused_per_address_.inc();
    if (why) *why = refusal::per_address;
    return std::nullopt;
  }
  ++n;
  pending_.add();
  if (why) *why = refusal::none;
  return ticket(this, addr);
}

void admission::release(const ip::address& a) noexcept {
  std::lock_guard lock(mutex_);
  auto it = by_address_.find(a.to_string());
  if (it != by_address_.end() && --it->second == 0) by_address_.erase(it);
  pending_.sub();
}

void admission::register_metrics(common::registry& r) const {
  r.add(pending_, "fleetcore_connections_pending", "",
        "Connections accepted that have not authenticated yet (TLS, WebSocket upgrade, MQTT CONNECT).");
  r.add(refused_global_, "fleetcore_connections_refused_total", "reason=\"pending_limit\"",
        "Connections closed at accept: too many connections pending authentication in all "
        "(limits.max_pending_connections) or from one address (limits.max_pending_connections_per_address).");
  r.add(refused_per_address_, "fleetcore_connections_refused_total", "reason=\"pending_per_address_limit\"", "");
}

}  // namespace fleetcore::transport
