#include "objects/s3_api.hpp"

#include "common/base64.hpp"
#include "common/hex.hpp"
#include "common/log.hpp"
#include "objects/s3_xml.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <boost/asio/error.hpp>
#include <fmt/format.h>

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <charconv>
#include <ctime>
#include <map>

namespace fleetcore::objects {

namespace {

using headers = common::http_exchange::headers;

constexpr std::string_view k_xmlns = "http://s3.amazonaws.com/doc/2006-03-01/";
constexpr std::uint64_t k_piece = 256 * 1024;  // bytes read from a blob per write

std::string request_id() {
  static std::atomic<std::uint64_t> next{1};
  return fmt::format("{:016X}", next.fetch_add(1) * 0x9E3779B97F4A7C15ull);
}

std::string xml_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string iso_time(std::int64_t ms) {
  std::time_t t = ms / 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:03d}Z", buf, static_cast<int>(ms % 1000));
}

std::string http_time(std::int64_t ms) {
  std::time_t t = ms / 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  static constexpr const char* days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                           "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  return fmt::format("{}, {:02d} {} {} {:02d}:{:02d}:{:02d} GMT", days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon],
                     tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/// The content headers an object keeps (lowercase names).
constexpr std::string_view k_content_headers[] = {"content-type", "cache-control", "content-disposition",
                                                  "content-encoding", "content-language", "expires"};

/// A Range header's single byte range over `size` bytes: [first, end), nullopt to ignore the header,
/// or first == end == size + 1 for an unsatisfiable range.
struct byte_range {
  std::uint64_t first = 0, end = 0;
  bool unsatisfiable = false;
};
std::optional<byte_range> parse_range(std::string_view h, std::uint64_t size) {
  if (!h.starts_with("bytes=")) return std::nullopt;
  h.remove_prefix(6);
  if (h.find(',') != std::string_view::npos) return std::nullopt;  // several ranges: ignored
  auto dash = h.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  auto number = [](std::string_view s) -> std::optional<std::uint64_t> {
    std::uint64_t v = 0;
    if (s.empty()) return std::nullopt;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
    return v;
  };
  auto a = number(h.substr(0, dash)), b = number(h.substr(dash + 1));
  byte_range r;
  if (!a) {  // bytes=-n: the last n bytes
    if (!b) return std::nullopt;
    if (*b == 0 || size == 0) return byte_range{0, 0, true};
    r.first = size - std::min(*b, size);
    r.end = size;
    return r;
  }
  if (!h.substr(dash + 1).empty() && (!b || *b < *a)) return std::nullopt;
  if (*a >= size) return byte_range{0, 0, true};
  r.first = *a;
  r.end = b && *b < size - 1 ? *b + 1 : size;
  return r;
}

}  // namespace

/// One S3 request being answered.
struct s3_api::request {
  std::shared_ptr<common::http_exchange> x;
  std::string id = request_id();
  std::string path;    // as received
  std::string bucket;  // decoded
  std::string key;     // decoded; empty: a bucket (or the service) request
  std::map<std::string, std::string, std::less<>> query;
  auth::sigv4_result auth;
  bool head = false;

  void reply(unsigned status, headers h, std::string body, std::string_view content_type = "application/xml") {
    h.emplace_back("x-amz-request-id", id);
    if (!body.empty()) h.emplace_back("Content-Type", std::string(content_type));
    if (head) body.clear();
    const auto length = body.size();
    auto self = x;
    x->send_head(status, std::move(h), length, [self, body = std::move(body)](boost::system::error_code ec) mutable {
      if (ec) return;
      if (body.empty()) return self->finish(true);
      self->send_body(std::move(body), [self](boost::system::error_code ec) {
        if (!ec) self->finish(true);
      });
    });
  }
  void error(unsigned status, std::string_view code, std::string_view message, headers h = {}) {
    FC_LOG_INFO("s3.error", "method={} path={} code={} message={:q}", common::untrusted(x->method()),
                common::untrusted(path), code, common::untrusted(message));
    reply(status, std::move(h),
          fmt::format("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message>"
                      "<Resource>{}</Resource><RequestId>{}</RequestId></Error>",
                      code, xml_escape(message), xml_escape(path), id));
  }
  void no_such_bucket() { error(404, "NoSuchBucket", "The specified bucket does not exist"); }
};

s3_api::s3_api(storage::store& store, common::clock& clock, auth::secret_lookup secrets, std::filesystem::path dir,
               s3_settings settings)
    : store_(store), clock_(clock), secrets_(std::move(secrets)), settings_(std::move(settings)), blobs_(dir) {
  // The key of the server's own presigned URLs, kept across restarts (URLs in job documents stay valid).
  const auto file = dir / "presign.key";
  if (std::ifstream in(file); in) std::getline(in, presign_secret_);
  if (presign_secret_.size() != 64) {
    unsigned char raw[32];
    RAND_bytes(raw, sizeof raw);
    presign_secret_ = common::hex(raw, sizeof raw);
    const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || ::write(fd, presign_secret_.data(), presign_secret_.size()) != static_cast<ssize_t>(presign_secret_.size()) ||
        ::fsync(fd) != 0)
      FC_LOG_WARN("s3.presign_key_not_saved", "file={} note=\"presigned URLs end with this process\"", file.string());
    if (fd >= 0) ::close(fd);
  }
  presign_id_ = "FCPRESIGN" + auth::sha256_hex(presign_secret_).substr(0, 11);  // names it, reveals nothing
}

