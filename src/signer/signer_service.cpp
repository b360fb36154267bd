#include "signer/signer_service.hpp"

#include "auth/pki.hpp"
#include "common/aws_paging.hpp"
#include "common/base64.hpp"
#include "common/hex.hpp"
#include "common/json_members.hpp"
#include "common/log.hpp"
#include "common/uuid.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include <algorithm>
#include <fstream>
#include <memory>
#include <stdexcept>

namespace fleetcore::signer {

namespace json = boost::json;
using common::aws_response;

namespace {
constexpr std::string_view k_profile_kind = "signing_profile";
constexpr std::string_view k_job_kind = "signing_job";
constexpr std::int64_t k_day_ms = 86'400'000;

aws_response validation(std::string_view msg) { return aws_response::error(400, "ValidationException", msg); }

/// A profile version: 10 alphanumerics.
std::string profile_version() {
  static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  unsigned char r[10];
  RAND_bytes(r, sizeof r);
  std::string v;
  for (unsigned char c : r) v += alphabet[c % 62];
  return v;
}

bool valid_profile_name(std::string_view n) {
  return n.size() >= 2 && n.size() <= 64 && std::all_of(n.begin(), n.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
}

/// The certificate id of an ACM ARN (arn:aws:acm:<region>:<account>:certificate/<id>), if it is one.
std::optional<std::string> certificate_id(std::string_view arn) {
  if (!arn.starts_with("arn:aws:acm:")) return std::nullopt;
  auto at = arn.rfind(":certificate/");
  if (at == std::string_view::npos) return std::nullopt;
  auto id = arn.substr(at + 13);
  if (id.empty() || id.size() > 64 ||
      !std::all_of(id.begin(), id.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == '-'; }))
    return std::nullopt;
  return std::string(id);
}

json::object string_map(const std::map<std::string, std::string>& m) {
  json::object o;
  for (const auto& [k, v] : m) o[k] = v;
  return o;
}
std::map<std::string, std::string> string_map(const json::value* v) {
  std::map<std::string, std::string> m;
  if (v && v->is_object())
    for (const auto& [k, x] : v->as_object())
      if (x.is_string()) m[std::string(k)] = std::string(x.get_string());
  return m;
}

std::string text(const json::object& o, std::string_view key) { return std::string(common::text_member(o, key).value_or("")); }

json::object platform_json() {
  return {{"platformId", k_platform},
          {"displayName", "Amazon FreeRTOS"},
          {"partner", "AmazonFreeRTOS"},
          {"target", "SHA256-ECDSA"},
          {"category", "AWSIoT"},
          {"signingConfiguration",
           json::object{{"encryptionAlgorithmOptions", json::object{{"allowedValues", json::array{"ECDSA"}}, {"defaultValue", "ECDSA"}}},
                        {"hashAlgorithmOptions", json::object{{"allowedValues", json::array{"SHA256"}}, {"defaultValue", "SHA256"}}}}},
          {"signingImageFormat", json::object{{"supportedFormats", json::array{"JSONEmbedded"}}, {"defaultFormat", "JSONEmbedded"}}},
          {"maxSizeInMB", k_max_size_mb},
          {"revocationSupported", false}};
}

struct pkey_free {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using pkey_ptr = std::unique_ptr<EVP_PKEY, pkey_free>;

pkey_ptr parse_key(const std::string& pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  return pkey_ptr(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr);
}

bool is_p256(EVP_PKEY* key) {
  if (EVP_PKEY_get_base_id(key) != EVP_PKEY_EC) return false;
  char group[64] = {};
  std::size_t n = 0;
  return EVP_PKEY_get_utf8_string_param(key, "group", group, sizeof group, &n) == 1 && std::string_view(group) == "prime256v1";
}

/// The DER ECDSA signature of SHA-256(data), or nullopt.
std::optional<std::string> sign(EVP_PKEY* key, std::string_view data) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  std::size_t n = 0;
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &n, reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1)
    return std::nullopt;
  std::string sig(n, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &n,
                     reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1)
    return std::nullopt;
  sig.resize(n);
  return sig;
}

std::string profile_json(const profile& p) {
  return json::serialize(json::object{{"name", p.name},
                                      {"version", p.version},
                                      {"certificateArn", p.certificate_arn},
                                      {"parameters", string_map(p.parameters)},
                                      {"validityValue", p.validity_value},
                                      {"validityType", p.validity_type},
                                      {"status", p.status},
                                      {"createdMs", p.created_ms},
                                      {"tags", string_map(p.tags)}});
}

std::optional<profile> profile_from(std::string_view body) {
  boost::system::error_code ec;
  auto v = json::parse(body, ec);
  if (ec || !v.is_object()) return std::nullopt;
  const auto& o = v.as_object();
  profile p;
  p.name = text(o, "name");
  p.version = text(o, "version");
  p.certificate_arn = text(o, "certificateArn");
  p.parameters = string_map(o.if_contains("parameters"));
  p.validity_value = common::int_member(o, "validityValue").value_or(135);
  p.validity_type = text(o, "validityType");
  p.status = text(o, "status");
  p.created_ms = common::int_member(o, "createdMs").value_or(0);
  p.tags = string_map(o.if_contains("tags"));
  if (!valid_profile_name(p.name)) return std::nullopt;
  return p;
}

std::string job_json(const signing_job& j) {
  return json::serialize(json::object{{"id", j.id},
                                      {"profileName", j.profile_name},
                                      {"profileVersion", j.profile_version},
                                      {"certificateArn", j.certificate_arn},
                                      {"parameters", string_map(j.parameters)},
                                      {"sourceBucket", j.source_bucket},
                                      {"sourceKey", j.source_key},
                                      {"sourceVersion", j.source_version},
                                      {"destinationBucket", j.destination_bucket},
                                      {"destinationPrefix", j.destination_prefix},
                                      {"clientToken", j.client_token},
                                      {"status", j.status},
                                      {"statusReason", j.status_reason},
                                      {"signedKey", j.signed_key},
                                      {"signature", j.signature},
                                      {"createdMs", j.created_ms},
                                      {"completedMs", j.completed_ms},
                                      {"expiresMs", j.expires_ms}});
}

std::optional<signing_job> job_from(std::string_view body) {
  boost::system::error_code ec;
  auto v = json::parse(body, ec);
  if (ec || !v.is_object()) return std::nullopt;
  const auto& o = v.as_object();
  signing_job j;
  j.id = text(o, "id");
  j.profile_name = text(o, "profileName");
  j.profile_version = text(o, "profileVersion");
  j.certificate_arn = text(o, "certificateArn");
  j.parameters = string_map(o.if_contains("parameters"));
  j.source_bucket = text(o, "sourceBucket");
  j.source_key = text(o, "sourceKey");
  j.source_version = text(o, "sourceVersion");
  j.destination_bucket = text(o, "destinationBucket");
  j.destination_prefix = text(o, "destinationPrefix");
  j.client_token = text(o, "clientToken");
  j.status = text(o, "status");
  j.status_reason = text(o, "statusReason");
  j.signed_key = text(o, "signedKey");
  j.signature = text(o, "signature");
  j.created_ms = common::int_member(o, "createdMs").value_or(0);
  j.completed_ms = common::int_member(o, "completedMs").value_or(0);
  j.expires_ms = common::int_member(o, "expiresMs").value_or(0);
  if (j.id.empty()) return std::nullopt;
  return j;
}
}  // namespace

