// Binding HTTP requests to operations as botocore's models declare them.
#include "api/routes.hpp"

#include <gtest/gtest.h>

namespace fleetcore::api {
namespace {

namespace json = boost::json;

std::variant<bound_request, bind_error> bind(std::string_view method, std::string_view target,
                                             std::string_view body = {}, std::string principal = {}) {
  return bind_request(
      method, target,
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

}  // namespace
}  // namespace fleetcore::api
