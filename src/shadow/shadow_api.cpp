#include "shadow/shadow_api.hpp"

#include "common/aws_names.hpp"
#include "common/aws_paging.hpp"
#include "common/json_members.hpp"

namespace fleetcore::shadow {

namespace {

using common::aws_response;

/// A shadow reply as AWS answers it over HTTP: the error type that goes with each status.
aws_response answer(reply r) {
  if (r.status == 200) return aws_response::ok(std::move(r.body));
  const char* code = "InvalidRequestException";
  switch (r.status) {
    case 401: code = "UnauthorizedException"; break;
    case 403: code = "ForbiddenException"; break;
    case 404: code = "ResourceNotFoundException"; break;
    case 409: code = "ConflictException"; break;
    case 413: code = "RequestEntityTooLargeException"; break;
    case 415: code = "UnsupportedDocumentEncodingException"; break;
    case 429: code = "ThrottlingException"; break;
    case 500: code = "InternalFailureException"; break;
    default: break;
  }
  return {static_cast<unsigned>(r.status), std::move(r.body), code};
}

std::string text(const boost::json::object& in, std::string_view key) {
  return std::string(common::text_member(in, key).value_or(""));
}

/// The thing and shadow names of a request, or the refusal of an invalid one.
std::optional<aws_response> check_names(const std::string& thing, const std::string& shadow) {
  if (!common::valid_thing_name(thing))
    return aws_response::error(400, "InvalidRequestException", "invalid thing name");
  if (!shadow.empty() && !common::valid_shadow_name(shadow))
    return aws_response::error(400, "InvalidRequestException", "invalid shadow name");
  return std::nullopt;
}

}  // namespace

common::aws_operations api_operations(shadow_service& shadows) {
  auto document_op = [&shadows](operation op) {
    return [&shadows, op](std::string_view, const boost::json::object& input) {
      std::string thing = text(input, "thingName"), name = text(input, "shadowName");
      if (auto refused = check_names(thing, name)) return std::move(*refused);
      return answer(shadows.call(op, std::move(thing), std::move(name), text(input, "payload")).get());
    };
  };
  auto list_named = [&shadows](std::string_view, const boost::json::object& input) {
    std::string thing = text(input, "thingName");
    if (auto refused = check_names(thing, "")) return std::move(*refused);
    std::int64_t size = 0;
    if (auto e = common::page_size(input, "pageSize", 100, 25, size)) return aws_response::from(*e);
    std::optional<std::string> token;
    if (auto t = text(input, "nextToken"); !t.empty()) token = std::move(t);
    return answer(shadows.list_named(std::move(thing), std::move(token), static_cast<int>(size)).get());
  };
  return {{"GetThingShadow", document_op(operation::get)},
          {"UpdateThingShadow", document_op(operation::update)},
          {"DeleteThingShadow", document_op(operation::remove)},
          {"ListNamedShadowsForThing", list_named}};
}

}  // namespace fleetcore::shadow
