#pragma once
// A small client of fleetcore's control-plane API for the `fleetcore` CLI: SigV4-signed JSON requests
// over HTTPS, verified against the server's CA.
#include <boost/json.hpp>

#include <filesystem>
#include <string>

namespace fleetcore::cli {

struct api_response {
  unsigned status = 0;
  std::string error_type;  // x-amzn-ErrorType, empty on success
  boost::json::value body;
};

class api_client {
 public:
  /// Reads what a local server left in `data_dir`: the API address (listeners.json), the admin
  /// credentials (aws-credentials, unless AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are set) and the CA
  /// that signed the server certificate. Throws std::runtime_error naming what is missing.
  explicit api_client(const std::filesystem::path& data_dir, std::string endpoint = {});

  /// Sends one request; throws std::runtime_error on a network or TLS failure.
  api_response call(const std::string& method, const std::string& target, const boost::json::object& body = {},
                    const std::string& principal_header = {});
  /// A json-protocol operation (POST / with X-Amz-Target), signed for `service` (e.g. timestream).
  api_response call_json(const std::string& service, const std::string& amz_target, const boost::json::object& body);

  const std::filesystem::path& ca_file() const noexcept { return ca_; }

 private:
  api_response send(const std::string& method, const std::string& target, const boost::json::object& body,
                    const std::string& principal_header, const std::string& service, const std::string& amz_target);
  std::string host_, port_, key_id_, secret_, region_ = "us-east-1";
  std::filesystem::path ca_;
};

/// `fleetcore telemetry query`: runs a Timestream query on the telemetry store and prints the rows as
/// tab-separated text with a header line (every page). Returns the process exit code.
int telemetry_query(const std::filesystem::path& data_dir, const std::string& query);

/// `fleetcore device create`: a thing, its ACTIVE certificate and key, the standard least-privilege
/// policy attached, and the files a device needs in `out`. Returns the process exit code.
/// `fleetcore bootstrap register`: registers the devices of `file` (one JSON object per line:
/// {"deviceId", "secret", "parameters"?}) for the bootstrap flow with fleet provisioning template
/// `template_name`, 1,000 per request. Returns the process exit code.
int register_bootstrap(const std::filesystem::path& data_dir, const std::filesystem::path& file,
                       const std::string& template_name);
int create_device(const std::filesystem::path& data_dir, const std::string& name, const std::filesystem::path& out);

}  // namespace fleetcore::cli
