// A pre-provisioning hook's HTTP answer read as AWS reads a Lambda's return value.
#include "provisioning/hook_caller.hpp"

#include <gtest/gtest.h>

namespace fleetcore::provisioning {
namespace {

net::http_outcome answered(unsigned status, std::string body) {
  net::http_outcome o;
  o.status = status;
  o.error = "HTTP " + std::to_string(status);
  o.body = std::move(body);
  return o;
}

TEST(hook_answer, allows_only_an_explicit_true) {
  EXPECT_TRUE(read_hook_answer(answered(200, R"({"allowProvisioning": true})")).allowed);
  EXPECT_TRUE(read_hook_answer(answered(200, R"({"allowProvisioning": "true"})")).allowed);
  for (const char* body : {R"({"allowProvisioning": false})", R"({"allowProvisioning": "yes"})", R"({})", "[]",
                           "not json", R"({"allowProvisioning": 1})"}) {
    auto v = read_hook_answer(answered(200, body));
    EXPECT_FALSE(v.allowed) << body;
    EXPECT_FALSE(v.reason.empty()) << body;
  }
}

TEST(hook_answer, an_error_status_or_no_answer_denies) {
  EXPECT_FALSE(read_hook_answer(answered(500, R"({"allowProvisioning": true})")).allowed);
  net::http_outcome none;
  none.error = "connect: Connection refused";
  auto v = read_hook_answer(none);
  EXPECT_FALSE(v.allowed);
  EXPECT_NE(v.reason.find("Connection refused"), std::string::npos);
}

TEST(hook_answer, parameter_overrides_are_strings) {
  auto v = read_hook_answer(answered(200, R"({"allowProvisioning": true, "parameterOverrides": {"A": "1", "B": "2"}})"));
  ASSERT_TRUE(v.allowed);
  EXPECT_EQ(v.overrides, (std::map<std::string, std::string>{{"A", "1"}, {"B", "2"}}));
  EXPECT_FALSE(read_hook_answer(answered(200, R"({"allowProvisioning": true, "parameterOverrides": {"A": 1}})")).allowed);
  EXPECT_FALSE(read_hook_answer(answered(200, R"({"allowProvisioning": true, "parameterOverrides": "A"})")).allowed);
}

TEST(hook_caller, maps_arns_and_takes_https_urls) {
  hook_settings s;
  s.targets["arn:aws:lambda:us-east-1:1:function:f"] = "https://hooks.example/f";
  hook_caller c(s);
  EXPECT_EQ(c.url_of("arn:aws:lambda:us-east-1:1:function:f"), "https://hooks.example/f");
  EXPECT_EQ(c.url_of("https://h/x"), "https://h/x");
  EXPECT_EQ(c.url_of("http://h/x"), std::nullopt);
  EXPECT_EQ(c.url_of("arn:aws:lambda:us-east-1:1:function:g"), std::nullopt);
}

}  // namespace
}  // namespace fleetcore::provisioning
