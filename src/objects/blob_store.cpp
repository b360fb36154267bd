#include "objects/blob_store.hpp"

#include "common/hex.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <utility>
#include <cerrno>

namespace fleetcore::objects {

namespace fs = std::filesystem;
using boost::system::error_code;

namespace {

error_code last_error() { return {errno, boost::system::system_category()}; }
error_code errc(boost::system::errc::errc_t e) { return boost::system::errc::make_error_code(e); }

bool valid_address(std::string_view sha256) {
  return sha256.size() == 64 && std::all_of(sha256.begin(), sha256.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

error_code fsync_dir(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return last_error();
  error_code ec;
  if (::fsync(fd) != 0) ec = last_error();
  ::close(fd);
  return ec;
}

struct md_ctx_deleter {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
using md_ctx = std::unique_ptr<EVP_MD_CTX, md_ctx_deleter>;

}  // namespace

struct blob_store::writer::state {
  fs::path dir, tmp;
  int fd = -1;
  md_ctx sha{EVP_MD_CTX_new()}, md5{EVP_MD_CTX_new()};
  std::uint64_t size = 0;
  bool committed = false;
  bool failed = false;  // a write or the commit failed: the bytes are not what was hashed, never named

  ~state() {
    if (fd >= 0) ::close(fd);
    if (!committed && !tmp.empty()) ::unlink(tmp.c_str());
  }
};

blob_store::writer::writer(std::unique_ptr<state> s) : s_(std::move(s)) {}
blob_store::writer::writer(writer&&) noexcept = default;
blob_store::writer& blob_store::writer::operator=(writer&&) noexcept = default;
blob_store::writer::~writer() = default;
std::uint64_t blob_store::writer::size() const noexcept { return s_ ? s_->size : 0; }

error_code blob_store::writer::write(std::string_view bytes) {
  if (!s_ || s_->fd < 0 || s_->committed || s_->failed) return errc(boost::system::errc::bad_file_descriptor);
  while (!bytes.empty()) {
    ssize_t n = ::write(s_->fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      s_->failed = true;  // part of `bytes` may be on disk: this upload can never be named
      return last_error();
    }
    // Hashed once written, so that the address always covers exactly the file's bytes.
    EVP_DigestUpdate(s_->sha.get(), bytes.data(), static_cast<std::size_t>(n));
    EVP_DigestUpdate(s_->md5.get(), bytes.data(), static_cast<std::size_t>(n));
    bytes.remove_prefix(static_cast<std::size_t>(n));
    s_->size += static_cast<std::uint64_t>(n);
  }
  return {};
}

boost::system::result<blob> blob_store::writer::commit() {
  if (!s_ || s_->fd < 0 || s_->committed || s_->failed) return errc(boost::system::errc::bad_file_descriptor);
  s_->failed = true;  // until named: a commit is tried once (a failed fsync cannot be retried safely)
  unsigned char sha[EVP_MAX_MD_SIZE], md5[EVP_MAX_MD_SIZE];
  unsigned sha_n = 0, md5_n = 0;
  EVP_DigestFinal_ex(s_->sha.get(), sha, &sha_n);
  EVP_DigestFinal_ex(s_->md5.get(), md5, &md5_n);
  blob b{common::hex(sha, sha_n), common::hex(md5, md5_n), s_->size};
  if (::fsync(s_->fd) != 0) return last_error();
  ::close(s_->fd);
  s_->fd = -1;
  // Its address: the same bytes stored before are the same file (the rename replaces it atomically).
  fs::path shard = s_->dir / b.sha256.substr(0, 2);
  std::error_code ec;
  fs::create_directory(shard, ec);
  if (ec) return error_code(ec.value(), boost::system::system_category());
  if (auto e = fsync_dir(s_->dir)) return e;  // the shard directory's entry
  fs::path final_path = shard / b.sha256;
  if (::rename(s_->tmp.c_str(), final_path.c_str()) != 0) return last_error();
  s_->committed = true;
  if (auto e = fsync_dir(shard)) return e;  // the blob's name
  if (auto e = fsync_dir(s_->dir / "tmp")) return e;  // the temporary name gone
  s_->failed = false;
  return b;
}

blob_store::blob_store(fs::path dir) : dir_(std::move(dir)) {
  fs::create_directories(dir_ / "tmp");
  fs::permissions(dir_, fs::perms::owner_all, fs::perm_options::replace);
}

fs::path blob_store::path_of(std::string_view sha256) const {
  return dir_ / std::string(sha256.substr(0, 2)) / std::string(sha256);
}

boost::system::result<blob_store::writer> blob_store::create() {
  auto s = std::make_unique<writer::state>();
  s->dir = dir_;
  std::array<unsigned char, 16> id{};
  if (RAND_bytes(id.data(), static_cast<int>(id.size())) != 1) return errc(boost::system::errc::resource_unavailable_try_again);
  s->tmp = dir_ / "tmp" / common::hex(id.data(), id.size());
  s->fd = ::open(s->tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (s->fd < 0) return last_error();
  if (!s->sha || !s->md5 || EVP_DigestInit_ex(s->sha.get(), EVP_sha256(), nullptr) != 1 ||
      EVP_DigestInit_ex(s->md5.get(), EVP_md5(), nullptr) != 1)
    return errc(boost::system::errc::not_enough_memory);
  return writer(std::move(s));
}

boost::system::result<blob_store::reader> blob_store::open(std::string_view sha256) const {
  if (!valid_address(sha256)) return errc(boost::system::errc::no_such_file_or_directory);
  int fd = ::open(path_of(sha256).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return last_error();
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    auto e = last_error();
    ::close(fd);
    return e;
  }
  return reader(fd, static_cast<std::uint64_t>(st.st_size));
}

blob_store::reader::reader(reader&& o) noexcept : fd_(std::exchange(o.fd_, -1)), size_(o.size_) {}
blob_store::reader& blob_store::reader::operator=(reader&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(o.fd_, -1);
    size_ = o.size_;
  }
  return *this;
}
blob_store::reader::~reader() {
  if (fd_ >= 0) ::close(fd_);
}

error_code blob_store::reader::read(std::uint64_t offset, std::uint64_t length,
                                    const std::function<bool(std::string_view)>& fn) const {
  if (offset > size_ || length > size_ - offset) return errc(boost::system::errc::invalid_argument);
  std::array<char, 64 * 1024> buf;
  while (length > 0) {
    ssize_t n = ::pread(fd_, buf.data(), std::min<std::uint64_t>(length, buf.size()), static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return n < 0 ? last_error() : errc(boost::system::errc::io_error);  // the file shrank: damaged
    offset += static_cast<std::uint64_t>(n);
    length -= static_cast<std::uint64_t>(n);
    if (!fn(std::string_view(buf.data(), static_cast<std::size_t>(n)))) break;
  }
  return {};
}

error_code blob_store::read(std::string_view sha256, std::uint64_t offset, std::uint64_t length,
                            const std::function<bool(std::string_view)>& fn) const {
  auto r = open(sha256);
  if (!r) return r.error();
  return r->read(offset, length, fn);
}

std::optional<std::uint64_t> blob_store::size(std::string_view sha256) const {
  if (!valid_address(sha256)) return std::nullopt;
  std::error_code ec;
  auto n = fs::file_size(path_of(sha256), ec);
  if (ec) return std::nullopt;
  return n;
}

void blob_store::remove(std::string_view sha256) {
  if (!valid_address(sha256)) return;
  std::error_code ec;
  fs::remove(path_of(sha256), ec);
}

std::size_t blob_store::collect(const std::set<std::string, std::less<>>& keep) {
  std::size_t removed = 0;
  std::error_code ec;
  for (fs::directory_iterator shard(dir_, ec), end; !ec && shard != end; shard.increment(ec)) {
    // Shards are real directories: a symbolic link here is not followed out of the store.
    if (!fs::is_directory(shard->symlink_status())) continue;
    const bool uploads = shard->path().filename() == "tmp";
    std::error_code inner;
    for (fs::directory_iterator f(shard->path(), inner); !inner && f != end; f.increment(inner)) {
      const auto name = f->path().filename().string();
      if (uploads || !valid_address(name) || !keep.contains(name)) {
        std::error_code rm;
        if (fs::remove(f->path(), rm)) ++removed;
      }
    }
  }
  return removed;
}

}  // namespace fleetcore::objects
