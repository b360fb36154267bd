#pragma once
// AWS IoT streams: the control plane (CreateStream, DescribeStream, ListStreams, UpdateStream,
// DeleteStream) and MQTT-based file delivery, by which devices with a few KiB of RAM download a
// stream's files block by block: requests on `$aws/things/<thing>/streams/<streamId>/{describe,get}/
// {json,cbor}`, answers on `.../{description,data,rejected}/<same format>`, to the requesting
// session alone (they never pass through routing: no other client and no rule sees them). The broker
// has authorized the request (iot:Publish) and checks the answer against the device's subscriptions
// and iot:Receive.
//
// A stream's file names an object of the object store (s3Location, with or without a version);
// CreateStream and UpdateStream resolve it to one version (the latest when none is named: its blob,
// ETag, size and version id) and the stream serves that content, pinned. Once that content is gone
// (the version deleted, or the object replaced or deleted in an unversioned bucket) a device's GetStream
// is answered ETagMismatch until UpdateStream points the stream at the object again. (AWS compares
// with the latest version's ETag at each request; a newer upload to a versioned bucket leaves a
// fleetcore stream serving the version it was made with.)
//
// Threads: the control-plane operations run on the API thread; device requests are admitted on the
// publisher's worker (at most `max_inflight_per_session` of one session at once; more are refused)
// and answered on the service's own thread, which reads the blocks. The streams are shared under a
// lock; a change is in the store before it is visible.
#include "broker/hooks.hpp"
#include "common/aws_api.hpp"
#include "common/clock.hpp"
#include "common/inflight_gate.hpp"
#include "common/metrics.hpp"
#include "objects/links.hpp"
#include "ota/stream_protocol.hpp"
#include "storage/store.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json/object.hpp>

#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace fleetcore::ota {

struct stream_file {
  std::uint32_t id = 0;
  std::string bucket, key, version;  // the s3Location as given
  std::string blob, etag;            // the object's content when the stream was made or updated
  std::string resolved_version;      // the version id that content is (the latest when none was given)
  std::uint64_t size = 0;
};

struct stream {
  std::string id;
  std::string description;
  std::string role_arn;
  std::int64_t version = 1;
  std::vector<stream_file> files;
  std::int64_t created_ms = 0, updated_ms = 0;
  /// The OTA update that made it (AFR_OTA-<id>), if any: DeleteStream is refused while it exists.
  std::string ota_update;

  std::string to_json() const;
  static std::optional<stream> from_json(std::string_view body);
};

struct stream_settings {
  int max_inflight_per_session = 4;
};

class stream_service final : public broker::broker_hook {
 public:
  /// Loads the stored streams; throws std::runtime_error if one is unreadable. `arn_prefix` is
  /// `arn:aws:iot:<region>:<account>:`.
  stream_service(storage::store& store, common::clock& clock, objects::links objects, std::string arn_prefix,
                 stream_settings s = {});
  ~stream_service() override;

  /// Delivers an answer to the session (client id, incarnation) that asked, and to no one else.
  std::function<void(const std::string& client_id, std::uint64_t session, std::string topic, std::string payload)> reply;
  /// Devices' requests in flight per session; the server sets where a release waits (inflight_gate).
  common::inflight_gate& inflight() { return inflight_; }

  void start();
  void stop();

  // broker::broker_hook (any worker)
  broker::topic_claim claim(std::string_view topic) const override;
  bool on_message(const broker::message_ptr& m, const broker::publish_context& ctx) override;

  static std::vector<std::string_view> operations();
  /// Runs a control-plane operation. API thread.
  common::aws_response call(std::string_view op, const boost::json::object& in);
  /// CreateStream for an OTA update (`owner`: its id), which DeleteStream then refuses. API thread.
  common::aws_response create_owned(const boost::json::object& in, const std::string& owner);
  /// Deletes a stream an OTA update made (DeleteOTAUpdate with deleteStream). API thread.
  bool delete_owned(const std::string& id);
  /// Ends an OTA update's hold on its stream (DeleteOTAUpdate without deleteStream). API thread.
  void release(const std::string& id);
  /// The streams OTA updates made: (stream id, update id).
  std::vector<std::pair<std::string, std::string>> owned() const;
  std::string arn(const std::string& id) const { return arn_prefix_ + "stream/" + id; }
  /// A stream by id, or null. Any thread.
  std::shared_ptr<const stream> find(std::string_view id) const;

  /// Returns once every device request admitted before has been answered (tests).
  void drain();
  void register_metrics(common::registry& r) const;

 private:
  struct device_request {
    std::string thing, stream_id, client_id, payload;
    bool get = false;
    wire_format format = wire_format::json;
    std::uint64_t session = 0;
  };
  common::aws_response create(const boost::json::object& in, const std::string& owner);
  common::aws_response describe(const boost::json::object& in) const;
  common::aws_response list(const boost::json::object& in) const;
  common::aws_response update(const boost::json::object& in);
  common::aws_response remove(const boost::json::object& in);
  /// The files member resolved against the object store; an AWS error if one is malformed or missing.
  std::optional<common::aws_response> resolve_files(const boost::json::object& in, std::vector<stream_file>& out) const;
  bool save(const stream& s);
  void handle(const device_request& r);
  void answer(const device_request& r, std::string_view kind, std::string payload);
  void reject(const device_request& r, const stream_rejection& why);

  storage::store& store_;
  common::clock& clock_;
  objects::links objects_;
  std::string arn_prefix_;
  stream_settings settings_;

  mutable std::shared_mutex mutex_;
  std::map<std::string, std::shared_ptr<const stream>, std::less<>> streams_;

  common::inflight_gate inflight_{settings_.max_inflight_per_session};  // devices' requests in flight

  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::thread thread_;

  common::counter requests_, rejected_, blocks_, block_bytes_, throttled_;
};

}  // namespace fleetcore::ota
