// Per-operation dispatch: a signed request reaches the handler of the operation its signing service,
// method and path name, and nothing else; an operation no module owns answers AWS's error.
#include "api/api_server.hpp"
#include "auth/sigv4.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <random>

namespace fleetcore::api {
namespace {

namespace json = boost::json;

class dispatch : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("fc_api_dispatch_" + std::to_string(std::random_device{}()));
    std::filesystem::create_directories(dir_);
    keys_.emplace(dir_);
    key_ = keys_->create();
    server_.emplace(std::vector<transport::bind_address>{{boost::asio::ip::make_address("127.0.0.1")}}, 0, nullptr,
                    *keys_, clock_);
    server_->require_region("us-east-1");
  }
  void TearDown() override {
    server_.reset();
    std::filesystem::remove_all(dir_);
  }

  /// `method target` signed as a client of `service` signs it (the clock's time, region us-east-1).
  api_server::response send(std::string_view service, std::string_view method, std::string_view target,
                            std::string_view body = {}) {
    const std::string date = "20231114T221320Z";  // manual_clock's wall time
    std::vector<std::pair<std::string_view, std::string_view>> headers{{"host", "localhost"}, {"x-amz-date", date}};
    auto authorization = auth::authorization_header({method, target, headers, body}, key_.id, key_.secret,
                                                    "us-east-1", service);
    headers.emplace_back("authorization", authorization);
    return server_->handle(method, target, headers, body);
  }

  std::filesystem::path dir_;
  common::manual_clock clock_;
  std::optional<admin_keys> keys_;
  access_key key_;
  std::optional<api_server> server_;
};

common::aws_operation echo(std::string who) {
  return [who](std::string_view op, const json::object& input) {
    return common::aws_response::ok(json::serialize(json::object{{"who", who}, {"op", op}, {"input", input}}));
  };
}

TEST_F(dispatch, the_signing_service_picks_the_operation_of_a_shared_path) {
  server_->serve({{"ListJobExecutionsForThing", echo("jobs")}});
  auto control = send("execute-api", "GET", "/things/dev-1/jobs?maxResults=3");
  ASSERT_EQ(control.status, 200u) << control.body;
  auto out = json::parse(control.body).as_object();
  EXPECT_EQ(out.at("op"), "ListJobExecutionsForThing");
  EXPECT_EQ(out.at("input").at("thingName"), "dev-1");
  EXPECT_EQ(out.at("input").at("maxResults"), 3);
  // The same method and path signed for the jobs data plane is GetPendingJobExecutions, which no
  // module owns: AWS's error, not the control plane's handler.
  auto device = send("iot-jobs-data", "GET", "/things/dev-1/jobs");
  EXPECT_EQ(device.status, 404u);
  EXPECT_EQ(device.error_type, "UnknownOperationException");
  // Signed for an API that has no such path: the scope names the wrong service.
  auto data = send("iotdata", "GET", "/things/dev-1/jobs");
  EXPECT_EQ(data.status, 403u);
  EXPECT_EQ(data.error_type, "InvalidSignatureException");
}

// iot and iot-jobs-data both have a DescribeJobExecution on GET /things/{t}/jobs/{jobId}, with other
// shapes: a handler registered under the model-qualified name gets that model's requests only.
TEST_F(dispatch, a_model_qualified_handler_takes_its_models_operation_of_a_shared_name) {
  server_->serve({{"DescribeJobExecution", echo("control")}, {"iot-jobs-data:DescribeJobExecution", echo("device")}});
  auto control = json::parse(send("execute-api", "GET", "/things/t/jobs/j1").body).as_object();
  EXPECT_EQ(control.at("who"), "control");
  EXPECT_EQ(control.at("op"), "DescribeJobExecution");
  auto device = json::parse(send("iot-jobs-data", "GET", "/things/t/jobs/%24next?includeJobDocument=false").body).as_object();
  EXPECT_EQ(device.at("who"), "device");
  EXPECT_EQ(device.at("op"), "iot-jobs-data:DescribeJobExecution");
  EXPECT_EQ(device.at("input").at("jobId"), "$next");
  EXPECT_EQ(device.at("input").at("includeJobDocument"), false);
}

// Without the qualified handler, the other model's request is no operation at all: it never reaches
// iot's handler of the same name.
TEST_F(dispatch, a_plain_handler_never_takes_another_models_operation_of_its_name) {
  server_->serve({{"DescribeJobExecution", echo("control")}});
  EXPECT_EQ(send("execute-api", "GET", "/things/t/jobs/j1").status, 200u);
  auto device = send("iot-jobs-data", "GET", "/things/t/jobs/j1");
  EXPECT_EQ(device.status, 404u);
  EXPECT_EQ(device.error_type, "UnknownOperationException");
}

TEST_F(dispatch, unowned_and_unknown_operations_never_fall_through) {
  // Only GetThingShadow is owned: the other shadow routes, on the same path, answer
  // UnknownOperationException instead of reaching it (the old if-chain fell through to delete).
  server_->serve({{"GetThingShadow", echo("shadow")}});
  auto get = send("iotdata", "GET", "/things/t/shadow");
  ASSERT_EQ(get.status, 200u);
  EXPECT_EQ(json::parse(get.body).at("op"), "GetThingShadow");
  for (auto method : {"DELETE", "POST"}) {
    auto r = send("iotdata", method, "/things/t/shadow", "{}");
    EXPECT_EQ(r.status, 404u) << method;
    EXPECT_EQ(r.error_type, "UnknownOperationException") << method;
    EXPECT_EQ(json::parse(r.body).at("message").as_string().find("not supported") != json::string::npos, true);
  }
  auto nowhere = send("execute-api", "GET", "/no/such/operation");
  EXPECT_EQ(nowhere.status, 404u);
  EXPECT_EQ(nowhere.error_type, "UnknownOperationException");
  auto events = send("execute-api", "GET", "/event-configurations");
  EXPECT_EQ(events.error_type, "UnknownOperationException");
}

TEST_F(dispatch, errors_pass_through_and_success_takes_the_route_status) {
  server_->serve({{"DescribeEventConfigurations",
                   [](std::string_view, const json::object&) {
                     return common::aws_response::from({"ResourceNotFoundException", 404, "none"});
                   }},
                  {"UpdateEventConfigurations", echo("registry")}});
  auto err = send("execute-api", "GET", "/event-configurations");
  EXPECT_EQ(err.status, 404u);
  EXPECT_EQ(err.error_type, "ResourceNotFoundException");
  EXPECT_EQ(json::parse(err.body).at("message"), "none");
  auto ok = send("execute-api", "PATCH", "/event-configurations", R"({"eventConfigurations":{}})");
  EXPECT_EQ(ok.status, 200u);
  EXPECT_TRUE(ok.error_type.empty());
  EXPECT_TRUE(json::parse(ok.body).at("input").as_object().contains("eventConfigurations"));
}

TEST(dispatch_wiring, an_operation_owned_twice_or_not_routed_is_a_bug) {
  operation_table t;
  t.add({{"CreateThing", echo("a")}});
  EXPECT_TRUE(t.owns("CreateThing"));
  EXPECT_FALSE(t.owns("DeleteThing"));
  EXPECT_DEATH(t.add({{"CreateThing", echo("b")}}), "");
  EXPECT_DEATH(t.add({{"NoSuchOperation", echo("c")}}), "");
}

}  // namespace
}  // namespace fleetcore::api
