#include "ota/ota_updates.hpp"

#include "auth/sigv4.hpp"
#include "common/aws_paging.hpp"
#include "common/base64.hpp"
#include "common/json_members.hpp"
#include "common/log.hpp"
#include "common/uuid.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <stdexcept>

namespace fleetcore::ota {

namespace json = boost::json;
using common::aws_response;

namespace {
constexpr std::string_view k_kind = "ota_update";
constexpr std::int64_t k_default_url_expiry_s = 1800;  // AWS's default for OTA updates' presigned URLs

std::string text(const json::object& o, std::string_view key) { return std::string(common::text_member(o, key).value_or("")); }

bool valid_id(std::string_view id) {
  return !id.empty() && id.size() <= 128 && std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

/// The job document's placeholder for a presigned URL of an object (version), replaced when a device reads it.
std::string presign_placeholder(const std::string& bucket, const std::string& key, const std::string& version) {
  std::string url = "https://s3.amazonaws.com/" + bucket + "/" + auth::uri_encode(key, true);
  if (!version.empty() && version != "null") url += "?versionId=" + auth::uri_encode(version, false);
  return "${aws:iot:s3-presigned-url:" + url + "}";
}

/// The message of an AWS error body, for errorInfo.
std::string error_message(const aws_response& r) {
  boost::system::error_code ec;
  auto v = json::parse(r.body, ec);
  if (!ec && v.is_object())
    if (auto m = common::text_member(v.as_object(), "message")) return std::string(*m);
  return r.error_type;
}
}  // namespace

std::string ota_update::to_json() const {
  return json::serialize(json::object{{"id", id},
                                      {"request", request},
                                      {"status", status},
                                      {"errorCode", error_code},
                                      {"errorMessage", error_message},
                                      {"jobId", job_id},
                                      {"streamId", stream_id},
                                      {"createdMs", created_ms},
                                      {"modifiedMs", modified_ms}});
}

std::optional<ota_update> ota_update::from_json(std::string_view body) {
  boost::system::error_code ec;
  auto v = json::parse(body, ec);
  if (ec || !v.is_object()) return std::nullopt;
  const auto& o = v.as_object();
  ota_update u;
  u.id = text(o, "id");
  if (const auto* r = common::object_member(o, "request")) u.request = *r;
  u.status = text(o, "status");
  u.error_code = text(o, "errorCode");
  u.error_message = text(o, "errorMessage");
  u.job_id = text(o, "jobId");
  u.stream_id = text(o, "streamId");
  u.created_ms = common::int_member(o, "createdMs").value_or(0);
  u.modified_ms = common::int_member(o, "modifiedMs").value_or(0);
  if (!valid_id(u.id)) return std::nullopt;
  return u;
}

ota_service::ota_service(storage::store& store, common::clock& clock, std::string arn_prefix, stream_service& streams,
                         jobs::jobs_service& jobs, signer::signer_service& signer, objects::links objects,
                         std::function<void(std::function<void()>)> defer)
    : store_(store),
      clock_(clock),
      arn_prefix_(std::move(arn_prefix)),
      streams_(streams),
      jobs_(jobs),
      signer_(signer),
      objects_(std::move(objects)),
      defer_(std::move(defer)) {
  std::vector<storage::operation> interrupted;
  for (const auto& d : store_.load_documents(std::string(k_kind))) {
    auto u = ota_update::from_json(d.body);
    if (!u) throw std::runtime_error("unreadable OTA update " + d.key);
    if (u->status == "CREATE_PENDING" || u->status == "CREATE_IN_PROGRESS") {
      u->status = "CREATE_FAILED";
      u->error_code = "InternalFailure";
      u->error_message = "the server stopped while the update was being created: delete it and create it again";
      interrupted.push_back(storage::op::put_document{{std::string(k_kind), u->id, u->to_json()}});
    }
    std::string id = u->id;
    updates_.emplace(std::move(id), std::move(*u));
  }
  if (!interrupted.empty() && !store_.submit_and_wait(std::move(interrupted)))
    throw std::runtime_error("cannot store the OTA updates a restart interrupted");
  // A stream held by an update that does not know it (a crash between the two commits, or an update
  // deleted meanwhile) is let go: DeleteStream may remove it.
  for (const auto& [stream_id, owner] : streams_.owned()) {
    auto u = updates_.find(owner);
    if (u == updates_.end() || u->second.stream_id != stream_id) streams_.release(stream_id);
  }
}

std::vector<std::string_view> ota_service::operations() {
  return {"CreateOTAUpdate", "GetOTAUpdate", "ListOTAUpdates", "DeleteOTAUpdate"};
}

aws_response ota_service::call(std::string_view op, const json::object& in) {
  if (op == "CreateOTAUpdate") return create(in);
  if (op == "GetOTAUpdate") return get(in);
  if (op == "ListOTAUpdates") return list(in);
  if (op == "DeleteOTAUpdate") return remove(in);
  return aws_response::invalid("unknown operation");
}

bool ota_service::save(const ota_update& u) {
  return store_.submit_and_wait({storage::op::put_document{{std::string(k_kind), u.id, u.to_json()}}});
}

aws_response ota_service::create(const json::object& in) {
  const std::string id = text(in, "otaUpdateId");
  if (!valid_id(id)) return aws_response::invalid("otaUpdateId must match [a-zA-Z0-9_-]{1,128}");
  if (updates_.contains(id))
    return aws_response::already_exists("OTA update " + id + " already exists", id, arn(id));
  // What can be checked without doing the work is checked here; the rest fails the update.
  const auto* targets = in.if_contains("targets");
  if (!targets || !targets->is_array() || targets->as_array().empty()) return aws_response::invalid("targets must list at least one ARN");
  const auto role = text(in, "roleArn");
  if (role.size() < 20 || role.size() > 2048) return aws_response::invalid("roleArn must be an ARN of 20-2048 characters");
  if (text(in, "description").size() > 2028) return aws_response::invalid("description is longer than 2028 characters");
  if (const auto* p = in.if_contains("protocols")) {
    if (!p->is_array() || p->as_array().empty() || p->as_array().size() > 2) return aws_response::invalid("protocols must list MQTT, HTTP or both");
    for (const auto& v : p->as_array())
      if (!v.is_string() || (v.get_string() != "MQTT" && v.get_string() != "HTTP"))
        return aws_response::invalid("protocols must list MQTT, HTTP or both");
  }
  const auto* files = in.if_contains("files");
  if (!files || !files->is_array() || files->as_array().empty() || files->as_array().size() > 50)
    return aws_response::invalid("files must list 1 to 50 files");
  for (const auto& fv : files->as_array()) {
    const auto* f = fv.if_object();
    const auto* loc = f ? common::object_member(*f, "fileLocation") : nullptr;
    const auto* s3 = loc ? common::object_member(*loc, "s3Location") : nullptr;
    const auto* st = loc ? common::object_member(*loc, "stream") : nullptr;
    if (!s3 && !st) return aws_response::invalid("each file needs a fileLocation: an s3Location or a stream");
    if (s3 && (!common::text_member(*s3, "bucket") || !common::text_member(*s3, "key")))
      return aws_response::invalid("s3Location needs a bucket and a key");
    if (!s3 && !common::text_member(*st, "streamId")) return aws_response::invalid("stream needs a streamId and a fileId");
    if (const auto* cs = common::object_member(*f, "codeSigning")) {
      int ways = cs->contains("awsSignerJobId") + cs->contains("startSigningJobParameter") + cs->contains("customCodeSigning");
      if (ways != 1) return aws_response::invalid("codeSigning takes one of awsSignerJobId, startSigningJobParameter, customCodeSigning");
    }
  }
  ota_update u;
  u.id = id;
  u.request = in;
  u.status = "CREATE_PENDING";
  u.created_ms = u.modified_ms = clock_.wall_ms();
  if (!save(u)) return aws_response::error(500, "InternalFailureException", "the OTA update could not be stored");
  updates_[id] = u;
  defer_([this, id] { build(id); });
  return aws_response::ok(json::serialize(json::object{{"otaUpdateId", id},
                                                       {"awsIotJobId", "AFR_OTA-" + id},
                                                       {"otaUpdateArn", arn(id)},
                                                       {"awsIotJobArn", arn_prefix_ + "job/AFR_OTA-" + id},
                                                       {"otaUpdateStatus", u.status}}));
}

std::optional<std::string> ota_service::make_document(ota_update& u, std::string& error) {
  const auto& in = u.request;
  std::vector<std::string> protocols;
  if (const auto* p = in.if_contains("protocols"))
    for (const auto& v : p->as_array()) protocols.emplace_back(v.get_string());
  if (protocols.empty()) protocols.push_back("MQTT");
  const bool mqtt = std::find(protocols.begin(), protocols.end(), "MQTT") != protocols.end();
  const bool http = std::find(protocols.begin(), protocols.end(), "HTTP") != protocols.end();

  json::array doc_files;
  json::array stream_files;  // of the stream this update makes (MQTT, files in the object store)
  std::string given_stream;  // or the stream the files name
  const auto& files = in.at("files").as_array();
  for (std::size_t index = 0; index < files.size(); ++index) {
    const auto& f = files[index].as_object();
    const auto& loc = f.at("fileLocation").as_object();
    json::object entry;
    if (auto name = common::text_member(f, "fileName")) entry["filepath"] = *name;
    if (auto type = common::int_member(f, "fileType")) entry["fileType"] = *type;
    std::string bucket, key, version, signed_version;
    if (const auto* s3 = common::object_member(loc, "s3Location")) {
      bucket = text(*s3, "bucket");
      key = text(*s3, "key");
      version = text(*s3, "version");
      if (!objects_.locate) {
        error = "the object store is not running";
        return std::nullopt;
      }
      auto located = objects_.locate(bucket, key, version, error);
      if (!located) {
        error = "file " + std::to_string(index) + ": " + error;
        return std::nullopt;
      }
      entry["filesize"] = located->size;
      signed_version = located->version_id;  // the version signed is the one streamed
      entry["fileid"] = index;
      json::object where{{"bucket", bucket}, {"key", key}};
      if (!version.empty()) where["version"] = version;
      stream_files.push_back(json::object{{"fileId", index}, {"s3Location", std::move(where)}});
      if (http) {
        entry["update_data_url"] = presign_placeholder(bucket, key, signed_version);
        entry["auth_scheme"] = "aws.s3.presigned";
      }
    } else {
      const auto* so = common::object_member(loc, "stream");
      const std::string sid = so ? text(*so, "streamId") : "";
      const auto fid = so ? common::int_member(*so, "fileId").value_or(0) : 0;
      auto s = streams_.find(sid);
      const stream_file* sf = nullptr;
      if (s)
        for (const auto& x : s->files)
          if (x.id == fid) sf = &x;
      if (!sf) {
        error = "file " + std::to_string(index) + ": stream " + sid + " has no file " + std::to_string(fid);
        return std::nullopt;
      }
      if (!given_stream.empty() && given_stream != sid) {
        error = "the files name two streams; a job document names one";
        return std::nullopt;
      }
      given_stream = sid;
      entry["filesize"] = sf->size;
      entry["fileid"] = fid;
      bucket = sf->bucket;
      key = sf->key;
      version = sf->version;
      signed_version = sf->resolved_version;  // what the stream serves is what gets signed
      if (http) {
        entry["update_data_url"] = presign_placeholder(bucket, key, signed_version);
        entry["auth_scheme"] = "aws.s3.presigned";
      }
    }

    // Code signing: the signature (base64 DER) under sig-<hash>-<algorithm>, and the certificate's
    // name on the device.
    if (const auto* cs = common::object_member(f, "codeSigning")) {
      std::string signature, certfile, sig_key = "sig-sha256-ecdsa";
      const signer::signing_job* job = nullptr;
      if (auto job_id = common::text_member(*cs, "awsSignerJobId")) {
        job = signer_.job(*job_id);
        if (!job) {
          error = "signing job " + std::string(*job_id) + " does not exist";
          return std::nullopt;
        }
      } else if (const auto* start = common::object_member(*cs, "startSigningJobParameter")) {
        const auto profile_name = text(*start, "signingProfileName");
        const auto* params = common::object_member(*start, "signingProfileParameter");
        if (profile_name.empty()) {
          error = "startSigningJobParameter needs a signingProfileName";
          return std::nullopt;
        }
        if (!signer_.find_profile(profile_name)) {
          // AWS makes the profile from signingProfileParameter when it does not exist.
          if (!params) {
            error = "signing profile " + profile_name + " does not exist and no signingProfileParameter makes it";
            return std::nullopt;
          }
          json::object p{{"profileName", profile_name},
                         {"platformId", params->contains("platform") ? text(*params, "platform") : std::string(signer::k_platform)},
                         {"signingMaterial", json::object{{"certificateArn", text(*params, "certificateArn")}}}};
          if (params->contains("certificatePathOnDevice"))
            p["signingParameters"] = json::object{{"certname", text(*params, "certificatePathOnDevice")}};
          auto made = signer_.put_profile(p);
          if (made.failed()) {
            error = "signing profile " + profile_name + ": " + error_message(made);
            return std::nullopt;
          }
        }
        const auto* dest = common::object_member(*start, "destination");
        const auto* d3 = dest ? common::object_member(*dest, "s3Destination") : nullptr;
        if (!d3) {
          error = "startSigningJobParameter needs destination.s3Destination";
          return std::nullopt;
        }
        auto started = signer_.start_job(json::object{
            {"source", json::object{{"s3", json::object{{"bucketName", bucket}, {"key", key},
                                                        {"version", signed_version.empty() ? std::string("null") : signed_version}}}}},
            {"destination", json::object{{"s3", json::object{{"bucketName", text(*d3, "bucket")}, {"prefix", text(*d3, "prefix")}}}}},
            {"profileName", profile_name},
            {"clientRequestToken", std::to_string(u.created_ms) + "-" + std::to_string(index) + "-" + u.id.substr(0, 32)}});
        if (started.failed()) {
          error = "signing: " + error_message(started);
          return std::nullopt;
        }
        boost::system::error_code ec;
        auto body = json::parse(started.body, ec);
        job = signer_.job(ec ? "" : text(body.as_object(), "jobId"));
        if (params && params->contains("certificatePathOnDevice")) certfile = text(*params, "certificatePathOnDevice");
      } else if (const auto* custom = common::object_member(*cs, "customCodeSigning")) {
        const auto* sig = common::object_member(*custom, "signature");
        const auto inline_doc = sig ? text(*sig, "inlineDocument") : "";
        auto der = common::base64_decode(inline_doc);
        if (!der || der->empty()) {
          error = "customCodeSigning.signature.inlineDocument must be the signature, base64-encoded";
          return std::nullopt;
        }
        signature = common::base64_encode(*der);
        if (const auto* chain = common::object_member(*custom, "certificateChain")) certfile = text(*chain, "certificateName");
        auto hash = text(*custom, "hashAlgorithm"), alg = text(*custom, "signatureAlgorithm");
        sig_key = "sig-" + lower(hash.empty() ? "SHA256" : hash) + "-" + lower(alg.empty() ? "ECDSA" : alg);
      }
      if (job) {
        if (job->status != "Succeeded") {
          error = "signing job " + job->id + " is " + job->status + (job->status_reason.empty() ? "" : ": " + job->status_reason);
          return std::nullopt;
        }
        signature = job->signature;
        if (certfile.empty())
          if (auto it = job->parameters.find("certname"); it != job->parameters.end()) certfile = it->second;
      }
      if (!certfile.empty()) entry["certfile"] = certfile;
      entry[sig_key] = signature;
    }
    doc_files.push_back(std::move(entry));
  }

  json::object afr{{"protocols", json::array(protocols.begin(), protocols.end())}};
  if (mqtt) {
    if (!given_stream.empty() && !stream_files.empty()) {
      error = "for MQTT the files must all be in the object store or all in one stream";
      return std::nullopt;
    }
    if (!stream_files.empty()) {
      const std::string sid = "AFR_OTA-" + common::random_uuid();
      auto made = streams_.create_owned(json::object{{"streamId", sid},
                                                     {"description", "OTA update " + u.id},
                                                     {"files", std::move(stream_files)},
                                                     {"roleArn", text(in, "roleArn")}},
                                        u.id);
      if (made.failed()) {
        error = "stream: " + error_message(made);
        return std::nullopt;
      }
      u.stream_id = sid;
      given_stream = sid;
      save(u);  // a restart from here on knows the stream is this update's
    }
    afr["streamname"] = given_stream;
  }
  afr["files"] = std::move(doc_files);
  return json::serialize(json::object{{"afr_ota", std::move(afr)}});
}

void ota_service::build(const std::string& id) {
  auto it = updates_.find(id);
  if (it == updates_.end()) return;  // deleted meanwhile
  ota_update u = it->second;
  u.status = "CREATE_IN_PROGRESS";
  u.modified_ms = clock_.wall_ms();
  save(u);
  auto fail = [&](std::string code, std::string message) {
    FC_LOG_INFO("ota.update_failed", "update={} code={} message={:q}", u.id, code, common::untrusted(message));
    u.status = "CREATE_FAILED";
    u.error_code = std::move(code);
    u.error_message = std::move(message);
  };
  std::string error;
  std::optional<std::string> document;
  try {
    document = make_document(u, error);
  } catch (const std::exception& e) {  // a member of an unexpected type: the request's, not a bug to die of
    document.reset();
    error = std::string("the request is malformed: ") + e.what();
  }
  if (!document) {
    fail("InvalidRequest", error);
  } else {
    const auto& in = u.request;
    json::object job{{"jobId", "AFR_OTA-" + u.id}, {"targets", in.at("targets")}, {"document", *document}};
    if (auto d = common::text_member(in, "description"); d && !d->empty()) job["description"] = *d;
    if (auto sel = common::text_member(in, "targetSelection")) job["targetSelection"] = *sel;
    if (const auto* r = common::object_member(in, "awsJobExecutionsRolloutConfig")) job["jobExecutionsRolloutConfig"] = *r;
    if (const auto* a = common::object_member(in, "awsJobAbortConfig")) {
      json::object abort;
      if (const auto* list = a->if_contains("abortCriteriaList")) abort["criteriaList"] = *list;
      job["abortConfig"] = std::move(abort);
    }
    if (const auto* t = common::object_member(in, "awsJobTimeoutConfig")) job["timeoutConfig"] = *t;
    if (document->find("${aws:iot:s3-presigned-url:") != std::string::npos) {
      std::int64_t expires = k_default_url_expiry_s;
      if (const auto* p = common::object_member(in, "awsJobPresignedUrlConfig"))
        expires = common::int_member(*p, "expiresInSec").value_or(expires);
      job["presignedUrlConfig"] = json::object{{"roleArn", text(in, "roleArn")}, {"expiresInSec", expires}};
    }
    auto created = jobs_.call("CreateJob", std::move(job)).get();
    if (created.failed()) {
      fail(created.error_type, "job AFR_OTA-" + u.id + ": " + error_message(created));
      if (!u.stream_id.empty() && streams_.delete_owned(u.stream_id)) u.stream_id.clear();
    } else {
      u.job_id = "AFR_OTA-" + u.id;
      u.status = "CREATE_COMPLETE";
    }
  }
  u.modified_ms = clock_.wall_ms();
  if (!save(u)) FC_LOG_ERROR("ota.store_failed", "update={}", u.id);
  if (auto again = updates_.find(id); again != updates_.end()) again->second = std::move(u);
}

aws_response ota_service::get(const json::object& in) const {
  auto it = updates_.find(text(in, "otaUpdateId"));
  if (it == updates_.end()) return aws_response::not_found("OTA update " + text(in, "otaUpdateId") + " does not exist");
  const auto& u = it->second;
  const auto& r = u.request;
  json::object info{{"otaUpdateId", u.id},
                    {"otaUpdateArn", arn(u.id)},
                    {"creationDate", common::api_time(u.created_ms)},
                    {"lastModifiedDate", common::api_time(u.modified_ms)},
                    {"targets", r.at("targets")},
                    {"protocols", r.contains("protocols") ? r.at("protocols") : json::value(json::array{"MQTT"})},
                    {"targetSelection", r.contains("targetSelection") ? r.at("targetSelection") : json::value("SNAPSHOT")},
                    {"otaUpdateFiles", r.at("files")},
                    {"otaUpdateStatus", u.status}};
  if (auto d = common::text_member(r, "description")) info["description"] = *d;
  for (auto [from, to] : {std::pair{"awsJobExecutionsRolloutConfig", "awsJobExecutionsRolloutConfig"},
                          std::pair{"awsJobPresignedUrlConfig", "awsJobPresignedUrlConfig"},
                          std::pair{"additionalParameters", "additionalParameters"}})
    if (const auto* v = r.if_contains(from)) info[to] = *v;
  if (!u.job_id.empty()) {
    info["awsIotJobId"] = u.job_id;
    info["awsIotJobArn"] = arn_prefix_ + "job/" + u.job_id;
  }
  if (u.status == "CREATE_FAILED") info["errorInfo"] = json::object{{"code", u.error_code}, {"message", u.error_message}};
  return aws_response::ok(json::serialize(json::object{{"otaUpdateInfo", std::move(info)}}));
}

aws_response ota_service::list(const json::object& in) const {
  std::int64_t max = 0;
  if (auto e = common::page_size(in, "maxResults", 250, 250, max)) return aws_response::from(*e);
  auto status = common::text_member(in, "otaUpdateStatus");
  std::vector<std::string> ids;
  for (const auto& [id, u] : updates_)
    if (!status || *status == u.status) ids.push_back(id);
  std::optional<std::string> next;
  auto token = common::text_member(in, "nextToken");
  json::array out;
  for (const auto& id : common::page_after(ids, token ? std::optional<std::string>(*token) : std::nullopt, max, next))
    out.push_back(json::object{{"otaUpdateId", id}, {"otaUpdateArn", arn(id)},
                               {"creationDate", common::api_time(updates_.find(id)->second.created_ms)}});
  json::object o{{"otaUpdates", std::move(out)}};
  if (next) o["nextToken"] = *next;
  return aws_response::ok(json::serialize(o));
}

aws_response ota_service::remove(const json::object& in) {
  auto it = updates_.find(text(in, "otaUpdateId"));
  if (it == updates_.end()) return aws_response::not_found("OTA update " + text(in, "otaUpdateId") + " does not exist");
  auto& u = it->second;
  if (u.status == "CREATE_PENDING" || u.status == "CREATE_IN_PROGRESS")
    return aws_response::error(409, "VersionConflictException", "OTA update " + u.id + " is still being created");
  if (common::bool_member(in, "forceDeleteAWSJob").value_or(false)) {
    // By its name: an update a restart interrupted may have made its job without recording it.
    auto deleted = jobs_.call("DeleteJob", json::object{{"jobId", "AFR_OTA-" + u.id}, {"force", true}}).get();
    if (deleted.failed() && deleted.error_type != "ResourceNotFoundException") return deleted;
  }
  if (!u.stream_id.empty() && common::bool_member(in, "deleteStream").value_or(false)) {
    if (!streams_.delete_owned(u.stream_id))
      return aws_response::error(500, "InternalFailureException", "the stream could not be deleted");
    u.stream_id.clear();
  } else if (!u.stream_id.empty()) {
    // The stream stays, no longer owned: DeleteStream may remove it now.
    streams_.release(u.stream_id);
  }
  if (!store_.submit_and_wait({storage::op::delete_document{std::string(k_kind), u.id}}))
    return aws_response::error(500, "InternalFailureException", "the OTA update could not be deleted");
  updates_.erase(it);
  return aws_response::ok("{}");
}

}  // namespace fleetcore::ota
