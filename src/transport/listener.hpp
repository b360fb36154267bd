#pragma once
#include "broker/broker.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <memory>
#include <string>

namespace fleetcore::transport {

enum class listener_kind { mqtt, mqtts, wss };

std::string_view to_string(listener_kind k) noexcept;

/// Accepts connections on one endpoint and spreads them over the broker's workers round-robin.
class listener {
 public:
  /// Binds immediately (so port 0 resolves); throws boost::system::system_error if it cannot.
  /// `tls` is required for mqtts and wss and must outlive the listener.
  listener(broker::broker& b, listener_kind kind, const boost::asio::ip::tcp::endpoint& ep,
           boost::asio::ssl::context* tls);
  void start();
  void stop();
  boost::asio::ip::tcp::endpoint local_endpoint() const { return acceptor_.local_endpoint(); }
  listener_kind kind() const noexcept { return kind_; }

 private:
  void accept();
  void on_accepted(boost::asio::ip::tcp::socket sock, broker::worker& w);

  broker::broker& broker_;
  listener_kind kind_;
  boost::asio::ssl::context* tls_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer retry_;
};

}  // namespace fleetcore::transport
