#pragma once
// Admin access keys for the control-plane API (SigV4). They live in <data-dir>/admin-keys.json
// (mode 0600); `fleetcore admin create-key` adds one while the server runs, and the server reloads
// the file when it sees an access key id it does not know.
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace fleetcore::api {

struct access_key {
  std::string id;      // AKIA...
  std::string secret;  // 40 characters
};

class admin_keys {
 public:
  explicit admin_keys(std::filesystem::path data_dir);

  /// On first start: creates a key and writes <data-dir>/aws-credentials (an AWS shared credentials
  /// file, mode 0600) so that `AWS_SHARED_CREDENTIALS_FILE=... aws iot ...` works. Returns true if a
  /// key was created.
  bool ensure_initial(std::string_view region);
  /// Adds a new key to the file and returns it.
  access_key create();
  /// The secret of `id`; reloads the file once if `id` is unknown. Any thread.
  std::optional<std::string> secret_of(std::string_view id);

 private:
  void reload_locked();
  std::filesystem::path file_, credentials_;
  std::mutex mutex_;
  std::unordered_map<std::string, std::string> secrets_;
  std::filesystem::file_time_type loaded_mtime_{};
};

}  // namespace fleetcore::api
