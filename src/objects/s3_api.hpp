#pragma once
// The object store's S3 API on the api listener (path style: /<bucket>/<key>), the subset the aws
// CLI, boto3 and curl use: ListBuckets, CreateBucket, HeadBucket, DeleteBucket, GetBucketLocation,
// ListObjectsV2, PutObject, GetObject (Range), HeadObject, DeleteObject, multipart uploads (Create,
// UploadPart, Complete, Abort), and presigned GET/PUT URLs.
// Requests signed for service `s3` (or presigned) come here as streams: an upload goes to the
// blob_store as it arrives and is named in the catalog once its bytes are durable; a download is
// read from its blob in pieces. Answers and errors in S3's XML. docs/design/objects-reference.md has
// the wire-level notes this follows.
//
// Threads: everything on the API server's thread (the catalog has no lock).
#include "auth/sigv4.hpp"
#include "common/clock.hpp"
#include "common/http_exchange.hpp"
#include "common/metrics.hpp"
#include "objects/blob_store.hpp"
#include "objects/catalog.hpp"
#include "objects/links.hpp"
#include "storage/store.hpp"

#include <filesystem>
#include <functional>
#include <memory>
#include <string>

namespace fleetcore::objects {

struct s3_settings {
  std::string region = "us-east-1";
  std::uint64_t max_object_bytes = 5ull << 30;  // PutObject's limit (S3's: 5 GiB)
};

class s3_api {
 public:
  s3_api(storage::store& store, common::clock& clock, auth::secret_lookup secrets, std::filesystem::path dir,
         s3_settings settings);

  /// Loads the catalog and removes the blobs nothing references (an upload a crash interrupted).
  void load();

  /// Whether a request is S3's, from its head: signed for service `s3` (header or query SigV4) or a
  /// SigV2 presigned URL.
  static bool is_s3(std::string_view target, const std::vector<std::pair<std::string_view, std::string_view>>& headers);

  void handle(std::shared_ptr<common::http_exchange> x);

  /// Where this server's presigned URLs point: `https://<host:port>` (the api listener as devices reach
  /// it). Before start; until called, presign() gives nothing.
  void set_public_endpoint(std::string host_port) { public_host_ = std::move(host_port); }
  /// The object an S3 URL names (https://s3[.<region>].amazonaws.com/<bucket>/<key>,
  /// https://<bucket>.s3[.<region>].amazonaws.com/<key>, s3://<bucket>/<key>), read whole if it has at
  /// most `max_bytes`; else nullopt and `error` says why. API thread.
  std::optional<std::string> read_object(std::string_view url, std::size_t max_bytes, std::string& error);
  /// A presigned GET URL, on this server, of the object an S3 URL names, valid for `expires_s`. The key
  /// that signs it serves GET and HEAD of objects only. Any thread.
  std::optional<std::string> presign(std::string_view url, std::int64_t expires_s) const;
  /// Version `version` (empty: the latest) of object `key` of `bucket`, or nullopt with `error` set.
  /// API thread.
  std::optional<located_object> locate(std::string_view bucket, std::string_view key, std::string_view version,
                                       std::string& error) const;
  /// Bytes of a blob (see objects::links::read_blob). Any thread.
  boost::system::error_code read_blob(std::string_view blob, std::uint64_t offset, std::uint64_t length,
                                      std::string& out) const;
  /// Stores a small object the server made (a signed object), durably. API thread.
  std::optional<located_object> put(std::string_view bucket, std::string_view key, std::string_view content,
                                    std::string_view content_type, std::string& error);
  /// The links other services use, calling through `api` once it is set (the store is made with the
  /// api listener, after the services).
  static links links_to(const std::unique_ptr<s3_api>& api);
  void register_metrics(common::registry& m) const;

 private:
  struct request;
  void list_buckets(const std::shared_ptr<request>& r);
  void create_bucket(const std::shared_ptr<request>& r);
  void delete_bucket(const std::shared_ptr<request>& r);
  void head_bucket(const std::shared_ptr<request>& r);
  void list_objects(const std::shared_ptr<request>& r);
  void put_object(const std::shared_ptr<request>& r);
  void create_upload(const std::shared_ptr<request>& r);
  void upload_part(const std::shared_ptr<request>& r);
  void complete_upload(const std::shared_ptr<request>& r);
  void abort_upload(const std::shared_ptr<request>& r);
  /// Streams the request body into a new blob, checked against x-amz-content-sha256 and Content-MD5;
  /// `done` gets it (every refusal is answered here).
  void receive_blob(const std::shared_ptr<request>& r, std::function<void(blob)> done);
  /// Removes `blob` unless the catalog references it.
  void drop_unreferenced(const std::string& blob);
  void get_object(const std::shared_ptr<request>& r, bool head);
  void put_versioning(const std::shared_ptr<request>& r);
  void list_versions(const std::shared_ptr<request>& r);
  /// A new version id: the time (ms, hex) then random hex, so ids of one key sort by age.
  std::string new_version_id();
  /// x-amz-version-id, in a bucket whose versioning was ever enabled.
  void add_version_header(const std::string& bucket, const object_entry& o, common::http_exchange::headers& h) const;
  void delete_object(const std::shared_ptr<request>& r);
  /// Sends blob bytes [offset, end) in pieces, then finishes the exchange.
  void stream_blob(const std::shared_ptr<request>& r, std::shared_ptr<blob_store::reader> blob, std::uint64_t offset,
                   std::uint64_t end);
  /// Reads a small body (XML) whole, then calls `then` with it; answers the request itself if the body
  /// is longer than `max`, cut, or not the one signed.
  void read_small_body(const std::shared_ptr<request>& r, std::size_t max,
                       std::function<void(const std::string& body)> then);
  /// Commits catalog changes; false (and an InternalError answered) if the store failed.
  bool commit(const std::shared_ptr<request>& r, std::vector<storage::operation> ops);

  /// The signing key of presign() (`<dir>/presign.key`, 0600, made on first start): GET and HEAD only.
  std::string presign_id_, presign_secret_;
  std::string public_host_;
  storage::store& store_;
  common::clock& clock_;
  auth::secret_lookup secrets_;
  s3_settings settings_;
  blob_store blobs_;
  catalog catalog_;
  common::counter requests_, errors_, bytes_in_, bytes_out_;
};

}  // namespace fleetcore::objects
