// The registry's operations against a real SQLite store (and one that fails on demand), on a manual
// clock: AWS rules, atomicity, certificate checks over time, and policy decisions for connections
// including group-inherited policies.
#include "registry/registry.hpp"
#include "registry/registry_access.hpp"
#include "storage/sqlite_store.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <random>

namespace fleetcore::registry {
namespace {

namespace json = boost::json;

/// Passes everything to a real store, except that while `fail` is set every batch "fails to
/// commit" (as a full disk would) and is not applied.
class flaky_store final : public storage::store {
 public:
  explicit flaky_store(storage::store& inner) : inner_(inner) {}
  storage::snapshot load() override { return inner_.load(); }
  std::vector<storage::document> load_documents(const std::string& k) override { return inner_.load_documents(k); }
  void submit(std::vector<storage::operation> ops, std::function<void(bool)> done) override {
    if (fail) {
      if (done) done(false);
      return;
    }
    inner_.submit(std::move(ops), std::move(done));
  }
  void flush() override { inner_.flush(); }
  bool fail = false;

 private:
  storage::store& inner_;
};

class registry_test : public ::testing::Test {
 protected:
  registry_test() {
    // Certificates are made with OpenSSL's real clock: start the manual clock at the real time.
    clock_.advance(std::chrono::milliseconds(common::system_clock_source().wall_ms() - clock_.wall_ms()));
    dir_ = std::filesystem::temp_directory_path() / ("fc_registry_" + std::to_string(std::random_device{}()));
    std::filesystem::create_directories(dir_);
    ca_key_ = auth::generate_ec_key();
    ca_ = auth::make_certificate({"test CA", {}, {}, 30, true, false}, ca_key_.get(), nullptr, nullptr);
    open();
  }
  ~registry_test() override {
    reg_.reset();
    flaky_.reset();
    sqlite_.reset();
    std::filesystem::remove_all(dir_);
  }
  void open() {
    reg_.reset();
    flaky_.reset();
    sqlite_.reset();
    sqlite_ = std::make_unique<storage::sqlite_store>(dir_);
    flaky_ = std::make_unique<flaky_store>(*sqlite_);
    settings s;
    s.thing_type_delete_wait_s = 300;
    reg_ = std::make_unique<registry>(s, *flaky_, clock_, auth::x509_ptr(X509_dup(ca_.get())),
                                      auth::pkey_ptr(EVP_PKEY_dup(ca_key_.get())));
  }
  outcome call(std::string_view op, json::object in = {}) { return reg_->call(op, in); }
  std::string code(const outcome& o) { return o.error ? o.error->code : "OK"; }

  /// A certificate of the test CA's subject signed by the registry's CA, registered ACTIVE.
  std::pair<auth::x509_ptr, std::string> device_cert(const std::string& cn, int days = 30) {
    auto key = auth::generate_ec_key();
    auto x = auth::make_certificate({cn, {}, {}, days, false, false}, key.get(), ca_.get(), ca_key_.get());
    auto out = call("RegisterCertificate", {{"certificatePem", auth::to_pem(x.get())}, {"status", "ACTIVE"}});
    EXPECT_EQ(code(out), "OK");
    return {std::move(x), std::string(out.body["certificateArn"].as_string())};
  }

