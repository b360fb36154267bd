// The registry's operations against a real SQLite store (and one that fails on demand), on a manual
// clock: AWS rules, atomicity, certificate checks over time, and policy decisions for connections
// including group-inherited policies.
#include "registry/detail.hpp"
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
  void load_session(std::string id, session_read done) override { inner_.load_session(std::move(id), std::move(done)); }
  void load_node_sessions(std::string node, sessions_read done) override { inner_.load_node_sessions(std::move(node), std::move(done)); }
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
  reg_->observe([&](const std::vector<change>& changes) {
    for (const auto& c : changes)
      if (const auto* d = std::get_if<certificate_disabled>(&c)) dropped.push_back(d->id);
  });
  ASSERT_EQ(code(call("UpdateCertificate", {{"certificateId", id}, {"newStatus", "INACTIVE"}})), "OK");
  EXPECT_EQ(reg_->check_client_certificate(y.get()), cert_check::inactive);
  EXPECT_EQ(dropped, std::vector<std::string>{id});

  auto key = auth::generate_ec_key();
  auto unregistered = auth::make_certificate({"ghost", {}, {}, 30, false, false}, key.get(), ca_.get(), ca_key_.get());
  EXPECT_EQ(reg_->check_client_certificate(unregistered.get()), cert_check::unknown);
}

