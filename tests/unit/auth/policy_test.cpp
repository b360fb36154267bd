#include "auth/policy.hpp"

#include <gtest/gtest.h>

#include <map>

namespace fleetcore::auth {
namespace {

constexpr const char* arn = "arn:aws:iot:us-east-1:123456789012:";

policy_document parse(const std::string& json) {
  std::string error;
  auto p = policy_document::parse(json, error);
  EXPECT_TRUE(p) << error << "\n" << json;
  return p ? *p : policy_document{};
}

std::string doc(const std::string& statements) {
  return R"({"Version":"2012-10-17","Statement":[)" + statements + "]}";
}

variable_resolver vars(std::map<std::string, std::string> m) {
  return [m = std::move(m)](std::string_view name) -> std::optional<std::string> {
    auto it = m.find(std::string(name));
    if (it == m.end()) return std::nullopt;
    return it->second;
  };
}

decision check(const policy_document& p, const std::string& action, const std::string& resource,
               const variable_resolver& v) {
  const policy_document* ps[] = {&p};
  return evaluate(ps, action, arn + resource, v);
}

// basic-policy-variables.md: client id in the client and topic resources.
TEST(policy, client_id_variable) {
  auto p = parse(doc(R"({"Effect":"Allow","Action":["iot:Connect"],"Resource":["arn:aws:iot:us-east-1:123456789012:client/${iot:ClientId}"]},
                        {"Effect":"Allow","Action":["iot:Publish"],"Resource":["arn:aws:iot:us-east-1:123456789012:topic/my/topic/${iot:ClientId}"]})"));
  auto v = vars({{"iot:ClientId", "100-234-3456"}});
  EXPECT_EQ(check(p, "iot:Connect", "client/100-234-3456", v), decision::allow);
  EXPECT_EQ(check(p, "iot:Connect", "client/other", v), decision::implicit_deny);
  EXPECT_EQ(check(p, "iot:Publish", "topic/my/topic/100-234-3456", v), decision::allow);
  EXPECT_EQ(check(p, "iot:Publish", "topic/my/topic/other", v), decision::implicit_deny);
  EXPECT_EQ(check(p, "iot:Subscribe", "topicfilter/my/topic/100-234-3456", v), decision::implicit_deny);
}

// thing-policy-variables.md: thing name as client id, only when the certificate is attached.
TEST(policy, thing_name_and_is_attached) {
  auto p = parse(doc(R"({"Effect":"Allow","Action":"iot:Connect","Resource":"arn:aws:iot:us-east-1:123456789012:client/${iot:Connection.Thing.ThingName}",
                         "Condition":{"Bool":{"iot:Connection.Thing.IsAttached":"true"}}})"));
  EXPECT_EQ(check(p, "iot:Connect", "client/thing-1",
                  vars({{"iot:Connection.Thing.ThingName", "thing-1"}, {"iot:Connection.Thing.IsAttached", "true"}})),
            decision::allow);
  EXPECT_EQ(check(p, "iot:Connect", "client/thing-1",
                  vars({{"iot:Connection.Thing.ThingName", "thing-1"}, {"iot:Connection.Thing.IsAttached", "false"}})),
            decision::implicit_deny);
  // No thing attached: the variable does not resolve, the statement does not apply.
  EXPECT_EQ(check(p, "iot:Connect", "client/thing-1", vars({{"iot:Connection.Thing.IsAttached", "false"}})),
            decision::implicit_deny);
}

TEST(policy, thing_attributes_and_type) {
  auto p = parse(doc(R"({"Effect":"Allow","Action":"iot:Publish","Resource":"arn:aws:iot:us-east-1:123456789012:topic/${iot:Connection.Thing.ThingTypeName}/${iot:Connection.Thing.Attributes[location]}/*"})"));
  auto v = vars({{"iot:Connection.Thing.ThingTypeName", "lamp"}, {"iot:Connection.Thing.Attributes[location]", "hall"}});
  EXPECT_EQ(check(p, "iot:Publish", "topic/lamp/hall/state", v), decision::allow);
  EXPECT_EQ(check(p, "iot:Publish", "topic/lamp/kitchen/state", v), decision::implicit_deny);
}

// pub-sub-policy.md: `*` is a wildcard, MQTT's + and # are literal.
TEST(policy, wildcards_and_literal_mqtt_wildcards) {
  auto p = parse(doc(R"({"Effect":"Allow","Action":["iot:Publish","iot:Receive"],"Resource":"arn:aws:iot:us-east-1:123456789012:topic/sensors/*"},
                        {"Effect":"Allow","Action":"iot:Subscribe","Resource":"arn:aws:iot:us-east-1:123456789012:topicfilter/sensors/+/temp"},
                        {"Effect":"Allow","Action":"iot:Subscribe","Resource":"arn:aws:iot:us-east-1:123456789012:topicfilter/room?"})"));
  auto v = vars({});
  EXPECT_EQ(check(p, "iot:Publish", "topic/sensors/a/b/c", v), decision::allow);
  EXPECT_EQ(check(p, "iot:Receive", "topic/sensors/x", v), decision::allow);
  EXPECT_EQ(check(p, "iot:Publish", "topic/other", v), decision::implicit_deny);
  EXPECT_EQ(check(p, "iot:Subscribe", "topicfilter/sensors/+/temp", v), decision::allow);
  EXPECT_EQ(check(p, "iot:Subscribe", "topicfilter/sensors/1/temp", v), decision::implicit_deny);
  EXPECT_EQ(check(p, "iot:Subscribe", "topicfilter/room1", v), decision::allow);
  EXPECT_EQ(check(p, "iot:Subscribe", "topicfilter/room12", v), decision::implicit_deny);
}

TEST(policy, explicit_deny_wins_across_policies) {
  auto allow_all = parse(doc(R"({"Effect":"Allow","Action":"iot:*","Resource":"*"})"));
  auto deny_admin = parse(doc(R"({"Effect":"Deny","Action":"iot:Publish","Resource":"arn:aws:iot:us-east-1:123456789012:topic/admin/*"})"));
  const policy_document* ps[] = {&allow_all, &deny_admin};
  auto v = vars({});
  EXPECT_EQ(evaluate(ps, "iot:Publish", std::string(arn) + "topic/admin/reboot", v), decision::explicit_deny);
  EXPECT_EQ(evaluate(ps, "iot:Publish", std::string(arn) + "topic/data", v), decision::allow);
  EXPECT_EQ(evaluate(ps, "iot:Subscribe", std::string(arn) + "topicfilter/admin/x", v), decision::allow);
  EXPECT_EQ(evaluate({}, "iot:Publish", std::string(arn) + "topic/data", v), decision::implicit_deny);
}

TEST(policy, not_action_and_not_resource) {
  auto p = parse(doc(R"({"Effect":"Allow","NotAction":"iot:Publish","Resource":"*"},
                        {"Effect":"Deny","Action":"iot:Subscribe","NotResource":"arn:aws:iot:us-east-1:123456789012:topicfilter/public/*"})"));
  auto v = vars({});
  EXPECT_EQ(check(p, "iot:Publish", "topic/x", v), decision::implicit_deny);
  EXPECT_EQ(check(p, "iot:Connect", "client/x", v), decision::allow);
  EXPECT_EQ(check(p, "iot:Subscribe", "topicfilter/public/news", v), decision::allow);
  EXPECT_EQ(check(p, "iot:Subscribe", "topicfilter/private/x", v), decision::explicit_deny);
}

TEST(policy, actions_are_case_insensitive_resources_are_not) {
  auto p = parse(doc(R"({"Effect":"Allow","Action":"IoT:publish","Resource":"arn:aws:iot:us-east-1:123456789012:topic/Data"})"));
  EXPECT_EQ(check(p, "iot:Publish", "topic/Data", vars({})), decision::allow);
  EXPECT_EQ(check(p, "iot:Publish", "topic/data", vars({})), decision::implicit_deny);
}

TEST(policy, variable_values_never_act_as_wildcards) {
  auto p = parse(doc(R"({"Effect":"Allow","Action":"iot:Connect","Resource":"arn:aws:iot:us-east-1:123456789012:client/${iot:ClientId}"},
                        {"Effect":"Allow","Action":"iot:Publish","Resource":"arn:aws:iot:us-east-1:123456789012:topic/${*}"})"));
  auto v = vars({{"iot:ClientId", "a*"}});
  EXPECT_EQ(check(p, "iot:Connect", "client/a*", v), decision::allow);
  EXPECT_EQ(check(p, "iot:Connect", "client/abc", v), decision::implicit_deny);
  EXPECT_EQ(check(p, "iot:Publish", "topic/*", v), decision::allow);  // ${*} is a literal star
  EXPECT_EQ(check(p, "iot:Publish", "topic/x", v), decision::implicit_deny);
}

// cert-policy-variables.md, "Wildcards" and "String length": a certificate attribute holding `*`, `$`,
// `+`, `?` or `#`, or longer than 1024 characters, is not substituted; the statement does not match.
TEST(policy, certificate_variable_with_wildcard_characters_is_not_replaced) {
  auto p = parse(doc(R"({"Effect":"Allow","Action":"iot:Subscribe","Resource":"arn:aws:iot:us-east-1:123456789012:topicfilter/devices/${iot:Certificate.Subject.CommonName}/*"},
                        {"Effect":"Allow","Action":"iot:Publish","Resource":"*","Condition":{"StringEquals":{"iot:ClientId":"${iot:Certificate.Subject.CommonName}"}}})"));
  const std::string cn = "iot:Certificate.Subject.CommonName";
  EXPECT_EQ(check(p, "iot:Subscribe", "topicfilter/devices/dev-1/#", vars({{cn, "dev-1"}})), decision::allow);
  EXPECT_EQ(check(p, "iot:Subscribe", "topicfilter/devices/+/#", vars({{cn, "+"}})), decision::implicit_deny);
  for (std::string value : {"a*", "a$b", "+", "a?", "#", "x+y"}) {
    auto v = vars({{cn, value}, {"iot:ClientId", value}});
    EXPECT_EQ(check(p, "iot:Subscribe", "topicfilter/devices/" + value + "/x", v), decision::implicit_deny) << value;
    EXPECT_EQ(check(p, "iot:Publish", "topic/t", v), decision::implicit_deny) << value;
  }
  const std::string longest(1024, 'a'), too_long(1025, 'a');
  EXPECT_EQ(check(p, "iot:Subscribe", "topicfilter/devices/" + longest + "/x", vars({{cn, longest}})), decision::allow);
  EXPECT_EQ(check(p, "iot:Subscribe", "topicfilter/devices/" + too_long + "/x", vars({{cn, too_long}})),
            decision::implicit_deny);
  // The rule is the certificate's: other variables are substituted (and never act as wildcards).
  auto q = parse(doc(R"({"Effect":"Allow","Action":"iot:Publish","Resource":"arn:aws:iot:us-east-1:123456789012:topic/c/${iot:ClientId}"})"));
  EXPECT_EQ(check(q, "iot:Publish", "topic/c/a$b", vars({{"iot:ClientId", "a$b"}})), decision::allow);
  // ... except MQTT wildcards in the client id, which would widen a topic filter grant.
  auto f = parse(doc(R"({"Effect":"Allow","Action":"iot:Subscribe","Resource":"arn:aws:iot:us-east-1:123456789012:topicfilter/c/${iot:ClientId}/*"})"));
  EXPECT_EQ(check(f, "iot:Subscribe", "topicfilter/c/dev/x", vars({{"iot:ClientId", "dev"}})), decision::allow);
  EXPECT_EQ(check(f, "iot:Subscribe", "topicfilter/c/+/x", vars({{"iot:ClientId", "+"}})), decision::implicit_deny);
  EXPECT_EQ(check(f, "iot:Subscribe", "topicfilter/c/#", vars({{"iot:ClientId", "#"}})), decision::implicit_deny);
}

TEST(policy, unresolvable_variable_makes_deny_statement_not_apply) {
  auto p = parse(doc(R"({"Effect":"Allow","Action":"iot:*","Resource":"*"},
                        {"Effect":"Deny","Action":"iot:Publish","Resource":"arn:aws:iot:us-east-1:123456789012:topic/${iot:Connection.Thing.ThingName}"})"));
  EXPECT_EQ(check(p, "iot:Publish", "topic/t", vars({})), decision::allow);
  EXPECT_EQ(check(p, "iot:Publish", "topic/t", vars({{"iot:Connection.Thing.ThingName", "t"}})), decision::explicit_deny);
}

TEST(policy, conditions) {
  auto p = parse(doc(R"({"Effect":"Allow","Action":"iot:Connect","Resource":"*","Condition":{
      "StringLike":{"iot:Certificate.Subject.CommonName":["dev-*","lab-?"]},
      "StringNotEquals":{"iot:Certificate.Subject.Organization":"blocked"},
      "StringEqualsIgnoreCase":{"iot:Certificate.Subject.Country":"de"},
      "NumericLessThanIfExists":{"iot:Connection.Thing.Attributes[rev]":"5"},
      "Null":{"iot:Connection.Thing.ThingName":"false"}}})"));
  std::map<std::string, std::string> base{{"iot:Certificate.Subject.CommonName", "dev-7"},
                                          {"iot:Certificate.Subject.Country", "DE"},
                                          {"iot:Connection.Thing.ThingName", "dev-7"}};
  auto with = [&](std::map<std::string, std::string> extra) {
    auto m = base;
    for (auto& [k, v] : extra) m[k] = v;
    return check(p, "iot:Connect", "client/dev-7", vars(m));
  };
  EXPECT_EQ(with({}), decision::allow);
  EXPECT_EQ(with({{"iot:Certificate.Subject.CommonName", "lab-1"}}), decision::allow);
  EXPECT_EQ(with({{"iot:Certificate.Subject.CommonName", "lab-12"}}), decision::implicit_deny);
  EXPECT_EQ(with({{"iot:Certificate.Subject.Organization", "blocked"}}), decision::implicit_deny);
  EXPECT_EQ(with({{"iot:Certificate.Subject.Organization", "ok"}}), decision::allow);
  EXPECT_EQ(with({{"iot:Connection.Thing.Attributes[rev]", "4"}}), decision::allow);
  EXPECT_EQ(with({{"iot:Connection.Thing.Attributes[rev]", "5"}}), decision::implicit_deny);
  auto no_thing = base;
  no_thing.erase("iot:Connection.Thing.ThingName");
  EXPECT_EQ(check(p, "iot:Connect", "client/dev-7", vars(no_thing)), decision::implicit_deny);
}

TEST(policy, single_statement_object_and_scalar_lists) {
  std::string error;
  auto p = policy_document::parse(R"({"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"iot:Connect","Resource":"*"}})", error);
  ASSERT_TRUE(p) << error;
  EXPECT_EQ(p->statements().size(), 1u);
}

TEST(policy, malformed_documents) {
  for (const char* bad : {
           "not json",
           "[]",
           R"({"Version":"2012-10-17"})",
           R"({"Version":"2012-10-17","Statement":[]})",
           R"({"Version":"2019-01-01","Statement":{"Effect":"Allow","Action":"iot:Connect","Resource":"*"}})",
           R"({"Statement":{"Action":"iot:Connect","Resource":"*"}})",
           R"({"Statement":{"Effect":"Maybe","Action":"iot:Connect","Resource":"*"}})",
           R"({"Statement":{"Effect":"Allow","Action":"iot:Connect","NotAction":"iot:Publish","Resource":"*"}})",
           R"({"Statement":{"Effect":"Allow","Action":"iot:Connect"}})",
           R"({"Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}})",
           R"({"Statement":{"Effect":"Allow","Action":[],"Resource":"*"}})",
           R"({"Statement":{"Effect":"Allow","Action":"iot:Connect","Resource":"*","Principal":"*"}})",
           R"({"Statement":{"Effect":"Allow","Action":"iot:Connect","Resource":"*","Condition":{"StringSortOf":{"a":"b"}}}})",
           R"({"Statement":{"Effect":"Allow","Action":"iot:Connect","Resource":"*","Condition":{"StringEquals":{"a":{"b":1}}}}})",
           R"({"Statement":{"Effect":"Allow","Action":"iot:Connect","Resource":"*"},"Extra":1})",
       }) {
    std::string error;
    EXPECT_FALSE(policy_document::parse(bad, error)) << bad;
    EXPECT_FALSE(error.empty()) << bad;
  }
}

TEST(policy, wildcard_matcher) {
  EXPECT_TRUE(wildcard_match("a*c", "abbbc"));
  EXPECT_TRUE(wildcard_match("a*", "a"));
  EXPECT_TRUE(wildcard_match("*", ""));
  EXPECT_FALSE(wildcard_match("a?c", "ac"));
  EXPECT_TRUE(wildcard_match("*a*b*", "xxaxxbxx"));
  EXPECT_FALSE(wildcard_match("*a*b", "xxaxxbxxc"));
  EXPECT_TRUE(wildcard_match("a\\*", "a*"));
  EXPECT_FALSE(wildcard_match("a\\*", "ab"));
  EXPECT_TRUE(wildcard_match("IOT:*", "iot:Publish", true));
}

}  // namespace
}  // namespace fleetcore::auth
