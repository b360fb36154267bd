// Fleet provisioning by claim on a manual clock: an ownership token lasts an hour; after it the token
// is refused and its certificate, never registered, is deleted; a token used in time provisions.
#include "provisioning/fleet.hpp"

#include "auth/pki.hpp"
#include "auth/policy.hpp"
#include "broker/message.hpp"
#include "storage/sqlite_store.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <gtest/gtest.h>

#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <random>

namespace fleetcore::provisioning {
namespace {

namespace json = boost::json;

class fleet_test : public ::testing::Test {
 protected:
  fleet_test() {
    clock_.advance(std::chrono::milliseconds(common::system_clock_source().wall_ms() - clock_.wall_ms()));
    dir_ = std::filesystem::temp_directory_path() / ("fc_fleet_" + std::to_string(std::random_device{}()));
    std::filesystem::create_directories(dir_);
    auto key = auth::generate_ec_key();
    auto ca = auth::make_certificate({"test CA", {}, {}, 30, true, false}, key.get(), nullptr, nullptr);
    store_ = std::make_unique<storage::sqlite_store>(dir_);
    reg_ = std::make_unique<registry::registry>(registry::settings{}, *store_, clock_, std::move(ca), std::move(key));
    reg_->defer = [](std::function<void()> fn) { fn(); };  // the control thread is this one
    templates_ = std::make_unique<template_service>(*store_, clock_, "arn:aws:iot:us-east-1:000000000000:");
    auto made = templates_->call(
        "CreateProvisioningTemplate",
        {{"templateName", "t"},
         {"provisioningRoleArn", "arn:aws:iam::000000000000:role/p"},
         {"enabled", true},
         {"templateBody", R"({"Parameters": {"AWS::IoT::Certificate::Id": {"Type": "String"}},
                              "Resources": {"thing": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": "dev-1"}},
                                            "cert": {"Type": "AWS::IoT::Certificate",
                                                     "Properties": {"CertificateId": {"Ref": "AWS::IoT::Certificate::Id"}}}}})"}});
    EXPECT_FALSE(made.failed()) << made.body;
    restart_fleet();
  }
  /// A new fleet service on the same store (as after a restart). Answers may come from the store's
  /// thread (a create is answered once its token is durable).
  void restart_fleet() {
    fleet_ = std::make_unique<fleet_service>(*reg_, *templates_, *store_, clock_);
    fleet_->reply = [this](const std::string&, std::uint64_t, std::string topic, std::string payload) {
      std::lock_guard lock(mutex_);
      answers_.emplace_back(std::move(topic), json::parse(payload).as_object());
      answered_.notify_all();
    };
  }
  ~fleet_test() override {
    fleet_.reset();
    templates_.reset();
    reg_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  /// Publishes `payload` on `topic` as session 42 and returns the answer.
  std::pair<std::string, json::object> ask(std::string topic, std::string payload) {
    broker::publish_context ctx;
    ctx.origin = broker::publish_origin::client;
    ctx.client_id = "dev";
    EXPECT_TRUE(fleet_->on_message(broker::make_message(std::move(topic), std::move(payload), 1, false, {}, clock_.wall_ms(), 42), ctx));
    std::unique_lock lock(mutex_);
    answered_.wait_for(lock, std::chrono::seconds(10), [this] { return !answers_.empty(); });
    EXPECT_EQ(answers_.size(), 1u);
    if (answers_.empty()) return {};
    auto a = answers_.back();
    answers_.clear();
    return a;
  }
  std::string provision(const std::string& token) {
    auto [topic, body] = ask("$aws/provisioning-templates/t/provision/json",
                             json::serialize(json::object{{"certificateOwnershipToken", token}}));
    return topic.ends_with("/accepted") ? "accepted" : std::string(body.at("errorCode").as_string());
  }
  bool certificate_exists(const json::value& id) {
    return !reg_->call("DescribeCertificate", {{"certificateId", id}}).error;
  }

  common::manual_clock clock_;
  std::filesystem::path dir_;
  std::unique_ptr<storage::sqlite_store> store_;
  std::unique_ptr<registry::registry> reg_;
  std::unique_ptr<template_service> templates_;
  std::unique_ptr<fleet_service> fleet_;
  std::mutex mutex_;
  std::condition_variable answered_;
  std::vector<std::pair<std::string, json::object>> answers_;
};

TEST_F(fleet_test, a_token_expires_after_an_hour_and_takes_its_certificate_with_it) {
  auto [topic, first] = ask("$aws/certificates/create/json", "");
  ASSERT_EQ(topic, "$aws/certificates/create/json/accepted");
  auto [topic2, second] = ask("$aws/certificates/create/json", "");
  ASSERT_TRUE(certificate_exists(first.at("certificateId")));

  clock_.advance(std::chrono::minutes(59));
  EXPECT_EQ(provision(std::string(second.at("certificateOwnershipToken").as_string())), "accepted");  // in time
  clock_.advance(std::chrono::minutes(2));
  EXPECT_EQ(provision(std::string(first.at("certificateOwnershipToken").as_string())), "InvalidCertificateOwnershipToken");
  EXPECT_FALSE(certificate_exists(first.at("certificateId")));   // never registered: deleted
  EXPECT_TRUE(certificate_exists(second.at("certificateId")));   // registered: kept
  // The tokens were stored: a restart knows neither the used nor the expired one.
  restart_fleet();
  EXPECT_EQ(provision(std::string(second.at("certificateOwnershipToken").as_string())), "InvalidCertificateOwnershipToken");
}

TEST_F(fleet_test, a_token_survives_a_restart_within_its_hour) {
  auto [topic, made] = ask("$aws/certificates/create/json", "");
  ASSERT_EQ(topic, "$aws/certificates/create/json/accepted");
  restart_fleet();
  clock_.advance(std::chrono::minutes(30));
  EXPECT_EQ(provision(std::string(made.at("certificateOwnershipToken").as_string())), "accepted");
  EXPECT_EQ(std::string(reg_->call("DescribeCertificate", {{"certificateId", made.at("certificateId")}})
                            .body.at("certificateDescription").at("status").as_string()),
            "ACTIVE");
}

}  // namespace
}  // namespace fleetcore::provisioning

namespace fleetcore::provisioning {
namespace {

TEST_F(fleet_test, a_provisioning_claim_lasts_five_minutes_is_not_listed_and_may_only_provision) {
  auto made = fleet_->create_claim({{"templateName", "t"}});
  ASSERT_FALSE(made.failed()) << made.body;
  auto claim = json::parse(made.body).as_object();
  const std::string id(claim.at("certificateId").as_string());
  auto x = auth::parse_pem_cert(claim.at("certificatePem").as_string());
  ASSERT_TRUE(x);
  EXPECT_EQ(reg_->check_client_certificate(x.get()), registry::cert_check::accepted);
  EXPECT_EQ(reg_->call("ListCertificates", {}).body.at("certificates").as_array().size(), 0u);  // not listed
  // Its only policy: the template's fleet provisioning topics.
  auto view = reg_->principal_for(id, "anyone");
  ASSERT_EQ(view.policies.size(), 1u);
  const auth::policy_document* docs[] = {view.policies[0].get()};
  auth::variable_resolver ctx = [](std::string_view) { return std::optional<std::string>(); };
  auto allowed = [&](std::string_view action, std::string_view kind, std::string_view name) {
    return auth::evaluate(docs, action, reg_->arn(kind, name), ctx) == auth::decision::allow;
  };
  EXPECT_TRUE(allowed("iot:Publish", "topic", "$aws/certificates/create/json"));
  EXPECT_TRUE(allowed("iot:Publish", "topic", "$aws/provisioning-templates/t/provision/json"));
  EXPECT_TRUE(allowed("iot:Subscribe", "topicfilter", "$aws/provisioning-templates/t/provision/json/+"));
  EXPECT_FALSE(allowed("iot:Publish", "topic", "$aws/provisioning-templates/other/provision/json"));
  EXPECT_FALSE(allowed("iot:Publish", "topic", "lamps/1"));

  EXPECT_TRUE(fleet_->create_claim({{"templateName", "nope"}}).failed());
  clock_.advance(std::chrono::minutes(6));
  EXPECT_EQ(reg_->check_client_certificate(x.get()), registry::cert_check::expired);
  fleet_->expire();
  EXPECT_FALSE(certificate_exists(json::value(id)));  // gone after its five minutes
}

}  // namespace
}  // namespace fleetcore::provisioning

#include "provisioning/bootstrap.hpp"

namespace fleetcore::provisioning {
namespace {

TEST_F(fleet_test, a_bootstrap_secret_is_used_once_and_attempts_refill_with_the_clock) {
  bootstrap_service b(*reg_, *templates_, *store_, clock_, bootstrap_settings{1, 2, 100, 100});
  auto registered = b.admin("POST", "", R"({"templateName": "t", "identities": [{"deviceId": "d1", "secret": "0123456789abcdef"}]})");
  ASSERT_FALSE(registered.failed()) << registered.body;
  EXPECT_EQ(b.admin("POST", "", R"({"templateName": "t", "identities": [{"deviceId": "d2", "secret": "short"}]})").status, 400u);
  auto key = auth::generate_ec_key();
  const std::string csr = auth::make_csr(key.get(), "d1");
  auto request = [&](std::string_view secret) {
    return json::serialize(json::object{{"deviceId", "d1"}, {"secret", secret}, {"certificateSigningRequest", csr}});
  };
  EXPECT_EQ(b.device("POST", request("wrong-secret-0000"), "10.0.0.1").status, 401u);
  auto first = b.device("POST", request("0123456789abcdef"), "10.0.0.1");
  ASSERT_EQ(first.status, 200u) << first.body;
  EXPECT_EQ(std::string(json::parse(first.body).at("thingName").as_string()), "dev-1");
  // The burst of 2 is spent; another address is not held back by it.
  EXPECT_EQ(b.device("POST", request("0123456789abcdef"), "10.0.0.1").status, 429u);
  // Used once: the same key gets the same answer again, another key nothing.
  auto repeated = b.device("POST", request("0123456789abcdef"), "10.0.0.2");
  EXPECT_EQ(repeated.status, 200u);
  EXPECT_EQ(repeated.body, first.body);
  auto other_key = auth::generate_ec_key();
  auto other = json::serialize(json::object{{"deviceId", "d1"},
                                            {"secret", "0123456789abcdef"},
                                            {"certificateSigningRequest", auth::make_csr(other_key.get(), "d1")}});
  EXPECT_EQ(b.device("POST", other, "10.0.0.2").status, 403u);
  // IPv6 addresses of one /64 share a bucket.
  EXPECT_EQ(b.device("POST", other, "2001:db8::1").status, 403u);
  EXPECT_EQ(b.device("POST", other, "2001:db8::2").status, 403u);
  EXPECT_EQ(b.device("POST", other, "2001:db8::3").status, 429u);
  clock_.advance(std::chrono::seconds(1));
  EXPECT_EQ(b.device("POST", other, "10.0.0.1").status, 403u);  // refilled: admitted
  // Kept across a restart.
  bootstrap_service again(*reg_, *templates_, *store_, clock_);
  auto described = again.admin("GET", "/d1", "");
  EXPECT_EQ(std::string(json::parse(described.body).at("status").as_string()), "USED");
}

}  // namespace
}  // namespace fleetcore::provisioning
