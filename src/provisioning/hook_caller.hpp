#pragma once
// Pre-provisioning hooks called over HTTPS (hooks.hpp has what they answer): POSTs through the
// shared outbound client (net/http_client.hpp), verified against the system's CAs and
// `provisioning.hook_ca_file`, with a deadline that gives the verdict when the hook is silent.
//
// Threads: its own thread and io_context (a slow hook never holds the API thread); verdicts are
// given on that thread.
#include "provisioning/hooks.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>

#include <atomic>
#include <memory>
#include <thread>

namespace fleetcore::provisioning {

class hook_caller final : public hooks {
 public:
  /// Throws std::runtime_error if `ca_file` cannot be read.
  explicit hook_caller(hook_settings s);
  ~hook_caller() override;
  hook_caller(const hook_caller&) = delete;
  hook_caller& operator=(const hook_caller&) = delete;

  std::optional<std::string> url_of(std::string_view target) const override;
  /// At most `max_pending` calls wait for a verdict; a call beyond them is denied at once.
  void call(std::string url, std::string input, std::function<void(hook_verdict)> done) override;
  /// Stops the thread: pending calls are abandoned, their verdicts never given (the server is
  /// stopping; what would receive them may be gone). Idempotent; before destruction.
  void stop();

  static constexpr int max_pending = 256;

 private:
  hook_settings settings_;
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  boost::asio::ssl::context tls_;
  std::unique_ptr<net::http_client> http_;
  std::thread thread_;
  std::atomic<int> pending_{0};
  std::atomic<bool> stopped_{false};
};

}  // namespace fleetcore::provisioning
