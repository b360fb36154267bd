#pragma once
// The AWS IoT API over HTTPS: SigV4-authenticated requests, routed by the service they are signed for
// and then by method and path, as botocore's service models declare them, to the operation handlers
// the owning modules registered (`serve`); answered with AWS-shaped JSON and errors.
//
// Threads: one thread of its own runs the listener and every request; operations may wait for the
// store's group commit without holding up the MQTT workers. It is also the registry's control
// thread (`post` runs work there).
#include "api/admin_keys.hpp"
#include "api/operations.hpp"
#include "api/routes.hpp"
#include "common/aws_api.hpp"
#include "common/clock.hpp"
#include "common/http_exchange.hpp"
#include "common/metrics.hpp"
#include "transport/acceptor.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>

#include <functional>
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

  using response = common::aws_response;
  /// Serves the operations a module owns (see operation_table::add); before start().
  void serve(const common::aws_operations& ops) { operations_.add(ops); }
  /// The operations served, for the device HTTPS data plane (API thread).
  operation_table& operations() { return operations_; }
  /// Serves unsigned GETs under `path_prefix` with `fn(rest of the path)`: capability URLs such as a
  /// topic rule destination's enableUrl, opened in a browser, whose unguessable token is the
  /// authorization. A signed request to the same path is routed as usual. Before start().
  void serve_capability_url(std::string path_prefix, std::function<response(std::string_view rest)> fn) {
    capability_urls_.emplace_back(std::move(path_prefix), std::move(fn));
  }
  /// fleetcore's own endpoints beside AWS's (documented extensions), under `path_prefix`:
  /// `fn(method, rest of the path, body, peer address)`. A `signed_only` endpoint is an admin's and
  /// needs a SigV4 signature (for service iot) like any operation; otherwise it is a device's, which
  /// authenticates itself (unsigned requests reach it). Before start().
  using extension_fn =
      std::function<response(std::string_view method, std::string_view rest, std::string_view body, std::string_view peer)>;
  void serve_extension(std::string path_prefix, bool signed_only, extension_fn fn) {
    extensions_.push_back({std::move(path_prefix), signed_only, std::move(fn)});
  }
  /// Hands the requests `accepts` takes (by their head: method, target, headers) to `handle` as
  /// streams, before any body is read: APIs whose bodies may exceed memory (the object store). They
  /// authenticate the request themselves. Before start().
  using head_view = std::vector<std::pair<std::string_view, std::string_view>>;
  void serve_streams(std::function<bool(std::string_view method, std::string_view target, const head_view& headers)> accepts,
                     std::function<void(std::shared_ptr<common::http_exchange>)> handle) {
    stream_accepts_ = std::move(accepts);
    stream_handler_ = std::move(handle);
  }
  bool streamed(std::string_view method, std::string_view target, const head_view& headers) const {
    return stream_accepts_ && stream_accepts_(method, target, headers);
  }
  void stream(std::shared_ptr<common::http_exchange> x) { stream_handler_(std::move(x)); }
  /// Refuses requests signed for another region than `region` (aws.region); before start(). Until
  /// called, any region is accepted.
  void require_region(std::string region) { region_ = std::move(region); }
  /// Handles one request (on the API thread): authentication, routing, the operation. `peer`: the
  /// client's address.
  response handle(std::string_view method, std::string_view target,
                  const std::vector<std::pair<std::string_view, std::string_view>>& headers, std::string_view body,
                  std::string_view peer = {});

 private:
  void accepted(boost::asio::ip::tcp::socket s);

  boost::asio::io_context io_;
  transport::acceptor_set acceptors_;
  boost::asio::ssl::context* tls_;
  operation_table operations_;
  admin_keys& keys_;
  common::clock& clock_;
  std::string region_;
  std::vector<std::pair<std::string, std::function<response(std::string_view)>>> capability_urls_;
  struct extension {
    std::string prefix;
    bool signed_only = true;
    extension_fn fn;
  };
  std::vector<extension> extensions_;
  std::function<bool(std::string_view, std::string_view, const head_view&)> stream_accepts_;
  std::function<void(std::shared_ptr<common::http_exchange>)> stream_handler_;
  std::thread thread_;
  common::counter requests_, auth_failures_;
};

}  // namespace fleetcore::api
