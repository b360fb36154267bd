// Binding HTTP requests to operations as botocore's models declare them.
#include "api/routes.hpp"

#include <gtest/gtest.h>

#include <tuple>

namespace fleetcore::api {
namespace {

namespace json = boost::json;

/// Binds as the API does for a request signed for `signing_name`; by default the API that has the
/// path (the control plane's execute-api, iot-data's paths as iotdata).
std::variant<bound_request, bind_error> bind(std::string_view method, std::string_view target,
                                             std::string_view body = {}, std::string principal = {},
                                             std::string_view signing_name = {}) {
  if (signing_name.empty()) {
    const route* any = find_route("", method, target);
    signing_name = any ? std::string_view(any->signing_name) : "execute-api";
  }
  return bind_request(
      signing_name, method, target,
      [&](std::string_view name) -> std::optional<std::string> {
        if (name == "x-amzn-principal" && !principal.empty()) return principal;
        return std::nullopt;
      },
      body);
}

bound_request ok(std::variant<bound_request, bind_error> r) {
  if (auto* e = std::get_if<bind_error>(&r)) {
    ADD_FAILURE() << e->status << " " << e->code << ": " << e->message;
    return {};
  }
  return std::get<bound_request>(std::move(r));
}

TEST(api_routes, literal_segments_win_over_labels) {
  auto things = ok(bind("GET", "/things/dev-1/thing-groups?maxResults=5"));
  ASSERT_TRUE(things.op);
  EXPECT_STREQ(things.op->operation, "ListThingGroupsForThing");
  EXPECT_EQ(things.input.at("thingName"), "dev-1");
  EXPECT_EQ(things.input.at("maxResults"), 5);
  EXPECT_STREQ(ok(bind("PUT", "/thing-groups/addThingToThingGroup", "{}")).op->operation, "AddThingToThingGroup");
  EXPECT_STREQ(ok(bind("GET", "/things/dev-1/shadow?name=cfg")).op->operation, "GetThingShadow");
}

TEST(api_routes, labels_are_percent_decoded_and_headers_bound) {
  auto r = ok(bind("POST", "/attached-policies/arn%3Aaws%3Aiot%3Aus-east-1%3A0%3Acert%2Fabc?recursive=true"));
  EXPECT_STREQ(r.op->operation, "ListAttachedPolicies");
  EXPECT_EQ(r.input.at("target"), "arn:aws:iot:us-east-1:0:cert/abc");
  EXPECT_EQ(r.input.at("recursive"), true);
  auto p = ok(bind("PUT", "/things/t1/principals", {}, "arn:aws:iot:r:0:cert/x"));
  EXPECT_EQ(p.input.at("principal"), "arn:aws:iot:r:0:cert/x");
}

TEST(api_routes, body_members_and_raw_payloads) {
  auto create = ok(bind("POST", "/things/t1", R"({"attributePayload":{"attributes":{"a":"1"}}})"));
  EXPECT_EQ(create.input.at("attributePayload").at("attributes").at("a"), "1");
  EXPECT_EQ(create.input.at("thingName"), "t1");
  // UpdateThingShadow's body is the payload blob, kept as it came.
  auto shadow = ok(bind("POST", "/things/t1/shadow", "not even json"));
  EXPECT_EQ(shadow.input.at("payload"), "not even json");
}

TEST(api_routes, topics_with_encoded_or_plain_slashes) {
  auto encoded = ok(bind("POST", "/topics/a%2Fb%2Fc?qos=1", "x"));
  EXPECT_STREQ(encoded.op->operation, "Publish");
  EXPECT_EQ(encoded.input.at("topic"), "a/b/c");
  EXPECT_EQ(encoded.input.at("qos"), 1);
  EXPECT_EQ(ok(bind("POST", "/topics/a/b/c", "x")).input.at("topic"), "a/b/c");
  EXPECT_EQ(ok(bind("POST", "/topics/%24aws/things/t/shadow/update", "x")).input.at("topic"),
            "$aws/things/t/shadow/update");
}

TEST(api_routes, refusals) {
  auto unknown = bind("GET", "/nope");
  ASSERT_TRUE(std::holds_alternative<bind_error>(unknown));
  EXPECT_EQ(std::get<bind_error>(unknown).status, 404u);
  auto bad_int = bind("GET", "/things?maxResults=many");
  ASSERT_TRUE(std::holds_alternative<bind_error>(bad_int));
  EXPECT_EQ(std::get<bind_error>(bad_int).status, 400u);
  auto bad_bool = bind("POST", "/keys-and-certificate?setAsActive=yes");
  ASSERT_TRUE(std::holds_alternative<bind_error>(bad_bool));
  EXPECT_EQ(std::get<bind_error>(bad_bool).code, "InvalidRequestException");
  auto bad_body = bind("POST", "/things/t1", "[1]");
  ASSERT_TRUE(std::holds_alternative<bind_error>(bad_body));
  EXPECT_EQ(std::get<bind_error>(bad_body).status, 400u);
  EXPECT_TRUE(std::holds_alternative<bind_error>(bind("POST", "/topics/", "x")));  // empty topic
}

// iot's ListJobExecutionsForThing and iot-jobs-data's GetPendingJobExecutions are both
// GET /things/{thingName}/jobs: the service the request is signed for decides, before method and path.
TEST(api_routes, the_signing_name_picks_the_api_before_method_and_path) {
  auto control = ok(bind("GET", "/things/dev-1/jobs?maxResults=2", {}, {}, "execute-api"));
  ASSERT_TRUE(control.op);
  EXPECT_STREQ(control.op->operation, "ListJobExecutionsForThing");
  EXPECT_EQ(control.input.at("maxResults"), 2);
  auto device = ok(bind("GET", "/things/dev-1/jobs", {}, {}, "iot-jobs-data"));
  ASSERT_TRUE(device.op);
  EXPECT_STREQ(device.op->operation, "GetPendingJobExecutions");
  EXPECT_STREQ(device.op->service, "iot-jobs-data");
  EXPECT_EQ(device.input.at("thingName"), "dev-1");
  EXPECT_STREQ(find_route("execute-api", "GET", "/things/t/jobs")->operation, "ListJobExecutionsForThing");
  EXPECT_STREQ(find_route("iot-jobs-data", "GET", "/things/t/jobs")->operation, "GetPendingJobExecutions");
  // A path of another API is no route of the API signed for.
  EXPECT_EQ(find_route("iotdata", "GET", "/things/t/jobs"), nullptr);
  EXPECT_EQ(find_route("execute-api", "POST", "/topics/a"), nullptr);
  EXPECT_EQ(find_route("iot-jobs-data", "GET", "/things"), nullptr);
  auto wrong = bind("GET", "/things", {}, {}, "iotdata");
  ASSERT_TRUE(std::holds_alternative<bind_error>(wrong));
  EXPECT_EQ(std::get<bind_error>(wrong).status, 404u);
  EXPECT_EQ(std::get<bind_error>(wrong).code, "UnknownOperationException");
}

/// The route table's entry (static) for a request.
const route& route_of(const char* method, const char* target) {
  return *ok(bind(method, target, std::string_view(method) == "GET" ? "" : "{}")).op;
}

// botocore's models: the iot control plane signs as execute-api, iot-data as iotdata; fleetcore's
// extension belongs to the control plane.
TEST(api_routes, signing_names_from_the_models) {
  EXPECT_STREQ(route_of("GET", "/things").signing_name, "execute-api");
  EXPECT_STREQ(route_of("POST", "/fleetcore/cacertificate/abc/crl").signing_name, "execute-api");
  EXPECT_STREQ(route_of("POST", "/topics/a/b").signing_name, "iotdata");
  EXPECT_STREQ(route_of("GET", "/things/t/shadow").signing_name, "iotdata");
  EXPECT_STREQ(find_route("iot-jobs-data", "GET", "/things/t/jobs")->signing_name, "iot-jobs-data");
  for (const auto& r : routes()) EXPECT_NE(std::string_view(r.signing_name), "") << r.operation;
}

TEST(api_routes, credential_scope_must_name_the_region_and_the_signing_name) {
  const route& list = route_of("GET", "/things");
  const route& publish = route_of("POST", "/topics/a");
  EXPECT_FALSE(check_scope(list, "us-east-1", "execute-api", "us-east-1"));
  EXPECT_FALSE(check_scope(publish, "us-east-1", "iotdata", "us-east-1"));
  for (auto [r, region, service] : {std::tuple{&list, "us-east-1", "iot"}, std::tuple{&list, "us-east-1", "iotdata"},
                                    std::tuple{&publish, "us-east-1", "execute-api"},
                                    std::tuple{&publish, "us-east-1", "iot"}, std::tuple{&list, "eu-west-1", "execute-api"},
                                    std::tuple{&publish, "eu-west-1", "iotdata"}}) {
    auto e = check_scope(*r, region, service, "us-east-1");
    ASSERT_TRUE(e) << r->operation << " " << region << " " << service;
    EXPECT_EQ(e->status, 403u);
    EXPECT_EQ(e->code, "InvalidSignatureException");
  }
  EXPECT_FALSE(check_scope(list, "eu-west-1", "execute-api", "eu-west-1"));
}

// A SigV4 signature covers the path with dot and empty segments removed: such a path is refused, so a
// captured request cannot be replayed onto another route or topic.
TEST(api_routes, paths_that_differ_from_what_was_signed) {
  for (std::string_view replay : {"/topics/things/dev1/../dev2/cmd", "/topics/things//dev2/cmd",
                                  "/topics/things/./dev2/cmd", "/topics/things/dev2/cmd/.", "//topics/t",
                                  "/things/t1/..?x=1", "/things//"}) {
    auto e = check_signed_path(replay);
    ASSERT_TRUE(e) << replay;
    EXPECT_EQ(e->status, 400u);
    EXPECT_EQ(e->code, "InvalidRequestException");
  }
  // Encoded slashes and dots are data, signed as sent; a trailing slash is signed as sent too.
  for (std::string_view fine : {"/topics/a%2F..%2Fb", "/topics/things/dev2/cmd?qos=1", "/things/", "/",
                                "/topics/a/..b/c.", "/topics/%2E%2E/x"})
    EXPECT_FALSE(check_signed_path(fine)) << fine;
}

}  // namespace
}  // namespace fleetcore::api
