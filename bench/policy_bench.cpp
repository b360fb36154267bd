// Policy decisions per second for a certificate connection (registry_access): answered from the
// connection's cache, and evaluated (cache miss: the connection's policies, thing and groups are
// looked up and the documents evaluated). Run: build/bench/policy_bench (see docs/benchmarks.md).
#include "registry/registry.hpp"
#include "storage/discard_store.hpp"
#include "registry/registry_access.hpp"

#include <benchmark/benchmark.h>

using namespace fleetcore;
namespace json = boost::json;

namespace {


struct fixture {
  storage::discard_store store;
  common::system_clock_source clock;
  auth::pkey_ptr key = auth::generate_ec_key();
  auth::x509_ptr ca = auth::make_certificate({"bench CA", {}, {}, 30, true, false}, key.get(), nullptr, nullptr);
  registry::registry reg{{}, store, clock, auth::x509_ptr(X509_dup(ca.get())), auth::pkey_ptr(EVP_PKEY_dup(key.get()))};
  auth::connection_info conn;

  fixture() {
    const char* doc = R"({"Version":"2012-10-17","Statement":[
      {"Effect":"Allow","Action":"iot:Connect","Resource":"arn:aws:iot:us-east-1:000000000000:client/${iot:Connection.Thing.ThingName}"},
      {"Effect":"Allow","Action":["iot:Publish","iot:Receive"],"Resource":"arn:aws:iot:us-east-1:000000000000:topic/things/${iot:Connection.Thing.ThingName}/*"},
      {"Effect":"Deny","Action":"iot:Publish","Resource":"arn:aws:iot:us-east-1:000000000000:topic/things/*/forbidden"}]})";
    auto cert = reg.call("CreateKeysAndCertificate", {{"setAsActive", true}});
    std::string arn(cert.body["certificateArn"].as_string());
    reg.call("CreatePolicy", {{"policyName", "p"}, {"policyDocument", doc}});
    reg.call("CreateThing", {{"thingName", "dev-1"}});
    reg.call("AttachThingPrincipal", {{"thingName", "dev-1"}, {"principal", arn}});
    reg.call("CreateThingGroup", {{"thingGroupName", "g"}});
    reg.call("AddThingToThingGroup", {{"thingGroupName", "g"}, {"thingName", "dev-1"}});
    reg.call("AttachPolicy", {{"policyName", "p"}, {"target", reg.arn("thinggroup", "g")}});
    conn.listener = "mqtts";
    conn.certificate_id = std::string(cert.body["certificateId"].as_string());
  }
};

fixture& fx() {
  static fixture f;
  return f;
}

void cached_publish_check(benchmark::State& state) {
  registry::registry_access access(fx().reg);
  auto& c = fx().conn;
  for (auto _ : state) benchmark::DoNotOptimize(access.authorize_publish(c, "dev-1", "things/dev-1/telemetry", false));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(cached_publish_check);

void evaluated_publish_check(benchmark::State& state) {
  registry::registry_access access(fx().reg);
  auto& c = fx().conn;
  for (auto _ : state)
    benchmark::DoNotOptimize(access.decide(c, "dev-1", "iot:Publish",
                                             "arn:aws:iot:us-east-1:000000000000:topic/things/dev-1/telemetry"));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(evaluated_publish_check);

}  // namespace

BENCHMARK_MAIN();
