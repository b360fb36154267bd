#include "provisioning/template.hpp"

#include <gtest/gtest.h>

using namespace fleetcore::provisioning;

namespace {
parsed_template parse_ok(const std::string& body) {
  std::string error;
  auto t = parse_template(body, error);
  EXPECT_TRUE(t) << error;
  return t ? *t : parsed_template{};
}

std::string parse_error(const std::string& body) {
  std::string error;
  EXPECT_FALSE(parse_template(body, error));
  return error;
}

std::string eval_error(const std::string& body, const std::map<std::string, std::string>& params) {
  std::string error;
  EXPECT_FALSE(evaluate(parse_ok(body), params, error));
  return error;
}

// The Guide's fleet provisioning example (provision-template.md), with a policy document object.
const std::string k_fleet = R"({
  "Parameters": {"ThingName": {"Type": "String"}, "SerialNumber": {"Type": "String"},
                 "DeviceLocation": {"Type": "String"}},
  "Mappings": {"LocationTable": {"Seattle": {"LocationUrl": "https://example.aws"}}},
  "Resources": {
    "thing": {"Type": "AWS::IoT::Thing",
              "Properties": {"AttributePayload": {"version": "v1", "serialNumber": "serialNumber"},
                             "ThingName": {"Ref": "ThingName"},
                             "ThingTypeName": {"Fn::Join": ["", ["ThingPrefix_", {"Ref": "SerialNumber"}]]},
                             "ThingGroups": ["v1-lightbulbs", "WA"],
                             "BillingGroup": "LightBulbBillingGroup"},
              "OverrideSettings": {"AttributePayload": "MERGE", "ThingTypeName": "REPLACE", "ThingGroups": "DO_NOTHING"}},
    "certificate": {"Type": "AWS::IoT::Certificate",
                    "Properties": {"CertificateId": {"Ref": "AWS::IoT::Certificate::Id"}, "Status": "Active"}},
    "policy": {"Type": "AWS::IoT::Policy",
               "Properties": {"PolicyDocument": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                              "Action": ["iot:Publish"], "Resource": ["arn:aws:iot:us-east-1:123456789012:topic/foo/bar"]}]}}}},
  "DeviceConfiguration": {"FallbackUrl": "https://www.example.com/test-site",
                          "LocationUrl": {"Fn::FindInMap": ["LocationTable", {"Ref": "DeviceLocation"}, "LocationUrl"]}}
})";
}  // namespace

TEST(provisioning_template, the_guides_fleet_example_evaluates) {
  std::string error;
  auto p = evaluate(parse_ok(k_fleet),
                    {{"ThingName", "lamp-7"}, {"SerialNumber", "7"}, {"DeviceLocation", "Seattle"},
                     {"AWS::IoT::Certificate::Id", "abc123"}},
                    error);
  ASSERT_TRUE(p) << error;
  ASSERT_TRUE(p->thing);
  EXPECT_EQ(p->thing->name, "lamp-7");
  EXPECT_EQ(p->thing->type, "ThingPrefix_7");
  EXPECT_EQ(p->thing->attributes, (std::map<std::string, std::string>{{"serialNumber", "serialNumber"}, {"version", "v1"}}));
  EXPECT_EQ(p->thing->groups, (std::vector<std::string>{"v1-lightbulbs", "WA"}));
  EXPECT_EQ(p->thing->attributes_rule, on_existing::merge);
  EXPECT_EQ(p->thing->groups_rule, on_existing::do_nothing);
  ASSERT_TRUE(p->certificate);
  EXPECT_EQ(p->certificate->id, "abc123");
  EXPECT_EQ(p->certificate->status, "ACTIVE");  // "Active", as the Guide writes it
  ASSERT_EQ(p->policies.size(), 1u);
  EXPECT_EQ(p->policies[0].name.size(), 40u);  // the document's hash, as AWS names such policies
  EXPECT_EQ(p->device_configuration.at("LocationUrl"), "https://example.aws");
  EXPECT_EQ(p->device_configuration.at("FallbackUrl"), "https://www.example.com/test-site");
}

