#pragma once
// The vocabulary of the AWS edge, shared by the modules that own AWS operations (the registry, shadows,
// the broker's HTTP publish; jobs, rules and provisioning next) and the api module that routes
// requests to them. A module lists its operations by AWS name (`aws_operations`); `server` hands the
// list to the API, which binds each request to one operation from botocore's route table and runs the
// operation's handler. Nothing here knows HTTP or routes: a domain module that owns operations needs
// this header, never the api module, so dependencies keep pointing down.
//
// Header-only over Boost.JSON: a module that includes it links Boost.JSON (fc_boost).
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fleetcore::common {

/// An AWS-shaped error: the exception name the SDKs map to a class (sent as x-amzn-ErrorType), the
/// HTTP status, and a message for people.
struct aws_error {
  std::string code;
  unsigned status = 400;
  std::string message;
};

/// An operation's answer as it goes on the wire: the HTTP status, the JSON body, and for an error its
/// type (x-amzn-ErrorType; empty on success).
struct aws_response {
  unsigned status = 200;
  std::string body;
  std::string error_type;

  /// Success with `body` (a JSON document). The API sends it with the status the model declares for
  /// the operation.
  static aws_response ok(std::string body) { return {200, std::move(body), {}}; }
  /// AWS's error: `{"__type": ..., "message": ...}` with the error's status and type (rest-json clients
  /// read the type from x-amzn-ErrorType, json-protocol clients such as timestream-query from __type).
  static aws_response from(const aws_error& e) { return error(e.status, e.code, e.message); }
  static aws_response error(unsigned status, std::string code, std::string_view message) {
    return {status, boost::json::serialize(boost::json::object{{"__type", code}, {"message", message}}),
            std::move(code)};
  }
  /// ResourceAlreadyExistsException (409) with the resourceId and resourceArn members iot's model gives it.
  static aws_response already_exists(std::string_view message, std::string_view id, std::string_view arn) {
    return {409,
            boost::json::serialize(boost::json::object{{"__type", "ResourceAlreadyExistsException"},
                                                       {"message", message},
                                                       {"resourceId", id},
                                                       {"resourceArn", arn}}),
            "ResourceAlreadyExistsException"};
  }
  /// The two errors every operation answers: InvalidRequestException (400), ResourceNotFoundException (404).
  static aws_response invalid(std::string_view message) { return error(400, "InvalidRequestException", message); }
  static aws_response not_found(std::string_view message) { return error(404, "ResourceNotFoundException", message); }
  bool failed() const noexcept { return !error_type.empty(); }
};

/// A control-plane timestamp as botocore reads it in rest-json bodies: epoch seconds with a fraction.
inline double api_time(std::int64_t ms) { return static_cast<double>(ms) / 1000.0; }

/// Runs one AWS operation named `operation` with its input members (AWS member names, bound from the
/// path, query, headers and body as the model declares them) and answers it. Called on the API thread,
/// one request at a time; it may wait for its module (a commit, the shadow thread), never for the API.
using aws_operation = std::function<aws_response(std::string_view operation, const boost::json::object& input)>;

/// The operations a module owns, by AWS operation name (e.g. {"GetThingShadow", fn}).
using aws_operations = std::vector<std::pair<std::string, aws_operation>>;

}  // namespace fleetcore::common
