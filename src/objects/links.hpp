#pragma once
// What other services use of the object store (jobs' documentSource and presigned URLs, streams'
// files, the signer's signed objects): plain callables the server wires to the S3 API, so a service
// depends on this header and not on the store. Each is empty when no object store serves (no api
// listener); callers check.
#include <boost/system/error_code.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace fleetcore::objects {

/// An object's content as it is now: its blob (the content address), S3 ETag and size.
struct located_object {
  std::string blob;
  std::string etag;
  std::uint64_t size = 0;
  std::string version_id;  // "null" unless the bucket's versioning made it
};

struct links {
  /// The content of an S3 URL (https://s3.amazonaws.com/<bucket>/<key>, s3://<bucket>/<key>...) of at
  /// most `max_bytes`, or nullopt with `error` set. API thread.
  std::function<std::optional<std::string>(std::string_view url, std::size_t max_bytes, std::string& error)> read;
  /// A presigned GET URL, on this server, of an S3 URL, valid for `expires_s`; nullopt if it names no
  /// object store location. Any thread.
  std::function<std::optional<std::string>(std::string_view url, std::int64_t expires_s)> presign;
  /// Version `version` of object `key` of `bucket` (empty: the latest), or nullopt with `error` set.
  /// API thread.
  std::function<std::optional<located_object>(std::string_view bucket, std::string_view key, std::string_view version,
                                              std::string& error)>
      locate;
  /// Bytes [offset, offset + length) of a blob into `out`; errc::no_such_file_or_directory once nothing
  /// references the blob any more (its object was replaced or deleted). Any thread.
  std::function<boost::system::error_code(std::string_view blob, std::uint64_t offset, std::uint64_t length,
                                          std::string& out)>
      read_blob;
  /// Stores `content` as object `key` of `bucket` (made durable before it returns), or nullopt with
  /// `error` set. API thread.
  std::function<std::optional<located_object>(std::string_view bucket, std::string_view key, std::string_view content,
                                              std::string_view content_type, std::string& error)>
      put;
};

}  // namespace fleetcore::objects