  common::manual_clock clock_;
  std::filesystem::path dir_;
  auth::pkey_ptr ca_key_;
  auth::x509_ptr ca_;
  std::unique_ptr<storage::sqlite_store> sqlite_;
  std::unique_ptr<flaky_store> flaky_;
  std::unique_ptr<registry> reg_;
};

TEST_F(registry_test, thing_names_and_attribute_limits) {
  EXPECT_EQ(code(call("CreateThing", {{"thingName", "ok:name_1-2"}})), "OK");
  EXPECT_EQ(code(call("CreateThing", {{"thingName", "has space"}})), "InvalidRequestException");
  EXPECT_EQ(code(call("CreateThing", {{"thingName", std::string(129, 'a')}})), "InvalidRequestException");
  json::object four{{"a", "1"}, {"b", "2"}, {"c", "3"}, {"d", "4"}};
  EXPECT_EQ(code(call("CreateThing", {{"thingName", "t4"}, {"attributePayload", {{"attributes", four}}}})),
            "InvalidRequestException");  // three attributes without a thing type
  EXPECT_EQ(code(call("CreateThingType", {{"thingTypeName", "tt"}})), "OK");
  EXPECT_EQ(code(call("CreateThing",
                      {{"thingName", "t4"}, {"thingTypeName", "tt"}, {"attributePayload", {{"attributes", four}}}})),
            "OK");
  EXPECT_EQ(code(call("CreateThing", {{"thingName", "t5"}, {"thingTypeName", "missing"}})),
            "ResourceNotFoundException");
}

TEST_F(registry_test, a_failed_commit_changes_nothing) {
  ASSERT_EQ(code(call("CreateThing", {{"thingName", "kept"}})), "OK");
  flaky_->fail = true;
  EXPECT_EQ(code(call("CreateThing", {{"thingName", "lost"}})), "InternalFailureException");
  EXPECT_EQ(code(call("UpdateThing", {{"thingName", "kept"}, {"attributePayload", {{"attributes", {{"a", "1"}}}}}})),
            "InternalFailureException");
  auto before = reg_->generation();
  EXPECT_EQ(code(call("CreateKeysAndCertificate", {{"setAsActive", true}})), "InternalFailureException");
  EXPECT_EQ(reg_->generation(), before);
  flaky_->fail = false;
  EXPECT_EQ(code(call("DescribeThing", {{"thingName", "lost"}})), "ResourceNotFoundException");
  auto kept = call("DescribeThing", {{"thingName", "kept"}});
  EXPECT_EQ(kept.body["version"].as_int64(), 1);
  EXPECT_TRUE(kept.body["attributes"].as_object().empty());
  EXPECT_TRUE(call("ListCertificates").body["certificates"].as_array().empty());
  // And what was committed is there after reopening.
  open();
  EXPECT_EQ(code(call("DescribeThing", {{"thingName", "kept"}})), "OK");
  EXPECT_EQ(code(call("DescribeThing", {{"thingName", "lost"}})), "ResourceNotFoundException");
}

TEST_F(registry_test, thing_type_can_be_deleted_five_minutes_after_deprecation) {
  ASSERT_EQ(code(call("CreateThingType", {{"thingTypeName", "old"}})), "OK");
  EXPECT_EQ(code(call("DeleteThingType", {{"thingTypeName", "old"}})), "InvalidRequestException");
  ASSERT_EQ(code(call("DeprecateThingType", {{"thingTypeName", "old"}})), "OK");
  clock_.advance(std::chrono::seconds(299));
  EXPECT_EQ(code(call("DeleteThingType", {{"thingTypeName", "old"}})), "InvalidRequestException");
  clock_.advance(std::chrono::seconds(2));
  EXPECT_EQ(code(call("DeleteThingType", {{"thingTypeName", "old"}})), "OK");
}

TEST_F(registry_test, certificate_check_follows_status_and_validity) {
  auto [x, arn] = device_cert("dev-1", 1);
  EXPECT_EQ(reg_->check_client_certificate(x.get()), cert_check::accepted);
  clock_.advance(std::chrono::hours(26));  // valid for one day (issued an hour back-dated)
  EXPECT_EQ(reg_->check_client_certificate(x.get()), cert_check::expired);

  auto [y, arn_y] = device_cert("dev-2");
  std::string id = auth::certificate_id(y.get());
  std::vector<std::string> dropped;
  reg_->certificate_disabled = [&](const std::string& cid) { dropped.push_back(cid); };
  ASSERT_EQ(code(call("UpdateCertificate", {{"certificateId", id}, {"newStatus", "INACTIVE"}})), "OK");
  EXPECT_EQ(reg_->check_client_certificate(y.get()), cert_check::inactive);
  EXPECT_EQ(dropped, std::vector<std::string>{id});

  auto key = auth::generate_ec_key();
  auto unregistered = auth::make_certificate({"ghost", {}, {}, 30, false, false}, key.get(), ca_.get(), ca_key_.get());
  EXPECT_EQ(reg_->check_client_certificate(unregistered.get()), cert_check::unknown);
}

TEST_F(registry_test, policy_versions_limit_and_default) {
  std::string doc = R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*"}]})";
  ASSERT_EQ(code(call("CreatePolicy", {{"policyName", "p"}, {"policyDocument", doc}})), "OK");
  for (int i = 0; i < 4; ++i) ASSERT_EQ(code(call("CreatePolicyVersion", {{"policyName", "p"}, {"policyDocument", doc}})), "OK");
  EXPECT_EQ(code(call("CreatePolicyVersion", {{"policyName", "p"}, {"policyDocument", doc}})),
            "VersionsLimitExceededException");
  EXPECT_EQ(code(call("CreatePolicy", {{"policyName", "q"}, {"policyDocument", "{}"}})), "MalformedPolicyException");
  EXPECT_EQ(code(call("SetDefaultPolicyVersion", {{"policyName", "p"}, {"policyVersionId", "9"}})),
            "ResourceNotFoundException");
}

/// Decisions for a connection of `cert` as `client`, through registry_access (as the broker asks).
class access_test : public registry_test {
 protected:
  auth::connection_info conn(X509* cert) {
    auth::connection_info c;
    c.listener = "mqtts";
    c.certificate_id = auth::certificate_id(cert);
    return c;
  }
  void policy(const std::string& name, const std::string& doc) {
    ASSERT_EQ(code(call("CreatePolicy", {{"policyName", name}, {"policyDocument", doc}})), "OK");
  }
  void attach(const std::string& name, const std::string& target) {
    ASSERT_EQ(code(call("AttachPolicy", {{"policyName", name}, {"target", target}})), "OK");
  }
};

constexpr const char* thing_policy = R"({"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Action":"iot:Connect","Resource":"arn:aws:iot:us-east-1:000000000000:client/${iot:Connection.Thing.ThingName}"},
  {"Effect":"Allow","Action":["iot:Publish","iot:Receive"],"Resource":"arn:aws:iot:us-east-1:000000000000:topic/things/${iot:Connection.Thing.ThingName}/*"},
  {"Effect":"Allow","Action":"iot:Subscribe","Resource":"arn:aws:iot:us-east-1:000000000000:topicfilter/things/${iot:Connection.Thing.ThingName}/*"}]})";

