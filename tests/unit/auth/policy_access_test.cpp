#include "auth/policy_access.hpp"

#include <gtest/gtest.h>

namespace fleetcore::auth {
namespace {

policy_document parse(const std::string& json) {
  std::string error;
  auto p = policy_document::parse(json, error);
  EXPECT_TRUE(p) << error;
  return *p;
}

const char* allow_publish_a = R"({"Statement":{"Effect":"Allow","Action":["iot:Publish","iot:Connect"],
  "Resource":["arn:aws:iot:r:1:topic/a","arn:aws:iot:r:1:client/${iot:ClientId}"]}})";
const char* allow_publish_b = R"({"Statement":{"Effect":"Allow","Action":"iot:Publish","Resource":"arn:aws:iot:r:1:topic/b"}})";

TEST(policy_access, arns_and_cached_decisions_follow_policy_changes) {
  policy_access pa("r", "1", {parse(allow_publish_a)});
  connection_info c;
  EXPECT_EQ(pa.authorize_connect(c, "dev"), mqtt::reason_code::success);
  EXPECT_EQ(pa.authorize_publish(c, "dev", "a", false), mqtt::reason_code::success);
  EXPECT_EQ(pa.authorize_publish(c, "dev", "a", true), mqtt::reason_code::not_authorized);  // no RetainPublish
  EXPECT_EQ(pa.authorize_publish(c, "dev", "b", false), mqtt::reason_code::not_authorized);
  EXPECT_FALSE(c.decision_cache.empty());
  pa.set_policies({parse(allow_publish_b)});
  EXPECT_EQ(pa.authorize_publish(c, "dev", "a", false), mqtt::reason_code::not_authorized);
  EXPECT_EQ(pa.authorize_publish(c, "dev", "b", false), mqtt::reason_code::success);
  EXPECT_FALSE(pa.authorize_receive(c, "dev", "b"));
}

TEST(policy_access, listener_routing) {
  allow_all_policy all;
  policy_access strict("r", "1", {});
  listener_access routed(all);
  routed.set("mqtt", strict);
  connection_info plain, tls;
  plain.listener = "mqtt";
  tls.listener = "mqtts";
  EXPECT_EQ(routed.authorize_connect(plain, "x"), mqtt::reason_code::not_authorized);
  EXPECT_EQ(routed.authorize_connect(tls, "x"), mqtt::reason_code::success);
}

}  // namespace
}  // namespace fleetcore::auth
