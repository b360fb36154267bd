#pragma once
// The AWS IoT control-plane API over HTTPS: SigV4-authenticated requests, routed as botocore's
// service model declares them, answered by the registry with AWS-shaped JSON and errors.
//
// Threads: one thread of its own runs the listener and every request; operations may wait for the
// store's group commit without holding up the MQTT workers. It is also the registry's control
// thread (`post` runs work there).
#include "api/admin_keys.hpp"
#include "common/clock.hpp"
#include "common/metrics.hpp"
#include "api/routes.hpp"
#include "transport/acceptor.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>

#include <functional>
#include <map>
#include <string>
#include <thread>

namespace fleetcore::api {

class api_server {
 public:
  /// Binds immediately; throws boost::system::system_error if it cannot. `tls` null: plain HTTP
  /// (tests and benchmarks on loopback only).
  api_server(const std::vector<transport::bind_address>& addrs, std::uint16_t port, boost::asio::ssl::context* tls,
             admin_keys& keys, common::clock& clock);
  ~api_server();

  void start();
  void stop();
  std::vector<boost::asio::ip::tcp::endpoint> local_endpoints() const { return acceptors_.local_endpoints(); }
  /// Runs `fn` on the API thread.
  void post(std::function<void()> fn);
  void register_metrics(common::registry& m) const;

  struct response {
    unsigned status = 200;
    std::string body;
    std::string error_type;  // x-amzn-ErrorType
  };
  /// Runs an authenticated, bound request of one service (on the API thread).
  using handler = std::function<response(const route& r, const boost::json::object& input)>;
  /// Serves the routes of `service` ("iot", "iotdata") with `h`; before start().
  void serve(std::string service, handler h) { handlers_[std::move(service)] = std::move(h); }
  /// Refuses requests signed for another region than `region` (aws.region); before start(). Until
  /// called, any region is accepted.
  void require_region(std::string region) { region_ = std::move(region); }
  /// Handles one request (on the API thread): authentication, routing, the operation.
  response handle(std::string_view method, std::string_view target,
                  const std::vector<std::pair<std::string_view, std::string_view>>& headers, std::string_view body);

 private:
  void accepted(boost::asio::ip::tcp::socket s);

  boost::asio::io_context io_;
  transport::acceptor_set acceptors_;
  boost::asio::ssl::context* tls_;
  std::map<std::string, handler, std::less<>> handlers_;
  admin_keys& keys_;
  common::clock& clock_;
  std::string region_;
  std::thread thread_;
  common::counter requests_, auth_failures_;
};

}  // namespace fleetcore::api