TEST_F(access_test, thing_policy_variables_need_the_thing_attached) {
  auto [x, arn] = device_cert("dev-1");
  policy("things", thing_policy);
  attach("things", arn);
  ASSERT_EQ(code(call("CreateThing", {{"thingName", "dev-1"}})), "OK");
  registry_access access(*reg_);
  auto c = conn(x.get());
  // Not attached yet: the thing variables do not resolve.
  EXPECT_EQ(access.authorize_connect(c, "dev-1"), mqtt::reason_code::not_authorized);
  ASSERT_EQ(code(call("AttachThingPrincipal", {{"thingName", "dev-1"}, {"principal", arn}})), "OK");
  // The registry changed: the connection's cached decision is stale and re-evaluated.
  EXPECT_EQ(access.authorize_connect(c, "dev-1"), mqtt::reason_code::success);
  EXPECT_EQ(access.authorize_connect(c, "dev-2"), mqtt::reason_code::not_authorized);
  EXPECT_EQ(access.authorize_publish(c, "dev-1", "things/dev-1/up", false), mqtt::reason_code::success);
  EXPECT_EQ(access.authorize_publish(c, "dev-1", "things/dev-2/up", false), mqtt::reason_code::not_authorized);
  EXPECT_EQ(access.authorize_publish(c, "dev-1", "things/dev-1/up", true), mqtt::reason_code::not_authorized)
      << "retained publish needs iot:RetainPublish";
  EXPECT_EQ(access.authorize_subscribe(c, "dev-1", "things/dev-1/#"), mqtt::reason_code::success);
  EXPECT_EQ(access.authorize_subscribe(c, "dev-1", "things/+/cmd"), mqtt::reason_code::not_authorized);
  EXPECT_TRUE(access.authorize_receive(c, "dev-1", "things/dev-1/down"));
}