namespace {
/// An object an S3 URL names, in one of the forms read_object documents; `?versionId=` names a version.
struct s3_url {
  std::string bucket, key, version;
};
std::optional<s3_url> parse_s3_url(std::string_view url) {
  std::string version;
  if (auto q = url.find('?'); q != std::string_view::npos) {
    auto params = auth::query_params(url.substr(q + 1));
    if (auto v = params.find("versionId"); v != params.end()) version = v->second;
    url = url.substr(0, q);
  }
  std::string_view rest;
  if (url.starts_with("s3://")) {
    rest = url.substr(5);
  } else if (url.starts_with("https://")) {
    url.remove_prefix(8);
    auto slash = url.find('/');
    if (slash == std::string_view::npos) return std::nullopt;
    std::string_view host = url.substr(0, slash);
    std::string_view path = url.substr(slash + 1);
    if (host.ends_with(".amazonaws.com")) host.remove_suffix(14);
    else return std::nullopt;
    if (host == "s3" || (host.starts_with("s3.") && host.find('.', 3) == std::string_view::npos)) {
      rest = path;  // path style
    } else if (auto at = host.find(".s3"); at != std::string_view::npos &&
                                            (host.size() == at + 3 || host[at + 3] == '.')) {
      return s3_url{std::string(host.substr(0, at)), auth::uri_decode(path), version};  // virtual-hosted style
    } else {
      return std::nullopt;
    }
  } else {
    return std::nullopt;
  }
  auto slash = rest.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == rest.size()) return std::nullopt;
  return s3_url{auth::uri_decode(rest.substr(0, slash)), auth::uri_decode(rest.substr(slash + 1)), version};
}
}  // namespace

std::optional<std::string> s3_api::read_object(std::string_view url, std::size_t max_bytes, std::string& error) {
  auto named = parse_s3_url(url);
  if (!named) {
    error = "documentSource must be an S3 URL such as https://s3.amazonaws.com/<bucket>/<key>";
    return std::nullopt;
  }
  auto located = locate(named->bucket, named->key, named->version, error);
  if (!located) return std::nullopt;
  if (located->size > max_bytes) {
    error = fmt::format("the object {} is larger than {} bytes", named->key, max_bytes);
    return std::nullopt;
  }
  std::string out;
  if (blobs_.read(located->blob, 0, located->size, [&out](std::string_view piece) {
        out.append(piece);
        return true;
      })) {
    error = "the object could not be read";
    return std::nullopt;
  }
  return out;
}

std::optional<std::string> s3_api::presign(std::string_view url, std::int64_t expires_s) const {
  auto named = parse_s3_url(url);
  if (!named || public_host_.empty()) return std::nullopt;
  const std::string path = "/" + auth::uri_encode(named->bucket, false) + "/" + auth::uri_encode(named->key, true);
  return "https://" + public_host_ +
         auth::presign_s3_get(public_host_, path, presign_id_, presign_secret_, settings_.region,
                              clock_.wall_ms() / 1000, expires_s,
                              named->version.empty() ? std::string() : "versionId=" + auth::uri_encode(named->version, false));
}

std::optional<located_object> s3_api::locate(std::string_view bucket, std::string_view key, std::string_view version,
                                             std::string& error) const {
  if (!catalog_.bucket(bucket)) {
    error = fmt::format("the bucket {} does not exist", bucket);
    return std::nullopt;
  }
  const object_entry* o = version.empty() ? catalog_.object(bucket, key) : catalog_.version(bucket, key, version);
  if (!o || o->delete_marker) {
    error = version.empty() ? fmt::format("the object {} does not exist in bucket {}", key, bucket)
                            : fmt::format("version {} of object {} does not exist in bucket {}", version, key, bucket);
    return std::nullopt;
  }
  return located_object{o->blob, o->etag, o->size, o->version_id};
}

boost::system::error_code s3_api::read_blob(std::string_view blob, std::uint64_t offset, std::uint64_t length,
                                            std::string& out) const {
  out.clear();
  out.reserve(length);
  return blobs_.read(blob, offset, length, [&out](std::string_view piece) {
    out.append(piece);
    return true;
  });
}

std::optional<located_object> s3_api::put(std::string_view bucket, std::string_view key, std::string_view content,
                                          std::string_view content_type, std::string& error) {
  if (!catalog_.bucket(bucket)) {
    error = fmt::format("the bucket {} does not exist", bucket);
    return std::nullopt;
  }
  if (!catalog::valid_key(key)) {
    error = fmt::format("{:?} is not a valid object key", key);
    return std::nullopt;
  }
  auto w = blobs_.create();
  boost::system::error_code ec = w ? w->write(content) : w.error();
  auto stored = ec ? boost::system::result<blob>(ec) : w->commit();
  if (!stored) {
    error = "the object could not be written: " + stored.error().message();
    return std::nullopt;
  }
  object_entry o;
  o.key = key;
  o.blob = stored->sha256;
  o.etag = stored->md5;
  o.size = stored->size;
  o.last_modified_ms = clock_.wall_ms();
  if (!content_type.empty()) o.headers["content-type"] = content_type;
  std::vector<storage::operation> ops;
  std::optional<std::string> released;
  if (catalog_.put_object(bucket, o, new_version_id(), ops, released) != catalog_error::none) {
    drop_unreferenced(o.blob);
    error = fmt::format("the object {} could not be named in bucket {}", key, bucket);
    return std::nullopt;
  }
  if (!store_.submit_and_wait(std::move(ops))) {
    error = "the object could not be stored";
    return std::nullopt;
  }
  if (released) blobs_.remove(*released);
  const object_entry* made = catalog_.object(bucket, key);
  return located_object{o.blob, o.etag, o.size, made ? made->version_id : "null"};
}

links s3_api::links_to(const std::unique_ptr<s3_api>& api) {
  links l;
  l.read = [&api](std::string_view url, std::size_t max, std::string& error) -> std::optional<std::string> {
    if (!api) return std::nullopt;
    return api->read_object(url, max, error);
  };
  l.presign = [&api](std::string_view url, std::int64_t expires_s) -> std::optional<std::string> {
    if (!api) return std::nullopt;
    return api->presign(url, expires_s);
  };
  l.locate = [&api](std::string_view bucket, std::string_view key, std::string_view version,
                    std::string& error) -> std::optional<located_object> {
    if (!api) {
      error = "there is no object store (the api listener is off)";
      return std::nullopt;
    }
    return api->locate(bucket, key, version, error);
  };
  l.read_blob = [&api](std::string_view blob, std::uint64_t offset, std::uint64_t length, std::string& out) {
    if (!api) return make_error_code(boost::system::errc::no_such_file_or_directory);
    return api->read_blob(blob, offset, length, out);
  };
  l.put = [&api](std::string_view bucket, std::string_view key, std::string_view content, std::string_view type,
                 std::string& error) -> std::optional<located_object> {
    if (!api) {
      error = "there is no object store (the api listener is off)";
      return std::nullopt;
    }
    return api->put(bucket, key, content, type, error);
  };
  return l;
}