signer_service::signer_service(storage::store& store, common::clock& clock, objects::links objects,
                               std::filesystem::path dir, std::string region, std::string account)
    : store_(store),
      clock_(clock),
      objects_(std::move(objects)),
      dir_(std::move(dir)),
      region_(std::move(region)),
      account_(std::move(account)) {
  for (const auto& d : store_.load_documents(std::string(k_profile_kind))) {
    auto p = profile_from(d.body);
    if (!p) throw std::runtime_error("unreadable signing profile " + d.key);
    std::string name = p->name;
    profiles_.emplace(std::move(name), std::move(*p));
  }
  for (const auto& d : store_.load_documents(std::string(k_job_kind))) {
    auto j = job_from(d.body);
    if (!j) throw std::runtime_error("unreadable signing job " + d.key);
    std::string id = j->id;
    jobs_.emplace(std::move(id), std::move(*j));
  }
}

std::vector<std::string_view> signer_service::operations() {
  return {"PutSigningProfile", "GetSigningProfile", "ListSigningProfiles", "CancelSigningProfile", "StartSigningJob",
          "DescribeSigningJob", "ListSigningJobs", "ListSigningPlatforms", "GetSigningPlatform"};
}

aws_response signer_service::call(std::string_view op, const json::object& in) {
  if (op == "PutSigningProfile") return put_profile(in);
  if (op == "GetSigningProfile") return get_profile(in);
  if (op == "ListSigningProfiles") return list_profiles(in);
  if (op == "CancelSigningProfile") return cancel_profile(in);
  if (op == "StartSigningJob") return start_job(in);
  if (op == "DescribeSigningJob") return describe_job(in);
  if (op == "ListSigningJobs") return list_jobs(in);
  if (op == "ListSigningPlatforms") return list_platforms(in);
  if (op == "GetSigningPlatform") return get_platform(in);
  return validation("unknown operation");
}

