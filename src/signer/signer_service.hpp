#pragma once
// Code signing for OTA updates, as AWS Signer does it for AWS IoT (botocore `signer`): signing
// profiles (PutSigningProfile, GetSigningProfile, ListSigningProfiles, CancelSigningProfile), signing
// jobs (StartSigningJob, DescribeSigningJob, ListSigningJobs) and the platform OTA devices verify,
// AmazonFreeRTOS-Default: ECDSA P-256 over SHA-256, the signature DER-encoded. A job reads its source
// object from the object store, signs it, and writes the signed object to the destination bucket as
// AWS writes it: JSON {rawPayloadSize, signature (base64 DER), signatureAlgorithm, payload (base64)}.
//
// AWS names the signing certificate by an ACM ARN. Here the operator imports a certificate and its
// private key with `fleetcore signer import` (written under <data-dir>/signer/, the key 0600) and gets
// arn:aws:acm:<region>:<account>:certificate/<id>; the service reads them when a job signs.
//
// Threads: every operation runs on the API thread (it reads and writes the object store there); the
// state has no lock.
#include "common/aws_api.hpp"
#include "common/clock.hpp"
#include "common/metrics.hpp"
#include "objects/links.hpp"
#include "storage/store.hpp"

#include <boost/json/object.hpp>

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace fleetcore::signer {

/// The one platform: what the FreeRTOS OTA agent verifies.
inline constexpr std::string_view k_platform = "AmazonFreeRTOS-Default";
/// The largest object a job signs (the platform's maxSizeInMB).
inline constexpr std::uint64_t k_max_size_mb = 16;

struct profile {
  std::string name;
  std::string version;  // 10 alphanumerics, new on every PutSigningProfile
  std::string certificate_arn;
  std::map<std::string, std::string> parameters;  // signingParameters (certname: the certificate's path on devices)
  std::int64_t validity_value = 135;
  std::string validity_type = "MONTHS";
  std::string status = "Active";  // Active | Canceled
  std::int64_t created_ms = 0;
  std::map<std::string, std::string> tags;
};

struct signing_job {
  std::string id;
  std::string profile_name, profile_version, certificate_arn;
  std::map<std::string, std::string> parameters;
  std::string source_bucket, source_key, source_version;
  std::string destination_bucket, destination_prefix;
  std::string client_token;
  std::string status;  // InProgress | Failed | Succeeded
  std::string status_reason;
  std::string signed_key;  // the signed object's key in destination_bucket
  std::string signature;   // base64 DER (Succeeded)
  std::int64_t created_ms = 0, completed_ms = 0, expires_ms = 0;
};

class signer_service {
 public:
  /// `dir`: <data-dir>/signer. Loads the stored profiles and jobs; throws std::runtime_error if one is
  /// unreadable.
  signer_service(storage::store& store, common::clock& clock, objects::links objects, std::filesystem::path dir,
                 std::string region, std::string account);

  static std::vector<std::string_view> operations();
  /// Runs a signer operation. API thread.
  common::aws_response call(std::string_view op, const boost::json::object& in);

  /// A signing job by id (for CreateOTAUpdate's awsSignerJobId). API thread.
  const signing_job* job(std::string_view id) const;
  const profile* find_profile(std::string_view name) const;
  /// Creates (or replaces) a profile; an AWS error when it is invalid. API thread.
  common::aws_response put_profile(const boost::json::object& in);
  /// Runs StartSigningJob to its end; the job, or an AWS error. API thread.
  common::aws_response start_job(const boost::json::object& in);

  /// `fleetcore signer import`: stores a PEM certificate (ECDSA P-256, the key's pair) and its key under
  /// `dir`, returning the certificate's id. Throws std::runtime_error with the reason.
  static std::string import_certificate(const std::filesystem::path& dir, const std::string& cert_pem,
                                        const std::string& key_pem);

  void register_metrics(common::registry& r) const;

 private:
  std::string profile_arn(const std::string& name) const;
  common::aws_response get_profile(const boost::json::object& in) const;
  common::aws_response list_profiles(const boost::json::object& in) const;
  common::aws_response cancel_profile(const boost::json::object& in);
  common::aws_response describe_job(const boost::json::object& in) const;
  common::aws_response list_jobs(const boost::json::object& in) const;
  common::aws_response list_platforms(const boost::json::object& in) const;
  common::aws_response get_platform(const boost::json::object& in) const;
  /// Signs the job's source into its destination: Succeeded, or Failed with a reason.
  void run(signing_job& j);
  bool save(const profile& p);
  bool save(const signing_job& j);

  storage::store& store_;
  common::clock& clock_;
  objects::links objects_;
  std::filesystem::path dir_;
  std::string region_, account_;
  std::map<std::string, profile, std::less<>> profiles_;
  std::map<std::string, signing_job, std::less<>> jobs_;
  common::counter signed_, failed_;
};

}  // namespace fleetcore::signer
