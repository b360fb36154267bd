#pragma once
// AWS IoT OTA updates (CreateOTAUpdate, GetOTAUpdate, ListOTAUpdates, DeleteOTAUpdate): what an operator
// asks for — files in the object store, how they are signed, the devices to update, the protocols — made
// into what the FreeRTOS OTA agent consumes: a stream of the files for MQTT, presigned URLs for HTTP, and
// the job AFR_OTA-<otaUpdateId> whose document carries `afr_ota` (protocols, streamname, files with
// filepath, filesize, fileid, certfile, fileType, update_data_url, auth_scheme and the signature under
// sig-sha256-ecdsa). The rollout, abort, timeout and presigned-URL configurations pass through to the job.
//
// Like AWS, CreateOTAUpdate answers CREATE_PENDING once the request is valid and stored; the update is
// then built on the API thread (CREATE_IN_PROGRESS): code signing (a signer job given by id, one started
// with startSigningJobParameter, or customCodeSigning's signature), the stream, the job; it ends
// CREATE_COMPLETE, or CREATE_FAILED with errorInfo saying what failed. An update a restart interrupted
// ends CREATE_FAILED.
//
// Threads: the API thread only.
#include "common/aws_api.hpp"
#include "common/clock.hpp"
#include "jobs/jobs_service.hpp"
#include "objects/links.hpp"
#include "ota/streams.hpp"
#include "signer/signer_service.hpp"
#include "storage/store.hpp"

#include <boost/json/object.hpp>

#include <functional>
#include <map>
#include <string>

namespace fleetcore::ota {

struct ota_update {
  std::string id;
  boost::json::object request;  // CreateOTAUpdate's members as given (GetOTAUpdate echoes them)
  std::string status;           // CREATE_PENDING | CREATE_IN_PROGRESS | CREATE_COMPLETE | CREATE_FAILED
  std::string error_code, error_message;
  std::string job_id, stream_id;  // what it made (stream_id: only a stream it created)
  std::int64_t created_ms = 0, modified_ms = 0;

  std::string to_json() const;
  static std::optional<ota_update> from_json(std::string_view body);
};

class ota_service {
 public:
  /// Loads the stored updates (one a restart interrupted becomes CREATE_FAILED); throws
  /// std::runtime_error if one is unreadable. `defer` runs a function later on the API thread.
  ota_service(storage::store& store, common::clock& clock, std::string arn_prefix, stream_service& streams,
              jobs::jobs_service& jobs, signer::signer_service& signer, objects::links objects,
              std::function<void(std::function<void()>)> defer);

  static std::vector<std::string_view> operations();
  /// Runs an operation. API thread.
  common::aws_response call(std::string_view op, const boost::json::object& in);

 private:
  common::aws_response create(const boost::json::object& in);
  common::aws_response get(const boost::json::object& in) const;
  common::aws_response list(const boost::json::object& in) const;
  common::aws_response remove(const boost::json::object& in);
  /// Builds update `id` (signing, stream, job) and records how it ended.
  void build(const std::string& id);
  /// The job document and the stream, or the failure's message in `error`.
  std::optional<std::string> make_document(ota_update& u, std::string& error);
  bool save(const ota_update& u);
  std::string arn(const std::string& id) const { return arn_prefix_ + "otaupdate/" + id; }

  storage::store& store_;
  common::clock& clock_;
  std::string arn_prefix_;
  stream_service& streams_;
  jobs::jobs_service& jobs_;
  signer::signer_service& signer_;
  objects::links objects_;
  std::function<void(std::function<void()>)> defer_;
  std::map<std::string, ota_update, std::less<>> updates_;
};

}  // namespace fleetcore::ota
