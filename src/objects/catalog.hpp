#pragma once
// The object store's metadata: buckets and the objects in them (key, blob, ETag, size, time, content
// headers, user metadata), S3's naming rules, and ListObjectsV2's listing (prefix, delimiter, pages).
// A plain value type without I/O: each change returns the storage operations that make it durable,
// for the caller to commit in one batch, and `load` rebuilds it from the stored documents. The bytes
// themselves are the blob_store's; `blob_references` says which blobs are in use.
//
// Threads: none of its own; one owner thread (the object service) uses it.
#include "storage/store.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace fleetcore::objects {

/// One version of a key: an object, or a delete marker (versioned buckets).
struct object_entry {
  std::string key;
  std::string version_id = "null";  // S3's id of the version ("null": made while versioning was off)
  bool delete_marker = false;       // no bytes: the key reads as deleted while this version is the latest
  std::uint64_t seq = 0;            // the catalog's order of versions (older: smaller)
  std::string blob;  // the blob's SHA-256 (hex)
  std::string etag;  // hex MD5 of the bytes (without quotes)
  std::uint64_t size = 0;
  std::int64_t last_modified_ms = 0;
  /// Content-Type, Cache-Control, Content-Disposition, Content-Encoding, Content-Language, Expires, as
  /// sent (header names lowercase).
  std::map<std::string, std::string> headers;
  std::map<std::string, std::string> metadata;  // x-amz-meta-<name> (name lowercase, without the prefix)
};

struct bucket_entry {
  std::string name;
  std::int64_t created_ms = 0;
  std::string versioning;  // "" (never enabled), "Enabled" or "Suspended"
  std::map<std::string, object_entry, std::less<>> objects;  // the latest version of each key, unless a marker
  /// The other versions of each key, newest first: noncurrent versions, and the delete marker that is
  /// the latest version when `objects` has no entry for the key.
  std::map<std::string, std::vector<object_entry>, std::less<>> history;
};

/// ListObjectVersions' request and answer (versions by key, newest first).
struct versions_request {
  std::string prefix;
  std::string key_marker, version_id_marker;
  int max_keys = 1000;
};
struct version_item {
  const object_entry* entry = nullptr;
  bool latest = false;
};
struct versions_result {
  std::vector<version_item> versions;
  bool truncated = false;
  std::string next_key_marker, next_version_id_marker;
};

/// A multipart upload in progress: the object's key and headers (given at its creation) and the parts
/// uploaded so far.
struct upload_entry {
  struct part {
    std::string blob;
    std::string etag;  // hex MD5 of the part
    std::uint64_t size = 0;
  };
  std::string id;
  std::string bucket;
  std::string key;
  std::int64_t created_ms = 0;
  std::map<std::string, std::string> headers;   // as object_entry
  std::map<std::string, std::string> metadata;  // as object_entry
  std::map<int, part> parts;                    // by part number (1..10000)
};

/// ListObjectsV2's request (decoded parameters).
struct list_request {
  std::string prefix;
  std::string delimiter;
  int max_keys = 1000;  // clamped to 0..1000
  std::optional<std::string> continuation_token;
  std::string start_after;
};

struct list_result {
  std::vector<const object_entry*> contents;
  std::vector<std::string> common_prefixes;
  bool truncated = false;
  std::string next_continuation_token;  // opaque, URL-safe; set when truncated
  std::size_t key_count() const { return contents.size() + common_prefixes.size(); }
};

enum class catalog_error {
  none,
  no_such_bucket,            // 404 NoSuchBucket
  bucket_already_owned,      // 409 BucketAlreadyOwnedByYou
  bucket_not_empty,          // 409 BucketNotEmpty
  invalid_bucket_name,       // 400 InvalidBucketName
  no_such_key,               // 404 NoSuchKey
  invalid_key,               // 400 KeyTooLongError (or an empty/invalid UTF-8 key)
  invalid_continuation,      // 400 InvalidArgument: a continuation token we did not issue
  no_such_upload,            // 404 NoSuchUpload
  no_such_version,           // 404 NoSuchVersion
};

class catalog {
 public:
  /// S3's bucket naming rules (3-63 of [a-z0-9.-], letter or digit at both ends, no "..", not an IPv4
  /// address, none of AWS's reserved prefixes and suffixes).
  static bool valid_bucket_name(std::string_view name);
  /// 1-1024 bytes of UTF-8.
  static bool valid_key(std::string_view key);

  /// Rebuilds the catalog from its stored documents (kinds s3_bucket, s3_object, s3_upload, s3_part).
  void load(const std::vector<storage::document>& documents);

