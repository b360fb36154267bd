#pragma once
// The object store's bytes: content-addressed files in the data directory, written as a stream (an
// upload is never held in memory), checksummed while written (SHA-256: the address; MD5: S3's ETag),
// and durable before they are named: the temporary file is fsynced, renamed to its address, and its
// directory fsynced. The same content stored twice is one file. Which blobs are referenced (buckets,
// objects, versions) is the metadata's business, kept in the store as documents; `collect` removes
// the rest at start.
#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>

namespace fleetcore::objects {

/// A stored blob: its address (SHA-256, hex), its MD5 (hex) and size.
struct blob {
  std::string sha256;
  std::string md5;
  std::uint64_t size = 0;
};

class blob_store {
 public:
  /// Blobs live under `dir` (created 0700): `<dir>/<first two hex digits>/<sha256>`; uploads in
  /// progress under `<dir>/tmp/`.
  explicit blob_store(std::filesystem::path dir);

  /// One upload: bytes appended in order, then committed (or dropped, if destroyed uncommitted).
  class writer {
   public:
    writer(writer&&) noexcept;
    writer& operator=(writer&&) noexcept;
    ~writer();
    /// Appends `bytes`. After a failed write the upload is spoiled: later writes and the commit fail.
    boost::system::error_code write(std::string_view bytes);
    /// Makes the bytes durable under their content address and returns what was stored. Tried once.
    boost::system::result<blob> commit();
    std::uint64_t size() const noexcept;

   private:
    friend class blob_store;
    struct state;
    explicit writer(std::unique_ptr<state> s);
    std::unique_ptr<state> s_;
  };

  boost::system::result<writer> create();

  /// An open blob: its bytes stay readable while the reader lives, even if the blob is removed
  /// meanwhile (a download of an object that is replaced or deleted goes on to its end).
  class reader {
   public:
    reader(reader&&) noexcept;
    reader& operator=(reader&&) noexcept;
    ~reader();
    std::uint64_t size() const noexcept { return size_; }
    /// As blob_store::read, from the open file.
    boost::system::error_code read(std::uint64_t offset, std::uint64_t length,
                                   const std::function<bool(std::string_view)>& fn) const;

   private:
    friend class blob_store;
    reader(int fd, std::uint64_t size) : fd_(fd), size_(size) {}
    int fd_ = -1;
    std::uint64_t size_ = 0;
  };
  /// Opens blob `sha256` (errc::no_such_file_or_directory if there is none).
  boost::system::result<reader> open(std::string_view sha256) const;
  /// Reads bytes [offset, offset + length) of blob `sha256`, handing them to `fn` in pieces of at
  /// most 64 KiB; `fn` returns false to stop. errc::no_such_file_or_directory if there is no such blob,
  /// errc::invalid_argument if the range is not inside it.
  boost::system::error_code read(std::string_view sha256, std::uint64_t offset, std::uint64_t length,
                                 const std::function<bool(std::string_view)>& fn) const;
  /// The size of blob `sha256`, if it exists.
  std::optional<std::uint64_t> size(std::string_view sha256) const;
  /// Removes blob `sha256`. Blobs are shared by identical content: the metadata counts references
  /// and removes a blob only when none is left.
  void remove(std::string_view sha256);
  /// Removes every blob not in `keep` and every upload left unfinished (a crash mid-upload); returns
  /// how many files went. At start, once the metadata is loaded.
  std::size_t collect(const std::set<std::string, std::less<>>& keep);

 private:
  std::filesystem::path path_of(std::string_view sha256) const;
  std::filesystem::path dir_;
};

}  // namespace fleetcore::objects