std::string signer_service::profile_arn(const std::string& name) const {
  return "arn:aws:signer:" + region_ + ":" + account_ + ":/signing-profiles/" + name;
}

const signing_job* signer_service::job(std::string_view id) const {
  auto it = jobs_.find(id);
  return it == jobs_.end() ? nullptr : &it->second;
}

const profile* signer_service::find_profile(std::string_view name) const {
  auto it = profiles_.find(name);
  return it == profiles_.end() ? nullptr : &it->second;
}

bool signer_service::save(const profile& p) {
  return store_.submit_and_wait({storage::op::put_document{{std::string(k_profile_kind), p.name, profile_json(p)}}});
}
bool signer_service::save(const signing_job& j) {
  return store_.submit_and_wait({storage::op::put_document{{std::string(k_job_kind), j.id, job_json(j)}}});
}

aws_response signer_service::put_profile(const json::object& in) {
  profile p;
  p.name = text(in, "profileName");
  if (!valid_profile_name(p.name)) return validation("profileName must match [a-zA-Z0-9_]{2,64}");
  if (text(in, "platformId") != k_platform)
    return validation("platformId must be AmazonFreeRTOS-Default (ECDSA P-256 with SHA-256), the platform fleetcore signs for");
  const auto* material = common::object_member(in, "signingMaterial");
  p.certificate_arn = material ? text(*material, "certificateArn") : "";
  auto cert = certificate_id(p.certificate_arn);
  if (!cert) return validation("signingMaterial.certificateArn must be an ACM certificate ARN (fleetcore signer import)");
  if (!std::filesystem::exists(dir_ / "certificates" / (*cert + ".crt")))
    return aws_response::not_found("certificate " + p.certificate_arn + " was not imported (fleetcore signer import)");
  if (const auto* o = common::object_member(in, "overrides")) {
    if (const auto* sc = common::object_member(*o, "signingConfiguration")) {
      auto enc = text(*sc, "encryptionAlgorithm"), hash = text(*sc, "hashAlgorithm");
      if ((!enc.empty() && enc != "ECDSA") || (!hash.empty() && hash != "SHA256"))
        return validation("the platform signs with ECDSA and SHA256 only");
    }
    auto format = text(*o, "signingImageFormat");
    if (!format.empty() && format != "JSONEmbedded") return validation("the platform's signing image format is JSONEmbedded");
  }
  if (const auto* validity = common::object_member(in, "signatureValidityPeriod")) {
    p.validity_value = common::int_member(*validity, "value").value_or(0);
    p.validity_type = text(*validity, "type");
    if (p.validity_value < 1 || p.validity_value > 36500 ||
        (p.validity_type != "DAYS" && p.validity_type != "MONTHS" && p.validity_type != "YEARS"))
      return validation("signatureValidityPeriod needs a value of 1-36500 and a type DAYS, MONTHS or YEARS");
  }
  p.parameters = string_map(in.if_contains("signingParameters"));
  p.tags = string_map(in.if_contains("tags"));
  p.version = profile_version();
  p.created_ms = clock_.wall_ms();
  if (!save(p)) return aws_response::error(500, "InternalServiceErrorException", "the profile could not be stored");
  json::object out{{"arn", profile_arn(p.name)}, {"profileVersion", p.version},
                   {"profileVersionArn", profile_arn(p.name) + "/" + p.version}};
  profiles_[p.name] = std::move(p);
  return aws_response::ok(json::serialize(out));
}