TEST(provisioning_template, intrinsics) {
  const std::string body = R"({
    "Parameters": {"Csv": {"Type": "String"}, "Location": {"Type": "String", "Default": "WA"}, "N": {"Type": "String"}},
    "Resources": {"thing": {"Type": "AWS::IoT::Thing", "Properties": {
      "ThingName": {"Fn::Sub": "dev-${Location}-${!Literal}"},
      "AttributePayload": {"second": {"Fn::Select": [1, {"Fn::Split": [",", {"Ref": "Csv"}]}]},
                           "indexed": {"Fn::Select": [{"Ref": "N"}, ["a", "b", "c"]]},
                           "subbed": {"Fn::Sub": ["${x}+${Location}", {"x": {"Ref": "N"}}]}}}}}})";
  std::string error;
  auto p = evaluate(parse_ok(body), {{"Csv", "a,b,,c"}, {"N", "2"}}, error);
  ASSERT_TRUE(p) << error;
  EXPECT_EQ(p->thing->name, "dev-WA-${Literal}");
  EXPECT_EQ(p->thing->attributes->at("second"), "b");
  EXPECT_EQ(p->thing->attributes->at("indexed"), "c");
  EXPECT_EQ(p->thing->attributes->at("subbed"), "2+WA");
  // Out of bounds, missing parameters, unknown functions: errors that say what.
  EXPECT_NE(eval_error(body, {{"Csv", "a"}, {"N", "2"}}).find("out of the list's bounds"), std::string::npos);
  EXPECT_NE(eval_error(body, {{"N", "2"}}).find("parameter Csv has no value"), std::string::npos);
  EXPECT_NE(eval_error(R"({"Resources": {"t": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": {"Fn::If": ["c", "a", "b"]}}}}})", {})
                .find("Fn::If is not a function"),
            std::string::npos);
  EXPECT_NE(eval_error(R"({"Resources": {"t": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": {"Ref": "Nope"}}}}})", {})
                .find("does not declare it"),
            std::string::npos);
}

TEST(provisioning_template, shapes_the_guide_does_not_document_are_refused) {
  EXPECT_NE(parse_error("[]").find("not a JSON object"), std::string::npos);
  EXPECT_NE(parse_error(R"({"Conditions": {}})").find("Conditions"), std::string::npos);
  EXPECT_NE(parse_error(R"({"Parameters": {"P": {"Type": "Number"}}})").find("String"), std::string::npos);
  EXPECT_NE(parse_error(R"({"Resources": {"r": {"Type": "AWS::S3::Bucket"}}})").find("Type must be"), std::string::npos);
  EXPECT_NE(parse_error(R"({"Resources": {"p": {"Type": "AWS::IoT::Policy", "OverrideSettings": {}}}})").find("not available"),
            std::string::npos);
  EXPECT_NE(parse_error(std::string(10241, ' ')).find("10240"), std::string::npos);
  // Properties that are a function, not an object, are refused before they could be evaluated.
  EXPECT_NE(parse_error(R"({"Resources": {"t": {"Type": "AWS::IoT::Thing", "Properties": {"Ref": "P"}}}})").find("Properties must be"),
            std::string::npos);
  // A certificate named two ways, a policy without name nor document, a nested device configuration.
  EXPECT_NE(eval_error(R"({"Resources": {"c": {"Type": "AWS::IoT::Certificate", "Properties": {"CertificateId": "a", "CertificateSigningRequest": "b"}}}})", {})
                .find("one way"),
            std::string::npos);
  EXPECT_NE(eval_error(R"({"Resources": {"p": {"Type": "AWS::IoT::Policy", "Properties": {}}}})", {}).find("PolicyName or PolicyDocument"),
            std::string::npos);
  EXPECT_NE(eval_error(R"({"DeviceConfiguration": {"k": {"nested": "x"}}})", {}).find("no nested"), std::string::npos);
  EXPECT_NE(eval_error(R"({"Resources": {"t": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": "x"}, "OverrideSettings": {"ThingTypeName": "MERGE"}}}})", {})
                .find("DO_NOTHING, REPLACE, FAIL"),
            std::string::npos);
}

TEST(provisioning_template, deep_nesting_is_bounded) {
  std::string deep = "\"x\"";
  for (int i = 0; i < 40; ++i) deep = "{\"Fn::Join\": [\"\", [" + deep + "]]}";
  const std::string body = R"({"Resources": {"t": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": )" + deep + "}}}}";
  EXPECT_NE(parse_error(body).find("deeper than 32"), std::string::npos);
}