void s3_api::load() {
  std::vector<storage::document> docs = store_.load_documents("s3_bucket");
  for (const char* kind : {"s3_object", "s3_version", "s3_upload", "s3_part"}) {
    auto more = store_.load_documents(kind);
    docs.insert(docs.end(), std::make_move_iterator(more.begin()), std::make_move_iterator(more.end()));
  }
  catalog_.load(docs);
  if (auto removed = blobs_.collect(catalog_.blob_references()))
    FC_LOG_INFO("s3.collected", "blobs={}", removed);
}

bool s3_api::is_s3(std::string_view target, const std::vector<std::pair<std::string_view, std::string_view>>& headers) {
  for (const auto& [k, v] : headers)
    if (k.size() == 13 && std::equal(k.begin(), k.end(), "authorization", [](char a, char b) { return (a | 0x20) == b; }))
      return v.find("/s3/aws4_request") != std::string_view::npos;
  auto q = target.find('?');
  if (q == std::string_view::npos) return false;
  auto query = target.substr(q + 1);
  return query.find("X-Amz-Credential=") != std::string_view::npos
             ? query.find("%2Fs3%2Faws4_request") != std::string_view::npos ||
                   query.find("/s3/aws4_request") != std::string_view::npos
             : query.find("AWSAccessKeyId=") != std::string_view::npos;
}

void s3_api::register_metrics(common::registry& m) const {
  m.add(requests_, "fleetcore_s3_requests_total", "", "Object store (S3 API) requests.");
  m.add(errors_, "fleetcore_s3_errors_total", "", "Object store requests answered with an error.");
  m.add(bytes_in_, "fleetcore_s3_bytes_in_total", "", "Object bytes uploaded.");
  m.add(bytes_out_, "fleetcore_s3_bytes_out_total", "", "Object bytes downloaded.");
}