namespace {
json::object profile_summary(const profile& p, const std::string& arn) {
  json::object o{{"profileName", p.name},
                 {"profileVersion", p.version},
                 {"profileVersionArn", arn + "/" + p.version},
                 {"signingMaterial", json::object{{"certificateArn", p.certificate_arn}}},
                 {"signatureValidityPeriod", json::object{{"value", p.validity_value}, {"type", p.validity_type}}},
                 {"platformId", k_platform},
                 {"platformDisplayName", "Amazon FreeRTOS"},
                 {"signingParameters", string_map(p.parameters)},
                 {"status", p.status},
                 {"arn", arn}};
  if (!p.tags.empty()) o["tags"] = string_map(p.tags);
  return o;
}
}  // namespace

aws_response signer_service::get_profile(const json::object& in) const {
  const auto* p = find_profile(text(in, "profileName"));
  if (!p) return aws_response::not_found("signing profile " + text(in, "profileName") + " does not exist");
  return aws_response::ok(json::serialize(profile_summary(*p, profile_arn(p->name))));
}

aws_response signer_service::list_profiles(const json::object& in) const {
  std::int64_t max = 0;
  if (auto e = common::page_size(in, "maxResults", 25, 25, max)) return validation(e->message);
  const bool canceled = common::bool_member(in, "includeCanceled").value_or(false);
  auto platform = common::text_member(in, "platformId");
  std::vector<std::string> names;
  for (const auto& [name, p] : profiles_)
    if ((canceled || p.status == "Active") && (!platform || *platform == k_platform)) names.push_back(name);
  std::optional<std::string> next;
  auto token = common::text_member(in, "nextToken");
  json::array out;
  for (const auto& name : common::page_after(names, token ? std::optional<std::string>(*token) : std::nullopt, max, next))
    out.push_back(profile_summary(profiles_.find(name)->second, profile_arn(name)));
  json::object o{{"profiles", std::move(out)}};
  if (next) o["nextToken"] = *next;
  return aws_response::ok(json::serialize(o));
}

aws_response signer_service::cancel_profile(const json::object& in) {
  auto it = profiles_.find(text(in, "profileName"));
  if (it == profiles_.end()) return aws_response::not_found("signing profile " + text(in, "profileName") + " does not exist");
  profile p = it->second;
  p.status = "Canceled";
  if (!save(p)) return aws_response::error(500, "InternalServiceErrorException", "the profile could not be stored");
  it->second = std::move(p);
  return aws_response::ok("{}");
}

aws_response signer_service::start_job(const json::object& in) {
  const auto* source = common::object_member(in, "source");
  const auto* s3 = source ? common::object_member(*source, "s3") : nullptr;
  const auto* destination = common::object_member(in, "destination");
  const auto* d3 = destination ? common::object_member(*destination, "s3") : nullptr;
  if (!s3 || text(*s3, "bucketName").empty() || text(*s3, "key").empty())
    return validation("source.s3 needs bucketName, key and version");
  if (!d3 || text(*d3, "bucketName").empty()) return validation("destination.s3 needs a bucketName");
  auto version = text(*s3, "version");
  const std::string token = text(in, "clientRequestToken");
  if (token.empty() || token.size() > 64) return validation("clientRequestToken is required (at most 64 characters)");
  // The same token names the same job (a retried request starts nothing new); with other parameters
  // it is refused.
  for (const auto& [id, j] : jobs_)
    if (j.client_token == token) {
      if (j.source_bucket != text(*s3, "bucketName") || j.source_key != text(*s3, "key") ||
          j.source_version != (version.empty() ? "null" : version) || j.destination_bucket != text(*d3, "bucketName") ||
          j.destination_prefix != text(*d3, "prefix") || j.profile_name != text(in, "profileName"))
        return validation("clientRequestToken " + token + " was used for another signing job");
      return aws_response::ok(json::serialize(json::object{{"jobId", id}, {"jobOwner", account_}}));
    }
  const auto* p = find_profile(text(in, "profileName"));
  if (!p) return aws_response::not_found("signing profile " + text(in, "profileName") + " does not exist");
  if (p->status != "Active") return validation("signing profile " + p->name + " is " + p->status);

  signing_job j;
  j.id = common::random_uuid();
  j.profile_name = p->name;
  j.profile_version = p->version;
  j.certificate_arn = p->certificate_arn;
  j.parameters = p->parameters;
  j.source_bucket = text(*s3, "bucketName");
  j.source_key = text(*s3, "key");
  j.source_version = version.empty() ? "null" : version;
  j.destination_bucket = text(*d3, "bucketName");
  j.destination_prefix = text(*d3, "prefix");
  j.client_token = token;
  j.created_ms = clock_.wall_ms();
  const std::int64_t unit = p->validity_type == "DAYS" ? k_day_ms : p->validity_type == "YEARS" ? 365 * k_day_ms : 30 * k_day_ms;
  j.expires_ms = j.created_ms + p->validity_value * unit;
  j.status = "InProgress";
  run(j);
  if (!save(j)) return aws_response::error(500, "InternalServiceErrorException", "the signing job could not be stored");
  const std::string id = j.id;
  jobs_[id] = std::move(j);
  return aws_response::ok(json::serialize(json::object{{"jobId", id}, {"jobOwner", account_}}));
}

