#include "ota/streams.hpp"

#include "common/aws_names.hpp"
#include "common/aws_paging.hpp"
#include "common/json_members.hpp"
#include "common/log.hpp"

#include <boost/asio/post.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <charconv>
#include <future>
#include <set>
#include <stdexcept>

namespace fleetcore::ota {

namespace json = boost::json;
using common::aws_response;

namespace {
constexpr std::string_view k_kind = "stream";
constexpr std::size_t k_max_files = 50;
constexpr std::size_t k_max_description = 2028;


bool valid_stream_id(std::string_view id) {
  return !id.empty() && id.size() <= 128 && std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

/// A request topic's rest after `$aws/things/<thing>/streams/`: <streamId>/<op>/<format>.
struct stream_topic {
  std::string_view id, op, format;
};
std::optional<stream_topic> split(std::string_view rest) {
  auto a = rest.find('/');
  if (a == std::string_view::npos) return std::nullopt;
  auto b = rest.find('/', a + 1);
  if (b == std::string_view::npos) return std::nullopt;
  stream_topic t{rest.substr(0, a), rest.substr(a + 1, b - a - 1), rest.substr(b + 1)};
  if (t.format.find('/') != std::string_view::npos) return std::nullopt;
  return t;
}
bool is_answer(std::string_view op) { return op == "description" || op == "data" || op == "rejected"; }
}  // namespace

// --- the stored form ---------------------------------------------------------------------------

std::string stream::to_json() const {
  json::array fs;
  for (const auto& f : files)
    fs.push_back(json::object{{"id", f.id}, {"bucket", f.bucket}, {"key", f.key}, {"version", f.version},
                              {"blob", f.blob}, {"etag", f.etag}, {"size", f.size}, {"resolved", f.resolved_version}});
  return json::serialize(json::object{{"id", id},
                                      {"description", description},
                                      {"roleArn", role_arn},
                                      {"version", version},
                                      {"files", std::move(fs)},
                                      {"createdMs", created_ms},
                                      {"updatedMs", updated_ms},
                                      {"otaUpdate", ota_update}});
}

std::optional<stream> stream::from_json(std::string_view body) {
  boost::system::error_code ec;
  auto v = json::parse(body, ec);
  if (ec || !v.is_object()) return std::nullopt;
  const auto& o = v.as_object();
  stream s;
  s.id = common::text_member(o, "id").value_or("");
  s.description = common::text_member(o, "description").value_or("");
  s.role_arn = common::text_member(o, "roleArn").value_or("");
  s.version = common::int_member(o, "version").value_or(1);
  s.created_ms = common::int_member(o, "createdMs").value_or(0);
  s.updated_ms = common::int_member(o, "updatedMs").value_or(0);
  s.ota_update = common::text_member(o, "otaUpdate").value_or("");
  const auto* fs = o.if_contains("files");
  if (!valid_stream_id(s.id) || !fs || !fs->is_array()) return std::nullopt;
  for (const auto& fv : fs->as_array()) {
    if (!fv.is_object()) return std::nullopt;
    const auto& f = fv.as_object();
    stream_file file;
    file.id = static_cast<std::uint32_t>(common::int_member(f, "id").value_or(0));
    file.bucket = common::text_member(f, "bucket").value_or("");
    file.key = common::text_member(f, "key").value_or("");
    file.version = common::text_member(f, "version").value_or("");
    file.blob = common::text_member(f, "blob").value_or("");
    file.etag = common::text_member(f, "etag").value_or("");
    file.size = static_cast<std::uint64_t>(common::int_member(f, "size").value_or(0));
    file.resolved_version = common::text_member(f, "resolved").value_or("null");
    s.files.push_back(std::move(file));
  }
  return s;
}

// --- the service -------------------------------------------------------------------------------

stream_service::stream_service(storage::store& store, common::clock& clock, objects::links objects,
                               std::string arn_prefix, stream_settings s)
    : store_(store),
      clock_(clock),
      objects_(std::move(objects)),
      arn_prefix_(std::move(arn_prefix)),
      settings_(s),
      work_(io_.get_executor()) {
  for (const auto& d : store_.load_documents(std::string(k_kind))) {
    auto st = stream::from_json(d.body);
    if (!st || st->id != d.key) throw std::runtime_error("unreadable stream " + d.key);
    std::string id = st->id;
    streams_.emplace(std::move(id), std::make_shared<const stream>(std::move(*st)));
  }
  if (!streams_.empty()) FC_LOG_INFO("streams.loaded", "streams={}", streams_.size());
}

stream_service::~stream_service() { stop(); }

void stream_service::start() {
  thread_ = std::thread([this] { io_.run(); });
}

void stream_service::stop() {
  if (!thread_.joinable()) return;
  work_.reset();
  thread_.join();
}

void stream_service::drain() {
  std::promise<void> done;
  boost::asio::post(io_, [&done] { done.set_value(); });
  done.get_future().wait();
}

std::vector<std::string_view> stream_service::operations() {
  return {"CreateStream", "DescribeStream", "ListStreams", "UpdateStream", "DeleteStream"};
}

aws_response stream_service::call(std::string_view op, const json::object& in) {
  if (op == "CreateStream") return create(in, {});
  if (op == "DescribeStream") return describe(in);
  if (op == "ListStreams") return list(in);
  if (op == "UpdateStream") return update(in);
  if (op == "DeleteStream") return remove(in);
  return aws_response::invalid("unknown operation");
}

aws_response stream_service::create_owned(const json::object& in, const std::string& owner) { return create(in, owner); }

bool stream_service::save(const stream& s) {
  return store_.submit_and_wait({storage::op::put_document{{std::string(k_kind), s.id, s.to_json()}}});
}

std::optional<aws_response> stream_service::resolve_files(const json::object& in, std::vector<stream_file>& out) const {
  const auto* files = in.if_contains("files");
  if (!files || !files->is_array() || files->as_array().empty() || files->as_array().size() > k_max_files)
    return aws_response::invalid("files must list 1 to 50 files");
  std::set<std::uint32_t> ids;
  for (const auto& fv : files->as_array()) {
    const auto* f = fv.if_object();
    if (!f) return aws_response::invalid("each file must be an object with fileId and s3Location");
    auto id = common::int_member(*f, "fileId").value_or(0);
    if (id < 0 || id > 255) return aws_response::invalid("fileId must be 0-255");
    if (!ids.insert(static_cast<std::uint32_t>(id)).second) return aws_response::invalid("fileId " + std::to_string(id) + " is repeated");
    const auto* loc = common::object_member(*f, "s3Location");
    if (!loc) return aws_response::invalid("each file needs an s3Location (bucket, key)");
    stream_file file;
    file.id = static_cast<std::uint32_t>(id);
    file.bucket = common::text_member(*loc, "bucket").value_or("");
    file.key = common::text_member(*loc, "key").value_or("");
    file.version = common::text_member(*loc, "version").value_or("");
    if (file.bucket.empty() || file.key.empty()) return aws_response::invalid("s3Location needs a bucket and a key");
    if (!objects_.locate) return aws_response::invalid("streams need the object store (the api listener)");
    std::string error;
    auto located = objects_.locate(file.bucket, file.key, file.version, error);
    if (!located) return aws_response::not_found(error);
    file.blob = std::move(located->blob);
    file.etag = std::move(located->etag);
    file.size = located->size;
    file.resolved_version = std::move(located->version_id);
    out.push_back(std::move(file));
  }
  return std::nullopt;
}

aws_response stream_service::create(const json::object& in, const std::string& owner) {
  const std::string id(common::text_member(in, "streamId").value_or(""));
  if (!valid_stream_id(id)) return aws_response::invalid("streamId must match [a-zA-Z0-9_-]{1,128}");
  stream s;
  s.id = id;
  s.description = common::text_member(in, "description").value_or("");
  if (s.description.size() > k_max_description) return aws_response::invalid("description is longer than 2028 characters");
  s.role_arn = common::text_member(in, "roleArn").value_or("");
  if (s.role_arn.size() < 20 || s.role_arn.size() > 2048) return aws_response::invalid("roleArn must be an ARN of 20-2048 characters");
  if (auto e = resolve_files(in, s.files)) return *e;
  {
    std::shared_lock lock(mutex_);
    if (streams_.contains(id))
      return aws_response::already_exists("Stream " + id + " already exists", id, arn(id));
  }
  s.created_ms = s.updated_ms = clock_.wall_ms();
  s.ota_update = owner;
  if (!save(s)) return aws_response::error(500, "InternalFailureException", "the stream could not be stored");
  json::object out{{"streamId", s.id}, {"streamArn", arn(s.id)}, {"description", s.description}, {"streamVersion", s.version}};
  {
    std::unique_lock lock(mutex_);
    streams_[id] = std::make_shared<const stream>(std::move(s));
  }
  return aws_response::ok(json::serialize(out));
}

aws_response stream_service::describe(const json::object& in) const {
  const auto id = common::text_member(in, "streamId").value_or("");
  std::shared_ptr<const stream> s;
  {
    std::shared_lock lock(mutex_);
    if (auto it = streams_.find(id); it != streams_.end()) s = it->second;
  }
  if (!s) return aws_response::not_found("Stream " + std::string(id) + " does not exist");
  json::array files;
  for (const auto& f : s->files) {
    json::object loc{{"bucket", f.bucket}, {"key", f.key}};
    if (!f.version.empty()) loc["version"] = f.version;
    files.push_back(json::object{{"fileId", f.id}, {"s3Location", std::move(loc)}});
  }
  return aws_response::ok(json::serialize(json::object{{"streamInfo", json::object{{"streamId", s->id},
                                                                                   {"streamArn", arn(s->id)},
                                                                                   {"streamVersion", s->version},
                                                                                   {"description", s->description},
                                                                                   {"files", std::move(files)},
                                                                                   {"createdAt", common::api_time(s->created_ms)},
                                                                                   {"lastUpdatedAt", common::api_time(s->updated_ms)},
                                                                                   {"roleArn", s->role_arn}}}}));
}

aws_response stream_service::list(const json::object& in) const {
  std::int64_t max = 0;
  if (auto e = common::page_size(in, "maxResults", 250, 250, max)) return aws_response::from(*e);
  const bool ascending = common::bool_member(in, "ascendingOrder").value_or(false);
  std::vector<std::shared_ptr<const stream>> all;
  {
    std::shared_lock lock(mutex_);
    for (const auto& [id, s] : streams_) all.push_back(s);
  }
  // Pages by creation time (then id), newest first unless ascendingOrder; the token is the index of
  // the next stream, which a creation or deletion between two pages may shift by one, as AWS's may.
  std::sort(all.begin(), all.end(), [ascending](const auto& a, const auto& b) {
    auto ka = std::tie(a->created_ms, a->id), kb = std::tie(b->created_ms, b->id);
    return ascending ? ka < kb : kb < ka;
  });
  std::size_t from = 0;
  if (auto token = common::text_member(in, "nextToken"); token && !token->empty()) {
    auto [p, ec] = std::from_chars(token->data(), token->data() + token->size(), from);
    if (ec != std::errc() || p != token->data() + token->size()) return aws_response::invalid("nextToken is not one ListStreams gave");
  }
  json::array streams;
  std::size_t i = from;
  for (; i < all.size() && streams.size() < std::size_t(max); ++i)
    streams.push_back(json::object{{"streamId", all[i]->id},
                                   {"streamArn", arn(all[i]->id)},
                                   {"streamVersion", all[i]->version},
                                   {"description", all[i]->description}});
  json::object out{{"streams", std::move(streams)}};
  if (i < all.size()) out["nextToken"] = std::to_string(i);
  return aws_response::ok(json::serialize(out));
}

aws_response stream_service::update(const json::object& in) {
  const std::string id(common::text_member(in, "streamId").value_or(""));
  std::shared_ptr<const stream> old;
  {
    std::shared_lock lock(mutex_);
    if (auto it = streams_.find(id); it != streams_.end()) old = it->second;
  }
  if (!old) return aws_response::not_found("Stream " + id + " does not exist");
  stream s = *old;
  if (auto d = common::text_member(in, "description")) {
    if (d->size() > k_max_description) return aws_response::invalid("description is longer than 2028 characters");
    s.description = *d;
  }
  if (auto role = common::text_member(in, "roleArn")) {
    if (role->size() < 20 || role->size() > 2048) return aws_response::invalid("roleArn must be an ARN of 20-2048 characters");
    s.role_arn = *role;
  }
  if (in.contains("files")) {
    s.files.clear();
    if (auto e = resolve_files(in, s.files)) return *e;
  }
  if (s.version >= 65535) return aws_response::error(410, "LimitExceededException", "the stream's version is at its limit");
  ++s.version;
  s.updated_ms = clock_.wall_ms();
  if (!save(s)) return aws_response::error(500, "InternalFailureException", "the stream could not be stored");
  json::object out{{"streamId", s.id}, {"streamArn", arn(s.id)}, {"description", s.description}, {"streamVersion", s.version}};
  {
    std::unique_lock lock(mutex_);
    streams_[id] = std::make_shared<const stream>(std::move(s));
  }
  return aws_response::ok(json::serialize(out));
}

aws_response stream_service::remove(const json::object& in) {
  const std::string id(common::text_member(in, "streamId").value_or(""));
  std::shared_ptr<const stream> s;
  {
    std::shared_lock lock(mutex_);
    if (auto it = streams_.find(id); it != streams_.end()) s = it->second;
  }
  if (!s) return aws_response::not_found("Stream " + id + " does not exist");
  if (!s->ota_update.empty())
    return aws_response::error(409, "DeleteConflictException",
                               "Stream " + id + " belongs to OTA update " + s->ota_update + ": delete the update first");
  if (!delete_owned(id)) return aws_response::error(500, "InternalFailureException", "the stream could not be deleted");
  return aws_response::ok("{}");
}

std::shared_ptr<const stream> stream_service::find(std::string_view id) const {
  std::shared_lock lock(mutex_);
  auto it = streams_.find(id);
  return it == streams_.end() ? nullptr : it->second;
}

std::vector<std::pair<std::string, std::string>> stream_service::owned() const {
  std::vector<std::pair<std::string, std::string>> out;
  std::shared_lock lock(mutex_);
  for (const auto& [id, s] : streams_)
    if (!s->ota_update.empty()) out.emplace_back(id, s->ota_update);
  return out;
}

void stream_service::release(const std::string& id) {
  auto s = find(id);
  if (!s || s->ota_update.empty()) return;
  auto copy = std::make_shared<stream>(*s);
  copy->ota_update.clear();
  if (!save(*copy)) return;
  std::unique_lock lock(mutex_);
  streams_[id] = std::move(copy);
}

bool stream_service::delete_owned(const std::string& id) {
  if (!store_.submit_and_wait({storage::op::delete_document{std::string(k_kind), id}})) return false;
  std::unique_lock lock(mutex_);
  streams_.erase(id);
  return true;
}

// --- the device side ---------------------------------------------------------------------------

broker::topic_claim stream_service::claim(std::string_view topic) const {
  auto t = common::parse_thing_topic(topic);
  if (!t || t->service != "streams") return broker::topic_claim::none;
  auto st = split(t->rest);
  // The answers are the service's to publish; anything else under streams/ is a request (a
  // malformed one is answered InvalidTopic) and reaches no subscriber.
  if (st && is_answer(st->op)) return broker::topic_claim::reserved;
  return broker::topic_claim::consumed;
}

bool stream_service::on_message(const broker::message_ptr& m, const broker::publish_context& ctx) {
  auto t = common::parse_thing_topic(m->topic);
  if (!t || t->service != "streams") return false;
  auto st = split(t->rest);
  if (st && is_answer(st->op)) return false;  // the service's own answers
  if (m->origin == 0 || ctx.client_id.empty()) {
    FC_LOG_DEBUG("streams.request_without_session", "topic={:q}", common::untrusted(m->topic));
    return true;
  }
  requests_.inc();
  device_request r;
  r.thing = std::string(t->thing);
  r.client_id = std::string(ctx.client_id);
  r.session = m->origin;
  r.payload = m->payload;
  stream_rejection bad_topic;
  if (!st || st->id.empty() || (st->op != "describe" && st->op != "get") ||
      (st->format != "json" && st->format != "cbor")) {
    // Answered on the stream's rejected topic in JSON, when the topic names a stream at all.
    auto slash = t->rest.find('/');
    r.stream_id = std::string(t->rest.substr(0, slash));
    r.format = st && st->format == "cbor" ? wire_format::cbor : wire_format::json;
    bad_topic = {stream_error::invalid_topic, "the topic is not a stream request: use .../streams/<streamId>/"
                                              "{describe,get}/{json,cbor}", {}};
  } else {
    r.stream_id = std::string(st->id);
    r.get = st->op == "get";
    r.format = st->format == "cbor" ? wire_format::cbor : wire_format::json;
  }
  if (bad_topic.error != stream_error::none) {
    if (!r.stream_id.empty() && valid_stream_id(r.stream_id)) reject(r, bad_topic);
    return true;
  }
  if (!inflight_.admit(r.session)) {
    throttled_.inc();
    reject(r, {stream_error::invalid_request, "too many stream requests in flight on this connection", {}});
    return true;
  }
  boost::asio::post(io_, [this, r = std::move(r)] {
    handle(r);
    inflight_.release(r.client_id, r.session);
  });
  return true;
}

void stream_service::answer(const device_request& r, std::string_view kind, std::string payload) {
  if (!reply) return;
  reply(r.client_id, r.session,
        "$aws/things/" + r.thing + "/streams/" + r.stream_id + "/" + std::string(kind) +
            (r.format == wire_format::cbor ? "/cbor" : "/json"),
        std::move(payload));
}

void stream_service::reject(const device_request& r, const stream_rejection& why) {
  rejected_.inc();
  FC_LOG_DEBUG("streams.rejected", "client={:q} stream={:q} code={} message={:q}", common::untrusted(r.client_id),
               common::untrusted(r.stream_id), error_code(why.error), common::untrusted(why.message));
  answer(r, "rejected", encode_rejection(r.format, why));
}

void stream_service::handle(const device_request& r) {
  stream_rejection why;
  auto req = decode_request(r.format, r.get, r.payload, why);
  if (why.error != stream_error::none) return reject(r, why);
  std::shared_ptr<const stream> s;
  {
    std::shared_lock lock(mutex_);
    if (auto it = streams_.find(r.stream_id); it != streams_.end()) s = it->second;
  }
  if (!s) return reject(r, {stream_error::resource_not_found, "stream " + r.stream_id + " does not exist", req.client_token});
  if (req.version && *req.version != s->version)
    return reject(r, {stream_error::version_mismatch,
                      "the stream's version is " + std::to_string(s->version) + ", not " + std::to_string(*req.version),
                      req.client_token});
  if (!r.get) {
    std::vector<stream_file_info> files;
    for (const auto& f : s->files) files.push_back({f.id, f.size});
    return answer(r, "description", encode_description(r.format, req.client_token, s->version, s->description, files));
  }
  auto file = std::find_if(s->files.begin(), s->files.end(), [&](const stream_file& f) { return f.id == req.file; });
  if (file == s->files.end())
    return reject(r, {stream_error::resource_not_found,
                      "stream " + s->id + " has no file " + std::to_string(req.file), req.client_token});
  auto blocks = select_blocks(req, file->size, why);
  if (why.error != stream_error::none) return reject(r, why);
  const auto block_size = std::uint64_t(req.block_size);
  // One read per run of consecutive blocks (a bitmap may skip some): at most 128 KiB in all.
  std::vector<std::string> payloads;
  payloads.reserve(blocks.size());
  std::string bytes;
  for (std::size_t i = 0; i < blocks.size();) {
    std::size_t j = i + 1;
    while (j < blocks.size() && blocks[j] == blocks[j - 1] + 1) ++j;
    const std::uint64_t from = std::uint64_t(blocks[i]) * block_size;
    const std::uint64_t to = std::min(file->size, (std::uint64_t(blocks[j - 1]) + 1) * block_size);
    auto ec = objects_.read_blob ? objects_.read_blob(file->blob, from, to - from, bytes)
                                 : make_error_code(boost::system::errc::no_such_file_or_directory);
    if (ec == boost::system::errc::no_such_file_or_directory)
      return reject(r, {stream_error::etag_mismatch,
                        "the object " + file->key + " of bucket " + file->bucket +
                            " changed since the stream was made: UpdateStream points it at the object again",
                        req.client_token});
    if (ec || bytes.size() != to - from) {
      FC_LOG_ERROR("streams.read_failed", "stream={:q} file={} error={:q}", common::untrusted(s->id), file->id,
                   common::untrusted(ec.message()));
      return reject(r, {stream_error::internal_error, "the file could not be read", req.client_token});
    }
    for (std::uint64_t at = 0; at < bytes.size(); at += block_size)
      payloads.push_back(bytes.substr(at, std::min<std::uint64_t>(block_size, bytes.size() - at)));
    i = j;
  }
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    blocks_.inc();
    block_bytes_.inc(payloads[i].size());
    answer(r, "data", encode_block(r.format, req.client_token, file->id, blocks[i], payloads[i]));
  }
}

void stream_service::register_metrics(common::registry& r) const {
  r.add(requests_, "fleetcore_streams_requests_total", "", "DescribeStream and GetStream requests of devices over MQTT.");
  r.add(rejected_, "fleetcore_streams_rejected_total", "", "Stream requests answered on /rejected.");
  r.add(blocks_, "fleetcore_streams_blocks_total", "", "File blocks sent to devices.");
  r.add(block_bytes_, "fleetcore_streams_block_bytes_total", "bytes", "File bytes sent to devices in blocks.");
  r.add(throttled_, "fleetcore_streams_throttled_total", "",
        "Stream requests refused because the session had max_inflight_per_session in flight.");
}

}  // namespace fleetcore::ota