TEST_F(access_test, group_policies_are_inherited_and_deny_wins) {
  auto [x, arn] = device_cert("dev-g");
  ASSERT_EQ(code(call("CreateThing", {{"thingName", "dev-g"}})), "OK");
  ASSERT_EQ(code(call("AttachThingPrincipal", {{"thingName", "dev-g"}, {"principal", arn}})), "OK");
  ASSERT_EQ(code(call("CreateThingGroup", {{"thingGroupName", "root"}})), "OK");
  ASSERT_EQ(code(call("CreateThingGroup", {{"thingGroupName", "mid"}, {"parentGroupName", "root"}})), "OK");
  ASSERT_EQ(code(call("CreateThingGroup", {{"thingGroupName", "leaf"}, {"parentGroupName", "mid"}})), "OK");
  ASSERT_EQ(code(call("AddThingToThingGroup", {{"thingGroupName", "leaf"}, {"thingName", "dev-g"}})), "OK");
  policy("root-allow", thing_policy);
  attach("root-allow", reg_->arn("thinggroup", "root"));
  registry_access access(*reg_);
  auto c = conn(x.get());
  EXPECT_EQ(access.authorize_connect(c, "dev-g"), mqtt::reason_code::success);
  EXPECT_EQ(access.authorize_publish(c, "dev-g", "things/dev-g/alarm", false), mqtt::reason_code::success);
  // An explicit deny on a middle group wins over the root's allow.
  policy("mid-deny", R"({"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"iot:Publish",
      "Resource":"arn:aws:iot:us-east-1:000000000000:topic/things/*/alarm"}]})");
  attach("mid-deny", reg_->arn("thinggroup", "mid"));
  EXPECT_EQ(access.authorize_publish(c, "dev-g", "things/dev-g/alarm", false), mqtt::reason_code::not_authorized);
  EXPECT_EQ(access.authorize_publish(c, "dev-g", "things/dev-g/temp", false), mqtt::reason_code::success);
  // Another certificate's connection gets nothing from the groups of a thing it is not attached to.
  auto [y, arn_y] = device_cert("dev-h");
  auto other = conn(y.get());
  EXPECT_EQ(access.authorize_connect(other, "dev-g"), mqtt::reason_code::not_authorized);
}

TEST_F(access_test, certificate_subject_variables) {
  auto [x, arn] = device_cert("sensor-42");
  policy("cn", R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect",
      "Resource":"arn:aws:iot:us-east-1:000000000000:client/${iot:Certificate.Subject.CommonName}"}]})");
  attach("cn", arn);
  registry_access access(*reg_);
  auto c = conn(x.get());
  EXPECT_EQ(access.authorize_connect(c, "sensor-42"), mqtt::reason_code::success);
  EXPECT_EQ(access.authorize_connect(c, "sensor-43"), mqtt::reason_code::not_authorized);
}

}  // namespace
}  // namespace fleetcore::registry

namespace fleetcore::registry {
namespace {

TEST(relation, both_sides_are_indexed_and_kept_consistent) {
  relation r;
  r.insert("g1", "t1");
  r.insert("g1", "t2");
  r.insert("g2", "t1");
  EXPECT_EQ(r.rights_of("g1"), (relation::set{"t1", "t2"}));
  EXPECT_EQ(r.lefts_of("t1"), (relation::set{"g1", "g2"}));
  EXPECT_TRUE(r.contains("g2", "t1"));
  r.erase("g1", "t1");
  EXPECT_FALSE(r.contains("g1", "t1"));
  EXPECT_EQ(r.lefts_of("t1"), (relation::set{"g2"}));
  r.erase("g2", "t1");
  EXPECT_TRUE(r.lefts_of("t1").empty());
  EXPECT_TRUE(r.rights_of("g2").empty());
  r.erase("nobody", "nothing");  // erasing what is not there changes nothing
  EXPECT_EQ(r.rights_of("g1"), (relation::set{"t2"}));
}

}  // namespace
}  // namespace fleetcore::registry