  catalog_error create_bucket(std::string_view name, std::int64_t now_ms, std::vector<storage::operation>& ops);
  /// Refused while objects or uploads in progress remain.
  catalog_error delete_bucket(std::string_view name, std::vector<storage::operation>& ops);
  const bucket_entry* bucket(std::string_view name) const;
  /// Every bucket, by name.
  std::vector<const bucket_entry*> buckets() const;

  /// Sets a bucket's versioning: "Enabled" or "Suspended" (a bucket never goes back to unversioned).
  catalog_error set_versioning(std::string_view bucket, std::string_view status, std::vector<storage::operation>& ops);

  /// Stores `o` as the latest version of its key. Unversioned, it replaces the object; versioning
  /// enabled, the object gets `new_version_id` and the one it replaces becomes noncurrent; suspended,
  /// it is the "null" version and replaces the previous "null" version (object() then has the version
  /// made). `released` gets the blob a replaced version referenced when nothing references it
  /// any more (the caller removes it from the blob_store once `ops` are committed).
  catalog_error put_object(std::string_view bucket, object_entry o, std::string_view new_version_id,
                           std::vector<storage::operation>& ops, std::optional<std::string>& released);
  /// The latest version of `key` if it is an object (not a delete marker).
  const object_entry* object(std::string_view bucket, std::string_view key) const;
  /// Version `version_id` of `key` (an object or a delete marker), or the latest version, marker or not,
  /// when `version_id` is empty.
  const object_entry* version(std::string_view bucket, std::string_view key, std::string_view version_id) const;
  /// DeleteObject. Without `version_id`: unversioned, the object goes (a missing key is no error, as in
  /// S3); versioned, a delete marker (`new_version_id`, or "null" when suspended) becomes the latest
  /// version and `deleted` is that marker. With `version_id`: that version goes for good and `deleted`
  /// is a copy of it (the next newest becomes the latest). `released` as put_object.
  catalog_error delete_object(std::string_view bucket, std::string_view key, std::string_view version_id,
                              std::string_view new_version_id, std::vector<storage::operation>& ops,
                              std::optional<std::string>& released, std::optional<object_entry>& deleted);
  /// ListObjectVersions over `bucket`.
  catalog_error list_versions(std::string_view bucket, const versions_request& req, versions_result& out) const;

  /// Starts a multipart upload of `u.key` in `u.bucket` (u.id chosen by the caller, unique).
  catalog_error create_upload(upload_entry u, std::vector<storage::operation>& ops);
  /// The upload `id` of `bucket`/`key`, or null.
  const upload_entry* upload(std::string_view id, std::string_view bucket, std::string_view key) const;
  /// Stores part `number` of upload `id` (replacing one of the same number); `released` as put_object.
  catalog_error put_part(std::string_view id, int number, upload_entry::part p, std::vector<storage::operation>& ops,
                         std::optional<std::string>& released);
  /// Ends upload `id`: its parts go (their blobs into `released` when nothing else references them)
  /// and, when `o` is given (CompleteMultipartUpload), `o` becomes the latest version, as put_object.
  catalog_error end_upload(std::string_view id, std::optional<object_entry> o, std::string_view new_version_id,
                           std::vector<storage::operation>& ops, std::vector<std::string>& released);

  /// ListObjectsV2 over `bucket`.
  catalog_error list(std::string_view bucket, const list_request& req, list_result& out) const;

  /// The blobs some object references (the blob_store's `collect` keeps them).
  std::set<std::string, std::less<>> blob_references() const;
  bool referenced(std::string_view blob) const { return references_.contains(blob); }

 private:
  void reference(const std::string& blob);
  /// Writes `o` as the latest object (kind s3_object) or as a history version (kind s3_version).
  void store_current(std::string_view bucket, const object_entry& o, std::vector<storage::operation>& ops) const;
  void store_version(std::string_view bucket, const object_entry& o, std::vector<storage::operation>& ops) const;
  void unstore_version(std::string_view bucket, const object_entry& o, std::vector<storage::operation>& ops) const;
  /// Removes the "null" version of `key` from its history (suspended versioning replaces it).
  void drop_null_version(bucket_entry& b, const std::string& key, std::vector<storage::operation>& ops,
                         std::optional<std::string>& released);
  std::uint64_t next_seq_ = 1;
  /// Drops one reference; the blob if none is left.
  std::optional<std::string> release(const std::string& blob);

  std::map<std::string, bucket_entry, std::less<>> buckets_;
  std::map<std::string, upload_entry, std::less<>> uploads_;    // by id
  std::map<std::string, std::size_t, std::less<>> references_;  // blob -> objects and parts referencing it
};

}  // namespace fleetcore::objects