void s3_api::handle(std::shared_ptr<common::http_exchange> x) {
  requests_.inc();
  auto r = std::make_shared<request>();
  r->x = x;
  const std::string_view target = x->target();
  const auto q = target.find('?');
  r->path = std::string(target.substr(0, q));
  if (q != std::string_view::npos) r->query = auth::query_params(target.substr(q + 1));
  r->head = x->method() == "HEAD";
  {
    std::string_view p = r->path;
    if (p.starts_with('/')) p.remove_prefix(1);
    auto slash = p.find('/');
    r->bucket = auth::uri_decode(p.substr(0, slash));
    if (slash != std::string_view::npos) r->key = auth::uri_decode(p.substr(slash + 1));
  }

  auth::http_request_view view{x->method(), target, x->request_headers(), ""};
  r->auth = auth::verify_s3(
      view,
      [this](std::string_view id) -> std::optional<std::string> {
        if (id == presign_id_) return presign_secret_;
        return secrets_(id);
      },
      clock_.wall_ms() / 1000);
  // The server's own presigned URLs read objects, nothing else.
  if (r->auth.ok() && r->auth.access_key_id == presign_id_ &&
      (r->key.empty() || (x->method() != "GET" && x->method() != "HEAD") || !r->auth.presigned)) {
    errors_.inc();
    return r->error(403, "AccessDenied", "Access Denied");
  }
  if (!r->auth.ok()) {
    errors_.inc();
    FC_LOG_INFO("s3.unauthenticated", "method={} path={} key={} reason={:q}", common::untrusted(x->method()),
                common::untrusted(r->path), common::untrusted(r->auth.access_key_id),
                common::untrusted(r->auth.message));
    switch (r->auth.error) {
      case auth::sigv4_error::missing_authentication: return r->error(403, "AccessDenied", "Access Denied");
      case auth::sigv4_error::unknown_access_key:
        return r->error(403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.");
      case auth::sigv4_error::malformed:
        return r->error(400, r->auth.presigned ? "AuthorizationQueryParametersError" : "AuthorizationHeaderMalformed",
                        r->auth.message);
      case auth::sigv4_error::expired:
        return r->auth.presigned ? r->error(403, "AccessDenied", r->auth.message)
                                 : r->error(403, "RequestTimeTooSkewed",
                                            "The difference between the request time and the current time is too large.");
      case auth::sigv4_error::unsupported: return r->error(501, "NotImplemented", r->auth.message);
      default: return r->error(403, "SignatureDoesNotMatch", r->auth.message);
    }
  }
  if (!r->auth.region.empty() && r->auth.region != settings_.region) {
    errors_.inc();
    return r->error(400, "AuthorizationHeaderMalformed",
                    fmt::format("The authorization header is malformed; the region '{}' is wrong; expecting '{}'",
                                r->auth.region, settings_.region),
                    {{"x-amz-bucket-region", settings_.region}});
  }

  const std::string_view method = x->method();
  for (auto unsupported : {"acl", "tagging", "delete", "policy", "cors", "lifecycle"})
    if (r->query.contains(unsupported))
      return r->error(501, "NotImplemented", fmt::format("fleetcore does not implement the ?{} sub-resource", unsupported));
  if (r->bucket.empty()) {
    if (method == "GET") return list_buckets(r);
    return r->error(405, "MethodNotAllowed", "The specified method is not allowed against this resource.");
  }
  if (r->key.empty()) {
    if (method == "PUT" && r->query.contains("versioning")) return put_versioning(r);
    if (method == "GET" && r->query.contains("versions")) return list_versions(r);
    if (method == "PUT") return create_bucket(r);
    if (method == "DELETE") return delete_bucket(r);
    if (method == "HEAD") return head_bucket(r);
    if (method == "GET") {
      if (r->query.contains("location")) {
        if (!catalog_.bucket(r->bucket)) return r->no_such_bucket();
        return r->reply(200, {},
                        fmt::format("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<LocationConstraint xmlns=\"{}\">{}"
                                    "</LocationConstraint>",
                                    k_xmlns, settings_.region == "us-east-1" ? "" : xml_escape(settings_.region)));
      }
      if (r->query.contains("versioning")) {
        const auto* b = catalog_.bucket(r->bucket);
        if (!b) return r->no_such_bucket();
        if (b->versioning.empty())
          return r->reply(200, {},
                          fmt::format("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<VersioningConfiguration xmlns=\"{}\"/>",
                                      k_xmlns));
        return r->reply(200, {},
                        fmt::format("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<VersioningConfiguration xmlns=\"{}\">"
                                    "<Status>{}</Status></VersioningConfiguration>",
                                    k_xmlns, b->versioning));
      }
      if (r->query.contains("list-type")) return list_objects(r);
      return r->error(501, "NotImplemented", "fleetcore lists objects with ListObjectsV2 (list-type=2) only");
    }
    return r->error(405, "MethodNotAllowed", "The specified method is not allowed against this resource.");
  }
  if (r->query.contains("uploadId")) {
    if (method == "PUT") return upload_part(r);
    if (method == "POST") return complete_upload(r);
    if (method == "DELETE") return abort_upload(r);
    return r->error(501, "NotImplemented", "fleetcore does not implement ListParts");
  }
  if (r->query.contains("uploads")) {
    if (method == "POST") return create_upload(r);
    return r->error(501, "NotImplemented", "fleetcore does not implement ListMultipartUploads");
  }
  if (method == "PUT") return put_object(r);
  if (method == "GET") return get_object(r, false);
  if (method == "HEAD") return get_object(r, true);
  if (method == "DELETE") return delete_object(r);
  r->error(405, "MethodNotAllowed", "The specified method is not allowed against this resource.");
}

void s3_api::read_small_body(const std::shared_ptr<request>& r, std::size_t max,
                             std::function<void(const std::string& body)> then) {
  auto body = std::make_shared<std::string>();
  r->x->read_body(
      [body, max](std::string_view piece) {
        body->append(piece);
        return body->size() <= max;
      },
      [this, r, body, then = std::move(then)](boost::system::error_code ec) {
        if (ec == boost::asio::error::operation_aborted) {  // longer than the XML it may hold
          errors_.inc();
          return r->error(400, "MaxMessageLengthExceeded", "Your request was too big.");
        }
        if (ec) return r->x->finish(false);
        if (!r->auth.content_sha256.empty() && auth::sha256_hex(*body) != r->auth.content_sha256) {
          errors_.inc();
          return r->error(400, "XAmzContentSHA256Mismatch",
                          "The provided 'x-amz-content-sha256' header does not match what was computed.");
        }
        then(*body);
      });
}

bool s3_api::commit(const std::shared_ptr<request>& r, std::vector<storage::operation> ops) {
  if (ops.empty() || store_.submit_and_wait(std::move(ops))) return true;
  errors_.inc();
  r->error(500, "InternalError", "We encountered an internal error. Please try again.");
  return false;
}

void s3_api::list_buckets(const std::shared_ptr<request>& r) {
  std::string body = fmt::format(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListAllMyBucketsResult xmlns=\"{}\"><Owner><ID>fleetcore</ID>"
      "<DisplayName>fleetcore</DisplayName></Owner><Buckets>",
      k_xmlns);
  for (const auto* b : catalog_.buckets())
    body += fmt::format("<Bucket><Name>{}</Name><CreationDate>{}</CreationDate></Bucket>", xml_escape(b->name),
                        iso_time(b->created_ms));
  body += "</Buckets></ListAllMyBucketsResult>";
  r->reply(200, {}, std::move(body));
}

void s3_api::create_bucket(const std::shared_ptr<request>& r) {
  // The body, if any, is a CreateBucketConfiguration: its LocationConstraint must be ours.
  read_small_body(r, 64 * 1024, [this, r](const std::string& body) {
    auto region = parse_location_constraint(body);
    if (!region) {
      errors_.inc();
      return r->error(400, "MalformedXML",
                      "The XML you provided was not well-formed or did not validate against our published schema");
    }
    if (!region->empty() && *region != settings_.region) {
      errors_.inc();
      return r->error(400, "IllegalLocationConstraintException",
                      fmt::format("The {} location constraint is incompatible for the region specific endpoint "
                                  "this request was sent to.",
                                  *region));
    }
    std::vector<storage::operation> ops;
    switch (catalog_.create_bucket(r->bucket, clock_.wall_ms(), ops)) {
      case catalog_error::none: break;
      case catalog_error::invalid_bucket_name:
        errors_.inc();
        return r->error(400, "InvalidBucketName", "The specified bucket is not valid.");
      default:
        errors_.inc();
        return r->error(409, "BucketAlreadyOwnedByYou",
                        "Your previous request to create the named bucket succeeded and you already own it.");
    }
    if (!commit(r, std::move(ops))) return;
    FC_LOG_INFO("s3.bucket_created", "bucket={}", r->bucket);
    r->reply(200, {{"Location", "/" + r->bucket}}, "");
  });
}

void s3_api::delete_bucket(const std::shared_ptr<request>& r) {
  std::vector<storage::operation> ops;
  switch (catalog_.delete_bucket(r->bucket, ops)) {
    case catalog_error::none: break;
    case catalog_error::bucket_not_empty:
      errors_.inc();
      return r->error(409, "BucketNotEmpty", "The bucket you tried to delete is not empty");
    default: errors_.inc(); return r->no_such_bucket();
  }
  if (!commit(r, std::move(ops))) return;
  FC_LOG_INFO("s3.bucket_deleted", "bucket={}", r->bucket);
  r->reply(204, {}, "");
}

void s3_api::head_bucket(const std::shared_ptr<request>& r) {
  if (!catalog_.bucket(r->bucket)) return r->no_such_bucket();
  r->reply(200, {{"x-amz-bucket-region", settings_.region}}, "");
}

void s3_api::list_objects(const std::shared_ptr<request>& r) {
  if (r->query.at("list-type") != "2") return r->error(400, "InvalidArgument", "list-type must be 2");
  list_request req;
  auto param = [&](std::string_view k) -> const std::string* {
    auto it = r->query.find(k);
    return it == r->query.end() ? nullptr : &it->second;
  };
  if (const auto* p = param("prefix")) req.prefix = *p;
  if (const auto* p = param("delimiter")) req.delimiter = *p;
  if (const auto* p = param("start-after")) req.start_after = *p;
  if (const auto* p = param("continuation-token")) req.continuation_token = *p;
  if (const auto* p = param("max-keys")) {
    int n = -1;
    auto [end, ec] = std::from_chars(p->data(), p->data() + p->size(), n);
    if (ec != std::errc() || end != p->data() + p->size() || n < 0)
      return r->error(400, "InvalidArgument", "Provided max-keys not an integer or within integer range");
    req.max_keys = n;
  }
  const auto* encoding = param("encoding-type");
  if (encoding && *encoding != "url") return r->error(400, "InvalidArgument", "Invalid Encoding Method specified in Request");
  const bool url = encoding != nullptr;
  auto text = [&](std::string_view s) { return xml_escape(url ? auth::uri_encode(s, true) : std::string(s)); };
  list_result res;
  switch (catalog_.list(r->bucket, req, res)) {
    case catalog_error::none: break;
    case catalog_error::no_such_bucket: return r->no_such_bucket();
    default: return r->error(400, "InvalidArgument", "The continuation token provided is incorrect");
  }
  std::string body = fmt::format("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult xmlns=\"{}\"><Name>{}"
                                 "</Name><Prefix>{}</Prefix>",
                                 k_xmlns, xml_escape(r->bucket), text(req.prefix));
  if (req.continuation_token) body += fmt::format("<ContinuationToken>{}</ContinuationToken>", xml_escape(*req.continuation_token));
  if (!req.start_after.empty()) body += fmt::format("<StartAfter>{}</StartAfter>", text(req.start_after));
  body += fmt::format("<KeyCount>{}</KeyCount><MaxKeys>{}</MaxKeys>", res.key_count(), req.max_keys);
  if (!req.delimiter.empty()) body += fmt::format("<Delimiter>{}</Delimiter>", text(req.delimiter));
  if (url) body += "<EncodingType>url</EncodingType>";
  body += fmt::format("<IsTruncated>{}</IsTruncated>", res.truncated ? "true" : "false");
  if (res.truncated) body += fmt::format("<NextContinuationToken>{}</NextContinuationToken>", res.next_continuation_token);
  for (const auto* o : res.contents)
    body += fmt::format("<Contents><Key>{}</Key><LastModified>{}</LastModified><ETag>&quot;{}&quot;</ETag><Size>{}</Size>"
                        "<StorageClass>STANDARD</StorageClass></Contents>",
                        text(o->key), iso_time(o->last_modified_ms), o->etag, o->size);
  for (const auto& p : res.common_prefixes) body += fmt::format("<CommonPrefixes><Prefix>{}</Prefix></CommonPrefixes>", text(p));
  body += "</ListBucketResult>";
  r->reply(200, {}, std::move(body));
}

namespace {
/// What an object keeps of its PUT (or CreateMultipartUpload) request: content headers, user metadata.
void keep_headers(const common::http_exchange& x, std::map<std::string, std::string>& headers,
                  std::map<std::string, std::string>& metadata) {
  for (const auto& [k, v] : x.request_headers()) {
    std::string name(k);
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (name.starts_with("x-amz-meta-"))
      metadata[name.substr(11)] = std::string(v);
    else if (std::find(std::begin(k_content_headers), std::end(k_content_headers), name) != std::end(k_content_headers))
      headers[name] = std::string(v);
  }
}
}  // namespace

void s3_api::receive_blob(const std::shared_ptr<request>& r, std::function<void(blob)> done) {
  auto& x = *r->x;
  const auto length = x.content_length();
  if (!length) return r->error(411, "MissingContentLength", "You must provide the Content-Length HTTP header.");
  if (*length > settings_.max_object_bytes)
    return r->error(400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size");
  std::string md5_header(x.header("content-md5"));
  auto created = blobs_.create();
  if (!created) {
    errors_.inc();
    return r->error(500, "InternalError", "We encountered an internal error. Please try again.");
  }
  auto writer = std::make_shared<blob_store::writer>(std::move(*created));
  x.read_body(
      [this, writer](std::string_view piece) {
        bytes_in_.inc(piece.size());
        return !writer->write(piece);
      },
      [this, r, writer, md5_header, done = std::move(done)](boost::system::error_code ec) {
        if (ec) {
          FC_LOG_INFO("s3.upload_failed", "path={} reason={:q}", common::untrusted(r->path),
                      common::untrusted(ec.message()));
          if (ec == boost::asio::error::operation_aborted) {  // the blob store refused a write
            errors_.inc();
            return r->error(500, "InternalError", "The object could not be written.");
          }
          return r->x->finish(false);
        }
        auto stored = writer->commit();
        if (!stored) {
          errors_.inc();
          return r->error(500, "InternalError", "The object could not be written.");
        }
        auto refuse = [&](unsigned status, std::string_view code, std::string_view message) {
          drop_unreferenced(stored->sha256);
          errors_.inc();
          r->error(status, code, message);
        };
        if (!r->auth.content_sha256.empty() && r->auth.content_sha256 != stored->sha256)
          return refuse(400, "XAmzContentSHA256Mismatch",
                        "The provided 'x-amz-content-sha256' header does not match what was computed.");
        if (!md5_header.empty()) {
          auto md5 = common::base64_decode(md5_header);
          if (!md5 || md5->size() != 16) return refuse(400, "InvalidDigest", "The Content-MD5 you specified was invalid.");
          if (common::hex(*md5) != stored->md5)
            return refuse(400, "BadDigest", "The Content-MD5 you specified did not match what we received.");
        }
        done(*stored);
      });
}

void s3_api::drop_unreferenced(const std::string& blob) {
  if (!catalog_.referenced(blob)) blobs_.remove(blob);
}

void s3_api::put_object(const std::shared_ptr<request>& r) {
  if (!r->x->header("x-amz-copy-source").empty()) return r->error(501, "NotImplemented", "CopyObject is not implemented");
  if (!catalog_.bucket(r->bucket)) return r->no_such_bucket();
  if (!catalog::valid_key(r->key)) return r->error(400, "KeyTooLongError", "Your key is too long");
  object_entry o;
  o.key = r->key;
  keep_headers(*r->x, o.headers, o.metadata);
  receive_blob(r, [this, r, o = std::move(o)](blob stored) mutable {
    o.blob = stored.sha256;
    o.etag = stored.md5;
    o.size = stored.size;
    o.last_modified_ms = clock_.wall_ms();
    std::vector<storage::operation> ops;
    std::optional<std::string> released;
    if (catalog_.put_object(r->bucket, o, new_version_id(), ops, released) != catalog_error::none) {  // deleted meanwhile
      drop_unreferenced(stored.sha256);
      return r->no_such_bucket();
    }
    if (!commit(r, std::move(ops))) return;
    if (released) blobs_.remove(*released);
    headers h{{"ETag", "\"" + o.etag + "\""}};
    if (const auto* made = catalog_.object(r->bucket, r->key)) add_version_header(r->bucket, *made, h);
    r->reply(200, std::move(h), "");
  });
}

void s3_api::create_upload(const std::shared_ptr<request>& r) {
  if (!catalog_.bucket(r->bucket)) return r->no_such_bucket();
  if (!catalog::valid_key(r->key)) return r->error(400, "KeyTooLongError", "Your key is too long");
  upload_entry u;
  unsigned char id[16];
  RAND_bytes(id, sizeof id);
  u.id = common::hex(id, sizeof id);
  u.bucket = r->bucket;
  u.key = r->key;
  u.created_ms = clock_.wall_ms();
  keep_headers(*r->x, u.headers, u.metadata);
  std::vector<storage::operation> ops;
  const std::string upload_id = u.id;
  catalog_.create_upload(std::move(u), ops);
  if (!commit(r, std::move(ops))) return;
  r->reply(200, {},
           fmt::format("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<InitiateMultipartUploadResult xmlns=\"{}\">"
                       "<Bucket>{}</Bucket><Key>{}</Key><UploadId>{}</UploadId></InitiateMultipartUploadResult>",
                       k_xmlns, xml_escape(r->bucket), xml_escape(r->key), upload_id));
}

void s3_api::upload_part(const std::shared_ptr<request>& r) {
  const std::string& id = r->query.at("uploadId");
  if (!catalog_.bucket(r->bucket)) return r->no_such_bucket();
  if (!catalog_.upload(id, r->bucket, r->key))
    return r->error(404, "NoSuchUpload", "The specified upload does not exist. The upload ID may be invalid, or the "
                                         "upload may have been aborted or completed.");
  int number = 0;
  const std::string& n = r->query.contains("partNumber") ? r->query.at("partNumber") : std::string();
  auto [end, ec] = std::from_chars(n.data(), n.data() + n.size(), number);
  if (ec != std::errc() || end != n.data() + n.size() || number < 1 || number > 10000)
    return r->error(400, "InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive");
  receive_blob(r, [this, r, id, number](blob stored) {
    std::vector<storage::operation> ops;
    std::optional<std::string> released;
    if (catalog_.put_part(id, number, {stored.sha256, stored.md5, stored.size}, ops, released) !=
        catalog_error::none) {  // aborted meanwhile
      drop_unreferenced(stored.sha256);
      return r->error(404, "NoSuchUpload", "The specified upload does not exist.");
    }
    if (!commit(r, std::move(ops))) return;
    if (released) blobs_.remove(*released);
    r->reply(200, {{"ETag", "\"" + stored.md5 + "\""}}, "");
  });
}

void s3_api::complete_upload(const std::shared_ptr<request>& r) {
  read_small_body(r, 1 << 20, [this, r](const std::string& body) {
    const std::string& id = r->query.at("uploadId");
    if (!catalog_.bucket(r->bucket)) return r->no_such_bucket();
    const upload_entry* u = catalog_.upload(id, r->bucket, r->key);
    if (!u) return r->error(404, "NoSuchUpload", "The specified upload does not exist.");
    auto listed = parse_complete_multipart_upload(body);
    if (!listed)
      return r->error(400, "MalformedXML",
                      "The XML you provided was not well-formed or did not validate against our published schema");
    // The parts as listed: ascending, each uploaded with that ETag, all but the last at least 5 MiB.
    std::vector<const upload_entry::part*> parts;
    for (std::size_t i = 0; i < listed->size(); ++i) {
      const auto& want = (*listed)[i];
      if (i > 0 && want.number <= (*listed)[i - 1].number)
        return r->error(400, "InvalidPartOrder", "The list of parts was not in ascending order.");
      auto it = u->parts.find(want.number);
      if (it == u->parts.end() || it->second.etag != want.etag)
        return r->error(400, "InvalidPart", "One or more of the specified parts could not be found. The part may "
                                            "not have been uploaded, or the specified entity tag may not match the "
                                            "part's entity tag.");
      parts.push_back(&it->second);
    }
    for (std::size_t i = 0; i + 1 < parts.size(); ++i)
      if (parts[i]->size < 5 * 1024 * 1024)
        return r->error(400, "EntityTooSmall", "Your proposed upload is smaller than the minimum allowed size");
    // The object is the parts' bytes, one after the other, in a blob of its own.
    auto created = blobs_.create();
    if (!created) return r->error(500, "InternalError", "We encountered an internal error. Please try again.");
    std::string md5s;
    for (const auto* p : parts) {
      boost::system::error_code write_error;
      auto read_error = blobs_.read(p->blob, 0, p->size, [&](std::string_view piece) {
        write_error = created->write(piece);
        return !write_error;
      });
      if (read_error || write_error) {
        errors_.inc();
        return r->error(500, "InternalError", "The object could not be assembled.");
      }
      md5s += common::unhex(p->etag).value_or("");  // our own hex MD5
    }
    auto stored = created->commit();
    if (!stored) return r->error(500, "InternalError", "The object could not be assembled.");
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_size = 0;
    EVP_Digest(md5s.data(), md5s.size(), digest, &digest_size, EVP_md5(), nullptr);
    object_entry o;
    o.key = r->key;
    o.blob = stored->sha256;
    o.etag = common::hex(digest, digest_size) + "-" +
             std::to_string(parts.size());
    o.size = stored->size;
    o.last_modified_ms = clock_.wall_ms();
    o.headers = u->headers;
    o.metadata = u->metadata;
    const std::string etag = o.etag;
    std::vector<storage::operation> ops;
    std::vector<std::string> released;
    catalog_.end_upload(id, std::move(o), new_version_id(), ops, released);
    if (!commit(r, std::move(ops))) return;
    for (const auto& b : released) drop_unreferenced(b);
    headers h;
    if (const auto* made = catalog_.object(r->bucket, r->key)) add_version_header(r->bucket, *made, h);
    r->reply(200, std::move(h),
             fmt::format("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CompleteMultipartUploadResult xmlns=\"{}\">"
                         "<Location>{}</Location><Bucket>{}</Bucket><Key>{}</Key><ETag>&quot;{}&quot;</ETag>"
                         "</CompleteMultipartUploadResult>",
                         k_xmlns, xml_escape(r->path), xml_escape(r->bucket), xml_escape(r->key), etag));
  });
}

void s3_api::abort_upload(const std::shared_ptr<request>& r) {
  if (!catalog_.bucket(r->bucket)) return r->no_such_bucket();
  const std::string& id = r->query.at("uploadId");
  if (!catalog_.upload(id, r->bucket, r->key)) return r->error(404, "NoSuchUpload", "The specified upload does not exist.");
  std::vector<storage::operation> ops;
  std::vector<std::string> released;
  catalog_.end_upload(id, std::nullopt, {}, ops, released);
  if (!commit(r, std::move(ops))) return;
  for (const auto& b : released) drop_unreferenced(b);
  r->reply(204, {}, "");
}

void s3_api::get_object(const std::shared_ptr<request>& r, bool head) {
  if (!catalog_.bucket(r->bucket)) return r->no_such_bucket();
  auto asked = r->query.find("versionId");
  const std::string version_id = asked == r->query.end() ? std::string() : asked->second;
  const object_entry* o = catalog_.version(r->bucket, r->key, version_id);
  if (!o && !version_id.empty())
    return r->error(404, "NoSuchVersion", "The specified version does not exist.");
  if (!o) return r->error(404, "NoSuchKey", "The specified key does not exist.");
  if (o->delete_marker) {
    // The key reads as deleted; asked by its version id, a marker has no content to give.
    headers marker{{"x-amz-delete-marker", "true"}};
    add_version_header(r->bucket, *o, marker);
    if (!version_id.empty())
      return r->error(405, "MethodNotAllowed", "The specified method is not allowed against this resource.",
                      std::move(marker));
    return r->error(404, "NoSuchKey", "The specified key does not exist.", std::move(marker));
  }
  headers h{{"ETag", "\"" + o->etag + "\""},
            {"Last-Modified", http_time(o->last_modified_ms)},
            {"Accept-Ranges", "bytes"}};
  add_version_header(r->bucket, *o, h);
  bool typed = false;
  for (const auto& [name, value] : o->headers) {
    // response-content-type & co. override what was stored.
    auto over = r->query.find("response-" + name);
    h.emplace_back(name, over == r->query.end() ? value : over->second);
    typed |= name == "content-type";
  }
  for (auto name : k_content_headers)
    if (!o->headers.contains(std::string(name)))
      if (auto over = r->query.find("response-" + std::string(name)); over != r->query.end()) {
        h.emplace_back(std::string(name), over->second);
        typed |= name == "content-type";
      }
  if (!typed) h.emplace_back("Content-Type", "binary/octet-stream");
  for (const auto& [name, value] : o->metadata) h.emplace_back("x-amz-meta-" + name, value);
  std::uint64_t first = 0, end = o->size;
  unsigned status = 200;
  if (auto range_header = r->x->header("range"); !range_header.empty())
    if (auto range = parse_range(range_header, o->size)) {
      if (range->unsatisfiable)
        return r->error(416, "InvalidRange", "The requested range is not satisfiable",
                        {{"Content-Range", fmt::format("bytes */{}", o->size)}});
      first = range->first;
      end = range->end;
      status = 206;
      h.emplace_back("Content-Range", fmt::format("bytes {}-{}/{}", first, end - 1, o->size));
    }
  h.emplace_back("x-amz-request-id", r->id);
  // Opened now: a PUT or DELETE of the key while the bytes go out does not cut the download short.
  auto opened = blobs_.open(o->blob);
  if (!opened) {
    errors_.inc();
    FC_LOG_WARN("s3.blob_missing", "bucket={} key={:q} blob={}", r->bucket, common::untrusted(r->key), o->blob);
    return r->error(500, "InternalError", "We encountered an internal error. Please try again.");
  }
  auto reader = std::make_shared<blob_store::reader>(std::move(*opened));
  r->x->send_head(status, std::move(h), end - first, [this, r, head, reader, first, end](boost::system::error_code ec) {
    if (ec) return;
    if (head || first == end) return r->x->finish(true);
    stream_blob(r, reader, first, end);
  });
}

void s3_api::stream_blob(const std::shared_ptr<request>& r, std::shared_ptr<blob_store::reader> blob,
                         std::uint64_t offset, std::uint64_t end) {
  std::string piece;
  const std::uint64_t n = std::min(k_piece, end - offset);
  auto ec = blob->read(offset, n, [&piece](std::string_view bytes) {
    piece.append(bytes);
    return true;
  });
  if (ec || piece.size() != n) {  // the head is sent: all that is left is to cut the connection
    FC_LOG_WARN("s3.read_failed", "path={} offset={} reason={:q}", common::untrusted(r->path), offset,
                common::untrusted(ec.message()));
    return r->x->finish(false);
  }
  bytes_out_.inc(n);
  r->x->send_body(std::move(piece), [this, r, blob = std::move(blob), next = offset + n, end](boost::system::error_code ec) mutable {
    if (ec) return;
    if (next == end) return r->x->finish(true);
    stream_blob(r, std::move(blob), next, end);
  });
}

void s3_api::delete_object(const std::shared_ptr<request>& r) {
  std::vector<storage::operation> ops;
  std::optional<std::string> released;
  std::optional<object_entry> deleted;
  auto asked = r->query.find("versionId");
  const std::string version_id = asked == r->query.end() ? std::string() : asked->second;
  switch (catalog_.delete_object(r->bucket, r->key, version_id, new_version_id(), ops, released, deleted)) {
    case catalog_error::none: break;
    case catalog_error::no_such_bucket: return r->no_such_bucket();
    default: return r->error(404, "NoSuchVersion", "The specified version does not exist.");
  }
  if (!commit(r, std::move(ops))) return;
  if (released) blobs_.remove(*released);
  headers h;
  if (deleted) {
    if (deleted->delete_marker) h.emplace_back("x-amz-delete-marker", "true");
    h.emplace_back("x-amz-version-id", deleted->version_id);
  }
  r->reply(204, std::move(h), "");
}

std::string s3_api::new_version_id() {
  unsigned char random[10];
  RAND_bytes(random, sizeof random);
  return fmt::format("{:012x}", clock_.wall_ms()) + common::hex(random, sizeof random);
}

void s3_api::add_version_header(const std::string& bucket, const object_entry& o, headers& h) const {
  const auto* b = catalog_.bucket(bucket);
  if (b && !b->versioning.empty()) h.emplace_back("x-amz-version-id", o.version_id);
}

void s3_api::put_versioning(const std::shared_ptr<request>& r) {
  read_small_body(r, 64 * 1024, [this, r](const std::string& body) {
    if (!catalog_.bucket(r->bucket)) return r->no_such_bucket();
    auto status = parse_versioning_status(body);
    if (!status) {
      errors_.inc();
      return r->error(400, "MalformedXML",
                      "The XML you provided was not well-formed or did not validate against our published schema");
    }
    if (*status != "Enabled" && *status != "Suspended") {
      errors_.inc();
      return r->error(400, "IllegalVersioningConfigurationException",
                      "The Versioning element must be specified: Enabled or Suspended");
    }
    std::vector<storage::operation> ops;
    catalog_.set_versioning(r->bucket, *status, ops);
    if (!commit(r, std::move(ops))) return;
    FC_LOG_INFO("s3.versioning", "bucket={} status={}", r->bucket, *status);
    r->reply(200, {}, "");
  });
}

void s3_api::list_versions(const std::shared_ptr<request>& r) {
  if (r->query.contains("delimiter"))
    return r->error(501, "NotImplemented", "fleetcore lists object versions without a delimiter");
  auto q = [&](const char* name) {
    auto it = r->query.find(name);
    return it == r->query.end() ? std::string() : it->second;
  };
  versions_request req;
  req.prefix = q("prefix");
  req.key_marker = q("key-marker");
  req.version_id_marker = q("version-id-marker");
  if (auto max = q("max-keys"); !max.empty()) {
    auto [end, ec] = std::from_chars(max.data(), max.data() + max.size(), req.max_keys);
    if (ec != std::errc() || end != max.data() + max.size() || req.max_keys < 0)
      return r->error(400, "InvalidArgument", "max-keys must be a non-negative integer");
  }
  versions_result res;
  if (catalog_.list_versions(r->bucket, req, res) != catalog_error::none) return r->no_such_bucket();
  std::string body = fmt::format(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListVersionsResult xmlns=\"{}\"><Name>{}</Name><Prefix>{}</Prefix>"
      "<KeyMarker>{}</KeyMarker><VersionIdMarker>{}</VersionIdMarker><MaxKeys>{}</MaxKeys><IsTruncated>{}</IsTruncated>",
      k_xmlns, xml_escape(r->bucket), xml_escape(req.prefix), xml_escape(req.key_marker),
      xml_escape(req.version_id_marker), std::clamp(req.max_keys, 0, 1000), res.truncated ? "true" : "false");
  if (res.truncated)
    body += fmt::format("<NextKeyMarker>{}</NextKeyMarker><NextVersionIdMarker>{}</NextVersionIdMarker>",
                        xml_escape(res.next_key_marker), xml_escape(res.next_version_id_marker));
  const std::string owner = "<Owner><ID>fleetcore</ID><DisplayName>fleetcore</DisplayName></Owner>";
  for (const auto& v : res.versions) {
    const auto& e = *v.entry;
    if (e.delete_marker)
      body += fmt::format("<DeleteMarker><Key>{}</Key><VersionId>{}</VersionId><IsLatest>{}</IsLatest>"
                          "<LastModified>{}</LastModified>{}</DeleteMarker>",
                          xml_escape(e.key), e.version_id, v.latest ? "true" : "false", iso_time(e.last_modified_ms), owner);
    else
      body += fmt::format("<Version><Key>{}</Key><VersionId>{}</VersionId><IsLatest>{}</IsLatest>"
                          "<LastModified>{}</LastModified><ETag>&quot;{}&quot;</ETag><Size>{}</Size>{}"
                          "<StorageClass>STANDARD</StorageClass></Version>",
                          xml_escape(e.key), e.version_id, v.latest ? "true" : "false", iso_time(e.last_modified_ms),
                          e.etag, e.size, owner);
  }
  body += "</ListVersionsResult>";
  r->reply(200, {}, std::move(body));
}

}  // namespace fleetcore::objects
