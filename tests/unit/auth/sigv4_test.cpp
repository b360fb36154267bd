#include "auth/sigv4.hpp"

#include <gtest/gtest.h>

namespace fleetcore::auth {
namespace {

// AWS's SigV4 test-suite credentials; 2015-08-30T12:36:00Z.
constexpr std::int64_t now = 1440938160;
secret_lookup secrets = [](std::string_view id) -> std::optional<std::string> {
  if (id == "AKIDEXAMPLE") return "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
  return std::nullopt;
};

struct fixture {
  std::string method, target, host, body, auth;
  std::vector<std::pair<std::string, std::string>> extra;
  http_request_view view() const {
    http_request_view v{method, target, {}, body};
    v.headers.emplace_back("Host", host);
    v.headers.emplace_back("X-Amz-Date", "20150830T123600Z");
    v.headers.emplace_back("Authorization", auth);
    for (auto& [k, val] : extra) v.headers.emplace_back(k, val);
    return v;
  }
};

// get-vanilla from AWS's test suite; botocore computes the same signature.
fixture get_vanilla() {
  return {"GET", "/", "example.amazonaws.com", "",
          "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
          "SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
          {}};
}

// Signed by botocore's SigV4Auth (the aws CLI's signer): an encoded path and query.
fixture iot_get() {
  return {"GET", "/things/my%20thing?maxResults=10&nextToken=a%2Fb", "iot.us-east-1.amazonaws.com", "",
          "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iot/aws4_request, "
          "SignedHeaders=host;x-amz-date, Signature=bb5c1ff29ac8f7aad73df4a4e32308bf3b769d6cffe686b125b2ed119a149076",
          {}};
}

// Signed by botocore: a JSON body and a signed content-type.
fixture iot_post() {
  return {"POST", "/policies/p1", "iot.us-east-1.amazonaws.com", R"({"policyDocument":"{}"})",
          "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iot/aws4_request, "
          "SignedHeaders=content-type;host;x-amz-date, "
          "Signature=99cf44b1e96f6fdc7cccf8d1c062046605fba5ec20ce42833474fae926b48da2",
          {{"Content-Type", "application/json"}}};
}

TEST(sigv4, reference_vectors_verify) {
  for (const auto& f : {get_vanilla(), iot_get(), iot_post()}) {
    auto r = verify_sigv4(f.view(), secrets, now);
    EXPECT_TRUE(r.ok()) << f.target << ": " << r.message;
    EXPECT_EQ(r.access_key_id, "AKIDEXAMPLE");
    EXPECT_EQ(r.region, "us-east-1");
  }
  EXPECT_EQ(verify_sigv4(iot_get().view(), secrets, now).service, "iot");
}

TEST(sigv4, canonical_request_of_get_vanilla) {
  auto f = get_vanilla();
  EXPECT_EQ(canonical_request(f.view(), {"host", "x-amz-date"}),
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(sigv4, tampering_is_detected) {
  auto body = iot_post();
  body.body = R"({"policyDocument":"{x}"})";
  EXPECT_EQ(verify_sigv4(body.view(), secrets, now).error, sigv4_error::signature_mismatch);
  auto path = iot_get();
  path.target = "/things/other?maxResults=10&nextToken=a%2Fb";
  EXPECT_EQ(verify_sigv4(path.view(), secrets, now).error, sigv4_error::signature_mismatch);
  auto query = iot_get();
  query.target = "/things/my%20thing?maxResults=11&nextToken=a%2Fb";
  EXPECT_EQ(verify_sigv4(query.view(), secrets, now).error, sigv4_error::signature_mismatch);
  auto header = iot_post();
  header.extra = {{"Content-Type", "text/plain"}};
  EXPECT_EQ(verify_sigv4(header.view(), secrets, now).error, sigv4_error::signature_mismatch);
}

TEST(sigv4, query_parameter_order_does_not_matter) {
  auto f = iot_get();
  f.target = "/things/my%20thing?nextToken=a%2Fb&maxResults=10";
  EXPECT_TRUE(verify_sigv4(f.view(), secrets, now).ok());
}

TEST(sigv4, unknown_key_wrong_secret_and_clock_skew) {
  auto f = get_vanilla();
  f.auth.replace(f.auth.find("AKIDEXAMPLE"), 11, "AKIDUNKNOWN");
  EXPECT_EQ(verify_sigv4(f.view(), secrets, now).error, sigv4_error::unknown_access_key);
  secret_lookup wrong = [](std::string_view) -> std::optional<std::string> { return "not-the-secret"; };
  EXPECT_EQ(verify_sigv4(get_vanilla().view(), wrong, now).error, sigv4_error::signature_mismatch);
  EXPECT_TRUE(verify_sigv4(get_vanilla().view(), secrets, now + 299).ok());
  EXPECT_EQ(verify_sigv4(get_vanilla().view(), secrets, now + 301).error, sigv4_error::expired);
  EXPECT_EQ(verify_sigv4(get_vanilla().view(), secrets, now - 301).error, sigv4_error::expired);
}

TEST(sigv4, malformed_requests) {
  http_request_view none{"GET", "/", {{"Host", "h"}}, ""};
  EXPECT_EQ(verify_sigv4(none, secrets, now).error, sigv4_error::missing_authentication);
  for (std::string auth : {
           "AWS4-HMAC-SHA1 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=00",
           "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date",
           "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/aws4_request, SignedHeaders=host;x-amz-date, Signature=00",
           "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150831/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=00",
           "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=x-amz-date, Signature=00",
           "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=x-amz-date;host, Signature=00",
           "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date;x-missing, Signature=00",
           "AWS4-HMAC-SHA256 garbage",
       }) {
    auto f = get_vanilla();
    f.auth = auth;
    EXPECT_EQ(verify_sigv4(f.view(), secrets, now).error, sigv4_error::malformed) << auth;
  }
  auto bad_date = get_vanilla();
  http_request_view v = bad_date.view();
  v.headers[1].second = "2015-08-30T12:36:00Z";
  EXPECT_EQ(verify_sigv4(v, secrets, now).error, sigv4_error::malformed);
}

}  // namespace
}  // namespace fleetcore::auth
