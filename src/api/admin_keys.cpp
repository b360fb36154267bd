#include "api/admin_keys.hpp"

#include <boost/json.hpp>
#include <openssl/rand.h>

#include <fcntl.h>
#include <fstream>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace fleetcore::api {

namespace json = boost::json;

namespace {

std::string random_chars(std::size_t n, std::string_view alphabet) {
  std::string s;
  unsigned char b[64];
  while (s.size() < n) {
    RAND_bytes(b, sizeof(b));
    for (unsigned char c : b) {
      // Rejection sampling keeps the distribution uniform.
      if (c >= 256 - 256 % alphabet.size()) continue;
      s += alphabet[c % alphabet.size()];
      if (s.size() == n) break;
    }
  }
  return s;
}

void write_private(const std::filesystem::path& path, const std::string& text) {
  auto tmp = path;
  tmp += ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) throw std::runtime_error("cannot write " + tmp.string());
  ::fchmod(fd, 0600);
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) throw std::runtime_error("cannot write " + tmp.string());
  std::filesystem::rename(tmp, path);
}

json::array read_keys(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) return {};
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  boost::system::error_code ec;
  auto v = json::parse(text, ec);
  if (ec || !v.is_object()) throw std::runtime_error(file.string() + " is not valid JSON");
  auto* keys = v.as_object().if_contains("keys");
  return keys && keys->is_array() ? keys->as_array() : json::array{};
}

/// Serializes writers across processes (the server and `fleetcore admin create-key`).
struct file_lock {
  explicit file_lock(const std::filesystem::path& path) {
    fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0) ::flock(fd, LOCK_EX);
  }
  ~file_lock() {
    if (fd >= 0) ::close(fd);
  }
  int fd;
};

}  // namespace

admin_keys::admin_keys(std::filesystem::path data_dir)
    : file_(data_dir / "admin-keys.json"), credentials_(data_dir / "aws-credentials") {}

bool admin_keys::ensure_initial(std::string_view region) {
  {
    file_lock lock(file_.string() + ".lock");
    if (!read_keys(file_).empty()) return false;
  }
  access_key k = create();
  std::string ini = "[default]\naws_access_key_id = " + k.id + "\naws_secret_access_key = " + k.secret +
                    "\nregion = " + std::string(region) + "\n";
  write_private(credentials_, ini);
  return true;
}

access_key admin_keys::create() {
  access_key k{"AKIA" + random_chars(16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"),
               random_chars(40, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")};
  file_lock lock(file_.string() + ".lock");
  json::array keys = read_keys(file_);
  keys.push_back(json::object{{"accessKeyId", k.id}, {"secretAccessKey", k.secret}});
  write_private(file_, json::serialize(json::object{{"keys", std::move(keys)}}) + "\n");
  return k;
}

void admin_keys::reload_locked() {
  std::error_code ec;
  auto mtime = std::filesystem::last_write_time(file_, ec);
  if (ec || mtime == loaded_mtime_) return;
  loaded_mtime_ = mtime;
  secrets_.clear();
  for (const auto& k : read_keys(file_)) {
    if (!k.is_object()) continue;
    const auto& o = k.as_object();
    auto* id = o.if_contains("accessKeyId");
    auto* secret = o.if_contains("secretAccessKey");
    if (id && secret && id->is_string() && secret->is_string())
      secrets_[std::string(id->as_string())] = std::string(secret->as_string());
  }
}

std::optional<std::string> admin_keys::secret_of(std::string_view id) {
  std::lock_guard lock(mutex_);
  auto it = secrets_.find(std::string(id));
  if (it == secrets_.end()) {
    reload_locked();
    it = secrets_.find(std::string(id));
    if (it == secrets_.end()) return std::nullopt;
  }
  return it->second;
}

}  // namespace fleetcore::api
