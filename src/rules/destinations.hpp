#pragma once
// Topic rule destinations (rule-destination.md): the HTTP endpoints an http action may post to, each
// confirmed by its owner before use. Create sends AWS's confirmation request to the confirmation URL;
// ConfirmTopicRuleDestination with the token it carried enables the destination; Update switches
// ENABLED and DISABLED, or IN_PROGRESS to send a new confirmation. VPC destinations have no endpoint
// to confirm here and are ENABLED at once (for the kafka action's destinationArn).
//
// Threads: the operations run on the API thread; `enabled_for` on the rules engine's thread; one
// mutex guards the table. Confirmation requests are posted from the engine's io_context.
#include "common/aws_api.hpp"
#include "common/clock.hpp"
#include "net/http_client.hpp"
#include "storage/store.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/json/object.hpp>

#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fleetcore::rules {

class destinations {
 public:
  /// Loads the stored destinations. `arn_prefix` is "arn:aws:iot:<region>:<account>:".
  /// Confirmation requests are sent by `http` on `io`'s thread.
  destinations(storage::store& store, common::clock& clock, std::string arn_prefix, boost::asio::io_context& io,
               net::http_client& http);

  /// True if `url` starts with the confirmation URL of an ENABLED HTTP destination.
  bool enabled_for(std::string_view url) const;

  common::aws_operations operations();

  /// The collection of its documents.
  static constexpr std::string_view document_kind = "rule_destination";
  /// In a cluster: called with each committed change, for the other nodes (set before use).
  std::function<void(const std::vector<storage::operation>&)> replicate;
  /// A change another node committed (a put or delete of a document_kind document). Any thread.
  void apply_replica(const storage::operation& op);
  /// The enableUrl of a confirmation request (opened in a browser, unsigned): confirms the destination,
  /// which becomes DISABLED (confirmed) until UpdateTopicRuleDestination enables it, as on AWS.
  common::aws_response enable_by_url(std::string_view token);
  /// The API's public base URL ("https://host:port"), for the enableUrl of confirmation requests.
  void set_api_url(std::string url) {
    std::lock_guard lock(mutex_);
    api_url_ = std::move(url);
  }

 private:
  struct destination {
    std::string arn;
    std::string status;  // ENABLED, DISABLED, IN_PROGRESS, ERROR
    std::string status_reason;
    std::string confirmation_url;  // empty for a VPC destination
    boost::json::object vpc;       // vpcConfiguration as given
    std::string token;
    double created_at = 0, updated_at = 0;
  };

  common::aws_response create(const boost::json::object& in);
  common::aws_response get(const boost::json::object& in);
  common::aws_response list(const boost::json::object& in);
  common::aws_response update(const boost::json::object& in);
  common::aws_response remove(const boost::json::object& in);
  common::aws_response confirm(const boost::json::object& in);
  common::aws_response confirm_token(std::string_view token, std::string_view status);

  bool store_one(const destination& d);
  /// Commits `op` and tells the other nodes; false if it failed.
  bool commit(storage::operation op);
  static std::optional<destination> from_document(const std::string& arn, const std::string& body);
  void send_confirmation(const destination& d);
  static boost::json::object describe(const destination& d);
  static std::string to_document(const destination& d);

  storage::store& store_;
  common::clock& clock_;
  std::string arn_prefix_;
  boost::asio::io_context& io_;  // the thread of `http_`
  net::http_client& http_;
  mutable std::mutex mutex_;
  std::map<std::string, destination, std::less<>> by_arn_;
  std::string api_url_;
};

}  // namespace fleetcore::rules