void signer_service::run(signing_job& j) {
  auto fail = [&](std::string reason) {
    j.status = "Failed";
    j.status_reason = std::move(reason);
    j.completed_ms = clock_.wall_ms();
    failed_.inc();
    FC_LOG_INFO("signer.job_failed", "job={} reason={:q}", j.id, common::untrusted(j.status_reason));
  };
  if (!objects_.locate || !objects_.read_blob || !objects_.put)
    return fail("the object store is not running (the api listener is off)");
  std::string error;
  auto source = objects_.locate(j.source_bucket, j.source_key, j.source_version, error);
  if (!source) return fail(error);
  if (source->size > (k_max_size_mb << 20))
    return fail("the source object is larger than the platform's " + std::to_string(k_max_size_mb) + " MB");
  std::string bytes;
  if (auto ec = objects_.read_blob(source->blob, 0, source->size, bytes); ec || bytes.size() != source->size)
    return fail("the source object could not be read");
  const std::string* payload = &bytes;
  auto id = certificate_id(j.certificate_arn);
  pkey_ptr key;
  if (id) {
    std::ifstream f(dir_ / "certificates" / (*id + ".key"));
    std::string pem((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    key = parse_key(pem);
  }
  if (!key) return fail("the signing key of " + j.certificate_arn + " cannot be read");
  auto signature = sign(key.get(), *payload);
  if (!signature) return fail("signing failed");
  j.signature = common::base64_encode(*signature);
  j.signed_key = j.destination_prefix + j.id;
  const std::string signed_object = json::serialize(json::object{{"rawPayloadSize", payload->size()},
                                                                 {"signature", j.signature},
                                                                 {"signatureAlgorithm", "SHA256withECDSA"},
                                                                 {"payload", common::base64_encode(*payload)}});
  if (!objects_.put(j.destination_bucket, j.signed_key, signed_object, "application/json", error)) {
    j.signature.clear();
    return fail(error);
  }
  j.status = "Succeeded";
  j.status_reason.clear();
  j.completed_ms = clock_.wall_ms();
  signed_.inc();
}

namespace {
json::object job_summary(const signing_job& j, std::string_view account) {
  json::object o{{"jobId", j.id},
                 {"source", json::object{{"s3", json::object{{"bucketName", j.source_bucket},
                                                             {"key", j.source_key},
                                                             {"version", j.source_version}}}}},
                 {"signingMaterial", json::object{{"certificateArn", j.certificate_arn}}},
                 {"createdAt", common::api_time(j.created_ms)},
                 {"status", j.status},
                 {"isRevoked", false},
                 {"profileName", j.profile_name},
                 {"profileVersion", j.profile_version},
                 {"platformId", k_platform},
                 {"platformDisplayName", "Amazon FreeRTOS"},
                 {"signatureExpiresAt", common::api_time(j.expires_ms)},
                 {"jobOwner", account},
                 {"jobInvoker", account}};
  if (j.status == "Succeeded")
    o["signedObject"] = json::object{{"s3", json::object{{"bucketName", j.destination_bucket}, {"key", j.signed_key}}}};
  return o;
}
}  // namespace

aws_response signer_service::describe_job(const json::object& in) const {
  const auto* j = job(text(in, "jobId"));
  if (!j) return aws_response::not_found("signing job " + text(in, "jobId") + " does not exist");
  json::object o = job_summary(*j, account_);
  o.erase("isRevoked");
  o["signingParameters"] = string_map(j->parameters);
  if (j->completed_ms) o["completedAt"] = common::api_time(j->completed_ms);
  o["requestedBy"] = "arn:aws:iam::" + account_ + ":root";
  if (!j->status_reason.empty()) o["statusReason"] = j->status_reason;
  return aws_response::ok(json::serialize(o));
}

aws_response signer_service::list_jobs(const json::object& in) const {
  std::int64_t max = 0;
  if (auto e = common::page_size(in, "maxResults", 25, 25, max)) return validation(e->message);
  auto status = common::text_member(in, "status");
  // Newest first; the token is the last job id of the previous page, in this order.
  std::vector<const signing_job*> all;
  for (const auto& [id, j] : jobs_)
    if (!status || *status == j.status) all.push_back(&j);
  std::sort(all.begin(), all.end(), [](const auto* a, const auto* b) {
    return std::tie(b->created_ms, b->id) < std::tie(a->created_ms, a->id);
  });
  std::size_t from = 0;
  if (auto token = common::text_member(in, "nextToken"); token && !token->empty()) {
    auto it = std::find_if(all.begin(), all.end(), [&](const auto* j) { return j->id == *token; });
    if (it == all.end()) return validation("nextToken is not one ListSigningJobs gave");
    from = std::size_t(it - all.begin()) + 1;
  }
  json::array out;
  std::size_t i = from;
  for (; i < all.size() && out.size() < std::size_t(max); ++i) out.push_back(job_summary(*all[i], account_));
  json::object o{{"jobs", std::move(out)}};
  if (i < all.size()) o["nextToken"] = all[i - 1]->id;
  return aws_response::ok(json::serialize(o));
}

aws_response signer_service::list_platforms(const json::object& in) const {
  auto category = common::text_member(in, "category");
  json::array platforms;
  if (!category || *category == "AWSIoT") platforms.push_back(platform_json());
  return aws_response::ok(json::serialize(json::object{{"platforms", std::move(platforms)}}));
}

aws_response signer_service::get_platform(const json::object& in) const {
  if (text(in, "platformId") != k_platform) return aws_response::not_found("platform " + text(in, "platformId") + " does not exist");
  return aws_response::ok(json::serialize(platform_json()));
}

std::string signer_service::import_certificate(const std::filesystem::path& dir, const std::string& cert_pem,
                                               const std::string& key_pem) {
  auto cert = auth::parse_pem_cert(cert_pem);
  if (!cert) throw std::runtime_error("the certificate is not a PEM X.509 certificate");
  auto key = parse_key(key_pem);
  if (!key) throw std::runtime_error("the key is not a PEM private key");
  if (!is_p256(key.get())) throw std::runtime_error("the key is not an ECDSA P-256 key (AmazonFreeRTOS-Default signs with one)");
  if (X509_check_private_key(cert.get(), key.get()) != 1) throw std::runtime_error("the key is not the certificate's");
  const auto certs = dir / "certificates";
  std::filesystem::create_directories(certs);
  std::filesystem::permissions(dir, std::filesystem::perms::owner_all);
  std::filesystem::permissions(certs, std::filesystem::perms::owner_all);
  const std::string id = common::random_uuid();
  auth::write_key(certs / (id + ".key"), key.get(), auth::existing::refuse);
  auth::write_cert(certs / (id + ".crt"), cert.get(), auth::existing::refuse);
  return id;
}

void signer_service::register_metrics(common::registry& r) const {
  r.add(signed_, "fleetcore_signer_jobs_succeeded_total", "", "Signing jobs that signed their object.");
  r.add(failed_, "fleetcore_signer_jobs_failed_total", "", "Signing jobs that failed (source missing, key unreadable...).");
}

}  // namespace fleetcore::signer
