#pragma once
// Pre-provisioning hooks (the Guide's pre-provisioning-hook.md). AWS calls a Lambda function before a
// fleet provisioning template provisions a device; self-hosted there is no Lambda, so a template's
// `preProvisioningHook.targetArn` is looked up in the configuration (`[provisioning.hooks]`, ARN →
// https URL), or is itself an https:// URL (a fleetcore extension). The hook is POSTed AWS's input,
// {claimCertificateId, certificateId, certificatePem, templateArn, clientId, parameters}, and must
// answer within 5 s with {allowProvisioning: true, parameterOverrides?: {k: v}}; anything else — a
// refusal, an error status, an unreadable body, no answer in time — denies the provisioning.
//
// This header has the verdict and the interface; hook_caller.hpp the HTTPS caller.
#include "net/http_client.hpp"

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

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

/// Calls hooks: hook_caller.hpp over HTTPS; tests may answer themselves.
class hooks {
 public:
  virtual ~hooks() = default;
  /// The URL that `target` names: its configured mapping, or itself when it is an https:// URL.
  virtual std::optional<std::string> url_of(std::string_view target) const = 0;
  /// POSTs `input` (the hook's JSON input) to `url`; `done` gets the verdict, once, within the
  /// timeout, on the caller's own thread.
  virtual void call(std::string url, std::string input, std::function<void(hook_verdict)> done) = 0;
};

}  // namespace fleetcore::provisioning
