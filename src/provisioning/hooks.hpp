#pragma once
// Pre-provisioning hooks (the Guide's pre-provisioning-hook.md). AWS calls a Lambda function before a
// fleet provisioning template provisions a device; self-hosted there is no Lambda, so a template's
// `preProvisioningHook.targetArn` is looked up in the configuration (`[provisioning.hooks]`, ARN →
// https URL), or is itself an https:// URL (a fleetcore extension). The hook is POSTed AWS's input,
// {claimCertificateId, certificateId, certificatePem, templateArn, clientId, parameters}, and must
// answer within 5 s with {allowProvisioning: true, parameterOverrides?: {k: v}}; anything else — a
// refusal, an error status, an unreadable body, no answer in time — denies the provisioning.
//
// Threads: the caller has its own thread and io_context (a slow hook never holds the API thread);
// `done` runs on that thread.
#include "net/http_client.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>

namespace fleetcore::provisioning {

struct hook_settings {
  /// targetArn → https URL.
  std::map<std::string, std::string, std::less<>> targets;
  /// Extra CA certificates (PEM) trusted for hook endpoints, beside the system's.
  std::string ca_file;
  std::chrono::milliseconds timeout{5000};
};

struct hook_verdict {
  bool allowed = false;
  std::map<std::string, std::string> overrides;  // parameterOverrides (string values)
  std::string reason;                            // why not, for the log and the device's errorMessage
};

/// A hook's HTTP answer read as AWS reads a Lambda's return value. Pure: unit-tested.
hook_verdict read_hook_answer(const net::http_outcome& o);

class hook_caller {
 public:
  /// Throws std::runtime_error if `ca_file` cannot be read.
  explicit hook_caller(hook_settings s);
  ~hook_caller();
  hook_caller(const hook_caller&) = delete;
  hook_caller& operator=(const hook_caller&) = delete;

  /// The URL that `target` names: its configured mapping, or itself when it is an https:// URL.
  std::optional<std::string> url_of(std::string_view target) const;

  /// POSTs `input` (the hook's JSON input) to `url`; `done` gets the verdict on the caller's thread,
  /// once, within the timeout.
  void call(std::string url, std::string input, std::function<void(hook_verdict)> done);

 private:
  hook_settings settings_;
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  boost::asio::ssl::context tls_;
  std::unique_ptr<net::http_client> http_;
  std::thread thread_;
};

}  // namespace fleetcore::provisioning