TEST_F(registry_test, provisioning_a_pem_certificate_checks_its_validity_as_registration_does) {
  auto key = auth::generate_ec_key();
  auto x = auth::make_certificate({"dev-pem", {}, {}, 1, false, false}, key.get(), ca_.get(), ca_key_.get());
  json::object plan{{"certificate", json::object{{"pem", auth::to_pem(x.get())}, {"status", "ACTIVE"}}},
                    {"policies", json::array{}}};
  clock_.advance(std::chrono::hours(26));  // expired
  auto refused = call("fleetcore:Provision", plan);
  EXPECT_EQ(code(refused), "CertificateValidationException");
  EXPECT_EQ(code(call("DescribeCertificate", {{"certificateId", auth::certificate_id(x.get())}})), "ResourceNotFoundException");
  clock_.advance(-std::chrono::hours(25));
  EXPECT_EQ(code(call("fleetcore:Provision", plan)), "OK");
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

/// Every observer call: the changes of one committed transaction.
class events_test : public registry_test {
 protected:
  events_test() {
    observe();
    reg_->publish_event = [this](std::string topic, std::string payload) {
      published_.emplace_back(std::move(topic), json::parse(payload).as_object());
    };
  }
  void observe() {
    reg_->observe([this](const std::vector<change>& changes) { batches_.push_back(changes); });
  }
  std::vector<std::vector<change>> batches_;
  std::vector<std::pair<std::string, json::object>> published_;
};

TEST_F(events_test, each_commit_hands_its_typed_changes_to_every_observer) {
  int second = 0;
  reg_->observe([&](const std::vector<change>&) { ++second; });
  ASSERT_EQ(code(call("CreateThingType", {{"thingTypeName", "sensor"}})), "OK");
  ASSERT_EQ(code(call("CreateThing", {{"thingName", "t1"}, {"thingTypeName", "sensor"}})), "OK");
  ASSERT_EQ(batches_.size(), 2u);
  EXPECT_EQ(second, 2);
  ASSERT_EQ(batches_[1].size(), 2u);
  const auto& created = std::get<thing_changed>(batches_[1][0]);
  EXPECT_EQ(created.op, change_op::created);
  EXPECT_EQ(created.value.name, "t1");
  const auto& assoc = std::get<thing_type_association>(batches_[1][1]);
  EXPECT_EQ(assoc.op, link_op::added);
  EXPECT_EQ(assoc.thing_type, "sensor");
  EXPECT_EQ(assoc.thing_id, created.value.id);

  ASSERT_EQ(code(call("CreateThingGroup", {{"thingGroupName", "root"}})), "OK");
  ASSERT_EQ(code(call("CreateThingGroup", {{"thingGroupName", "leaf"}, {"parentGroupName", "root"}})), "OK");
  ASSERT_EQ(batches_.back().size(), 2u);
  const auto& leaf = std::get<thing_group_changed>(batches_.back()[0]);
  ASSERT_EQ(leaf.root_to_parent.size(), 1u);
  EXPECT_EQ(leaf.root_to_parent[0].name, "root");
  const auto& hierarchy = std::get<group_hierarchy>(batches_.back()[1]);
  EXPECT_EQ(hierarchy.op, link_op::added);
  EXPECT_EQ(hierarchy.parent.name, "root");
  EXPECT_EQ(hierarchy.parent.id, leaf.root_to_parent[0].id);
  EXPECT_EQ(hierarchy.child.name, "leaf");

  ASSERT_EQ(code(call("AddThingToThingGroup", {{"thingGroupName", "leaf"}, {"thingName", "t1"}})), "OK");
  const auto added = std::get<group_membership>(batches_.back().at(0));
  EXPECT_EQ(added.op, link_op::added);
  EXPECT_FALSE(added.membership_id.empty());
  // Idempotent calls that change nothing commit nothing and tell no one.
  auto seen = batches_.size();
  ASSERT_EQ(code(call("AddThingToThingGroup", {{"thingGroupName", "leaf"}, {"thingName", "t1"}})), "OK");
  EXPECT_EQ(batches_.size(), seen);

  // Deleting the thing removes its membership (same id), its type association, then the thing.
  ASSERT_EQ(code(call("DeleteThing", {{"thingName", "t1"}})), "OK");
  const auto& gone = batches_.back();
  ASSERT_EQ(gone.size(), 3u);
  const auto& removed = std::get<group_membership>(gone[0]);
  EXPECT_EQ(removed.op, link_op::removed);
  EXPECT_EQ(removed.membership_id, added.membership_id);
  EXPECT_EQ(removed.thing_id, created.value.id);
  EXPECT_EQ(std::get<thing_type_association>(gone[1]).op, link_op::removed);
  EXPECT_EQ(std::get<thing_changed>(gone[2]).op, change_op::deleted);
}

TEST_F(events_test, certificates_leaving_active_are_named_once_committed) {
  auto [x, arn] = device_cert("dev-1");
  std::string id = auth::certificate_id(x.get());
  auto disabled = [this] {
    std::vector<std::string> ids;
    for (const auto& c : batches_.back())
      if (const auto* d = std::get_if<certificate_disabled>(&c)) ids.push_back(d->id);
    return ids;
  };
  ASSERT_EQ(code(call("UpdateCertificate", {{"certificateId", id}, {"newStatus", "INACTIVE"}})), "OK");
  EXPECT_EQ(disabled(), std::vector<std::string>{id});
  EXPECT_EQ(std::get<certificate_changed>(batches_.back()[0]).status, cert_status::inactive);
  ASSERT_EQ(code(call("UpdateCertificate", {{"certificateId", id}, {"newStatus", "ACTIVE"}})), "OK");
  EXPECT_TRUE(disabled().empty());
}

TEST_F(events_test, a_failed_commit_tells_no_observer_and_publishes_nothing) {
  ASSERT_EQ(code(call("UpdateEventConfigurations", {{"eventConfigurations", {{"THING", {{"Enabled", true}}}}}})), "OK");
  ASSERT_EQ(code(call("CreateThing", {{"thingName", "kept"}})), "OK");
  auto seen = batches_.size();
  ASSERT_EQ(published_.size(), 1u);
  // Every kind of write fails while the store fails; loop until each has been refused once.
  flaky_->fail = true;
  for (auto [op, in] : std::vector<std::pair<std::string, json::object>>{
           {"CreateThing", {{"thingName", "lost"}}},
           {"UpdateThing", {{"thingName", "kept"}, {"attributePayload", {{"attributes", {{"a", "1"}}}}}}},
           {"DeleteThing", {{"thingName", "kept"}}},
           {"CreateThingGroup", {{"thingGroupName", "g"}}},
           {"CreateKeysAndCertificate", {{"setAsActive", true}}},
           {"UpdateEventConfigurations", {{"eventConfigurations", {{"THING", {{"Enabled", false}}}}}}}})
    EXPECT_EQ(code(call(op, in)), "InternalFailureException") << op;
  flaky_->fail = false;
  EXPECT_EQ(batches_.size(), seen);
  EXPECT_EQ(published_.size(), 1u);
  // The configuration did not change either: the next change is still published.
  ASSERT_EQ(code(call("UpdateThing", {{"thingName", "kept"}, {"attributePayload", {{"attributes", {{"a", "1"}}}}}})), "OK");
  ASSERT_EQ(published_.size(), 2u);
  EXPECT_EQ(published_.back().first, "$aws/events/thing/kept/updated");
}

TEST_F(events_test, aws_thing_events_only_once_enabled) {
  ASSERT_EQ(code(call("CreateThing", {{"thingName", "quiet"}})), "OK");
  EXPECT_TRUE(published_.empty());
  auto described = call("DescribeEventConfigurations");
  ASSERT_EQ(code(described), "OK");
  const auto& configs = described.body["eventConfigurations"].as_object();
  EXPECT_EQ(configs.size(), 12u);  // AWS's 11 and fleetcore's TOPIC_RULE
  for (const auto& [type, c] : configs) EXPECT_FALSE(c.as_object().at("Enabled").as_bool()) << type;

  ASSERT_EQ(code(call("UpdateEventConfigurations", {{"eventConfigurations", {{"NOPE", {{"Enabled", true}}}}}})),
            "InvalidRequestException");
  ASSERT_EQ(code(call("UpdateEventConfigurations", {{"eventConfigurations", {{"THING", {{"Enabled", true}}}}}})), "OK");
  clock_.advance(std::chrono::milliseconds(1500));
  ASSERT_EQ(code(call("CreateThing", {{"thingName", "loud"}, {"attributePayload", {{"attributes", {{"k", "v"}}}}}})), "OK");
  ASSERT_EQ(published_.size(), 1u);
  auto& [topic, e] = published_[0];
  EXPECT_EQ(topic, "$aws/events/thing/loud/created");
  EXPECT_EQ(e["eventType"], "THING_EVENT");
  EXPECT_EQ(e["operation"], "CREATED");
  EXPECT_EQ(e["accountId"], "000000000000");
  EXPECT_EQ(e["thingName"], "loud");
  EXPECT_EQ(e["thingId"], call("DescribeThing", {{"thingName", "loud"}}).body["thingId"]);
  EXPECT_EQ(e["versionNumber"], 1);
  EXPECT_TRUE(e["thingTypeName"].is_null());
  EXPECT_EQ(e["attributes"], (json::object{{"k", "v"}}));
  EXPECT_EQ(e["timestamp"].as_int64(), clock_.wall_ms());
  EXPECT_FALSE(e["eventId"].as_string().empty());
  // Other types stay off.
  ASSERT_EQ(code(call("CreateThingGroup", {{"thingGroupName", "g"}})), "OK");
  EXPECT_EQ(published_.size(), 1u);
  // The configuration is a document: it survives a restart.
  open();
  auto again = call("DescribeEventConfigurations").body;
  EXPECT_TRUE(again["eventConfigurations"].as_object()["THING"].as_object()["Enabled"].as_bool());
  EXPECT_FALSE(again["eventConfigurations"].as_object()["THING_GROUP"].as_object()["Enabled"].as_bool());
}

TEST_F(events_test, event_configuration_operations_are_listed) {
  auto names = registry::operations();
  EXPECT_TRUE(std::binary_search(names.begin(), names.end(), "UpdateEventConfigurations"));
  EXPECT_TRUE(std::binary_search(names.begin(), names.end(), "DescribeEventConfigurations"));
  EXPECT_TRUE(std::binary_search(names.begin(), names.end(), "CreateThing"));
}

/// Everything the state holds, written out, to compare two states.
std::string dump(const state& st) {
  std::string out;
  for (const auto& [k, v] : st.things) out += to_doc(v) + "\n";
  for (const auto& [k, v] : st.thing_types) out += to_doc(v) + "\n";
  for (const auto& [k, v] : st.thing_groups) out += to_doc(v) + "\n";
  for (const auto& [k, v] : st.certificates)
    out += to_doc(v) + " facts=" + v.facts.serial + std::to_string(v.facts.not_after) + "\n";
  for (const auto& [k, v] : st.ca_certificates) out += to_doc(v) + (v.x509 ? " x509" : " none") + "\n";
  for (const auto& [k, v] : st.policies) {
    out += to_doc(v);
    for (const auto& [id, version] : v.versions) out += version.parsed ? " parsed" : " unparsed";
    out += "\n";
  }
  for (const auto* rel : {&st.thing_principals, &st.policy_targets, &st.group_members})
    for (const auto& [thing, t] : st.things) {
      for (const auto& r : rel->rights_of(thing)) out += thing + "->" + r + "\n";
      for (const auto& l : rel->lefts_of(thing)) out += l + "->" + thing + "\n";
    }
  for (const auto& [p, v] : st.policies)
    for (const auto& t : st.policy_targets.rights_of(p)) out += p + "=>" + t + "\n";
  for (const auto& [k, v] : st.membership_ids) out += k + "#" + v + "\n";
  out += st.registration_code + "\n" + to_doc(st.events);
  return out;
}

TEST_F(events_test, load_and_commit_give_the_same_state) {
  auto [x, arn] = device_cert("dev-1");
  ASSERT_EQ(code(call("CreateThingType", {{"thingTypeName", "tt"}})), "OK");
  ASSERT_EQ(code(call("CreateThing", {{"thingName", "dev-1"}, {"thingTypeName", "tt"}})), "OK");
  ASSERT_EQ(code(call("UpdateThing", {{"thingName", "dev-1"}, {"attributePayload", {{"attributes", {{"a", "1"}}}}}})), "OK");
  ASSERT_EQ(code(call("AttachThingPrincipal", {{"thingName", "dev-1"}, {"principal", arn}})), "OK");
  ASSERT_EQ(code(call("CreateThingGroup", {{"thingGroupName", "root"}})), "OK");
  ASSERT_EQ(code(call("CreateThingGroup", {{"thingGroupName", "leaf"}, {"parentGroupName", "root"}})), "OK");
  ASSERT_EQ(code(call("AddThingToThingGroup", {{"thingGroupName", "leaf"}, {"thingName", "dev-1"}})), "OK");
  std::string doc = R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*"}]})";
  ASSERT_EQ(code(call("CreatePolicy", {{"policyName", "p"}, {"policyDocument", doc}})), "OK");
  ASSERT_EQ(code(call("CreatePolicyVersion", {{"policyName", "p"}, {"policyDocument", doc}, {"setAsDefault", true}})), "OK");
  ASSERT_EQ(code(call("AttachPolicy", {{"policyName", "p"}, {"target", arn}})), "OK");
  ASSERT_EQ(code(call("AttachPolicy", {{"policyName", "p"}, {"target", reg_->arn("thinggroup", "root")}})), "OK");
  ASSERT_EQ(code(call("GetRegistrationCode")), "OK");
  ASSERT_EQ(code(call("UpdateEventConfigurations", {{"eventConfigurations", {{"THING", {{"Enabled", true}}}}}})), "OK");
  ASSERT_EQ(code(call("DeprecateThingType", {{"thingTypeName", "tt"}})), "OK");
  auto [y, arn_y] = device_cert("dev-2");
  ASSERT_EQ(code(call("UpdateCertificate", {{"certificateId", auth::certificate_id(y.get())}, {"newStatus", "REVOKED"}})), "OK");
  ASSERT_EQ(code(call("CreateThing", {{"thingName", "gone"}})), "OK");
  ASSERT_EQ(code(call("AddThingToThingGroup", {{"thingGroupName", "root"}, {"thingName", "gone"}})), "OK");
  ASSERT_EQ(code(call("DeleteThing", {{"thingName", "gone"}})), "OK");

  std::string committed = dump(registry::ops::st(*reg_));
  open();
  EXPECT_EQ(dump(registry::ops::st(*reg_)), committed);
  EXPECT_NE(committed.find("parsed"), std::string::npos);
  EXPECT_EQ(committed.find("unparsed"), std::string::npos);
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

namespace fleetcore::registry {
namespace {

TEST(aws_arn, parses_and_formats_iot_resource_arns) {
  auto a = aws_arn::parse("arn:aws:iot:eu-west-1:123456789012:thinggroup/floor-2");
  ASSERT_TRUE(a);
  EXPECT_EQ(*a, (aws_arn{"aws", "eu-west-1", "123456789012", "thinggroup", "floor-2"}));
  EXPECT_EQ(a->format(), "arn:aws:iot:eu-west-1:123456789012:thinggroup/floor-2");
  EXPECT_EQ(aws_arn::name_of("arn:aws:iot:us-east-1:000000000000:cert/abc", "cert"), "abc");
  EXPECT_EQ(aws_arn::name_of("arn:aws:iot:us-east-1:000000000000:thing/t:1", "thing"), "t:1");
  EXPECT_EQ(aws_arn::name_of("arn:aws:iot:us-east-1:000000000000:thing/t", "cert"), std::nullopt);
  for (const char* bad : {"", "thing/t", "arn:aws:s3:::bucket/key", "arn:aws:iot:r:a:thing", "arn:aws:iot:r:a:thing/",
                          "arn:aws:iot:r:a:/t", "xrn:aws:iot:r:a:thing/t", "arn::iot:r:a:thing/t"})
    EXPECT_FALSE(aws_arn::parse(bad)) << bad;
}

}  // namespace
}  // namespace fleetcore::registry
