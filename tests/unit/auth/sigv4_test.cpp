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

// S3 requests and presigned URLs signed by botocore 1.29 (Debian's boto3; the aws CLI v2 signs alike) at
// 2015-08-30T12:36:00Z with the test-suite key: S3SigV4Auth, S3SigV4QueryAuth, HmacV1QueryAuth.
http_request_view s3_request(std::string_view method, std::string_view target,
                             std::vector<std::pair<std::string_view, std::string_view>> headers) {
  http_request_view v{method, target, {{"Host", "localhost:9443"}}, ""};
  for (auto& h : headers) v.headers.push_back(h);
  return v;
}

TEST(sigv4_s3, header_form_signs_the_path_as_sent_and_the_declared_payload) {
  // A key with a space, '+' and UTF-8: the path is signed as sent (encoded once), not encoded again.
  auto put = s3_request("PUT", "/b1/a/b%20c%2B%C3%BC.txt",
                        {{"Content-MD5", "XUFAKrxLKna5cZ2REBfFkg=="},
                         {"X-Amz-Date", "20150830T123600Z"},
                         {"X-Amz-Content-SHA256", "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"},
                         {"Authorization",
                          "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/s3/aws4_request, "
                          "SignedHeaders=content-md5;host;x-amz-content-sha256;x-amz-date, "
                          "Signature=b2ccd37093be965ba1a1bf644184bb748e06270500f435fe237e8dfde8c7fa0c"}});
  auto r = verify_s3(put, secrets, now);  // the body ("hello") is not read yet
  ASSERT_TRUE(r.ok()) << r.message;
  EXPECT_EQ(r.service, "s3");
  EXPECT_FALSE(r.presigned);
  EXPECT_EQ(r.content_sha256, sha256_hex("hello"));  // the caller checks the body against it
  EXPECT_FALSE(verify_sigv4(put, secrets, now).ok());  // the IoT rules sign another path and payload

  auto unsigned_put = s3_request("PUT", "/b1/a/b%20c%2B%C3%BC.txt",
                                 {{"Content-MD5", "XUFAKrxLKna5cZ2REBfFkg=="},
                                  {"X-Amz-Date", "20150830T123600Z"},
                                  {"X-Amz-Content-SHA256", "UNSIGNED-PAYLOAD"},
                                  {"Authorization",
                                   "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/s3/aws4_request, "
                                   "SignedHeaders=content-md5;host;x-amz-content-sha256;x-amz-date, "
                                   "Signature=b69698286804187f78a3b7ccf866ac2a0ddb0fed62ab796a78bf2723e219f2ca"}});
  r = verify_s3(unsigned_put, secrets, now);
  ASSERT_TRUE(r.ok()) << r.message;
  EXPECT_EQ(r.content_sha256, "");

  auto list = s3_request("GET", "/b1/x?list-type=2&prefix=a%2Fb&encoding-type=url",
                         {{"X-Amz-Date", "20150830T123600Z"},
                          {"X-Amz-Content-SHA256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
                          {"Authorization",
                           "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/s3/aws4_request, "
                           "SignedHeaders=host;x-amz-content-sha256;x-amz-date, "
                           "Signature=2e7eefbf99657f6e7583ebe8135599b0b16b2654904844167e0331c0067d0238"}});
  EXPECT_TRUE(verify_s3(list, secrets, now).ok());
  list.target = "/b1/x?list-type=2&prefix=a%2Fc&encoding-type=url";
  EXPECT_EQ(verify_s3(list, secrets, now).error, sigv4_error::signature_mismatch);

  // What the signature cannot cover: no payload declaration, signed chunks.
  auto undeclared = unsigned_put;
  std::erase_if(undeclared.headers, [](const auto& h) { return h.first == "X-Amz-Content-SHA256"; });
  EXPECT_EQ(verify_s3(undeclared, secrets, now).error, sigv4_error::malformed);
  auto chunked = unsigned_put;
  for (auto& h : chunked.headers)
    if (h.first == "X-Amz-Content-SHA256") h.second = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
  EXPECT_EQ(verify_s3(chunked, secrets, now).error, sigv4_error::unsupported);
  EXPECT_EQ(verify_s3(unsigned_put, secrets, now + 301).error, sigv4_error::expired);
}

TEST(sigv4_s3, presigned_v4_url_until_it_expires) {
  const std::string url =
      "/b1/a/b%20c.txt?versionId=v1&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2F"
      "us-east-1%2Fs3%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-Expires=300&X-Amz-SignedHeaders=host&"
      "X-Amz-Signature=c651f0f6bbc3188a036991abdb447e34c2c74157f353716887290d807ea95b0b";
  auto get = s3_request("GET", url, {});
  auto r = verify_s3(get, secrets, now);
  ASSERT_TRUE(r.ok()) << r.message;
  EXPECT_TRUE(r.presigned);
  EXPECT_EQ(r.access_key_id, "AKIDEXAMPLE");
  EXPECT_TRUE(verify_s3(get, secrets, now + 300).ok());
  EXPECT_EQ(verify_s3(get, secrets, now + 301).error, sigv4_error::expired);
  EXPECT_EQ(verify_s3(get, secrets, now - 301).error, sigv4_error::expired);  // not valid yet
  auto other_version = url;
  other_version.replace(other_version.find("versionId=v1"), 12, "versionId=v2");
  get.target = other_version;
  EXPECT_EQ(verify_s3(get, secrets, now).error, sigv4_error::signature_mismatch);
  auto too_long = url;
  too_long.replace(too_long.find("X-Amz-Expires=300"), 17, "X-Amz-Expires=604801");
  get.target = too_long;
  EXPECT_EQ(verify_s3(get, secrets, now).error, sigv4_error::malformed);
  get.target = "/b1/a/b%20c.txt";
  EXPECT_EQ(verify_s3(get, secrets, now).error, sigv4_error::missing_authentication);
}

TEST(sigv4_s3, presigned_v2_url_until_it_expires) {
  const std::string url =
      "/b1/a/b%20c.txt?response-content-disposition=attachment%3B%20filename%3D%22x%20y.txt%22&"
      "AWSAccessKeyId=AKIDEXAMPLE&Signature=nqk%2FuDz6CAULKQe8EkXTTZHCH30%3D&Expires=1440938460";
  auto get = s3_request("GET", url, {});
  auto r = verify_s3(get, secrets, now);
  ASSERT_TRUE(r.ok()) << r.message;
  EXPECT_TRUE(r.presigned);
  EXPECT_EQ(verify_s3(get, secrets, now + 301).error, sigv4_error::expired);
  get.method = "DELETE";
  EXPECT_EQ(verify_s3(get, secrets, now).error, sigv4_error::signature_mismatch);
  get.method = "GET";
  const std::string other_key =
      url.substr(0, url.find("AWSAccessKeyId=")) + "AWSAccessKeyId=AKIDOTHER" + url.substr(url.find("&Signature="));
  get.target = other_key;
  EXPECT_EQ(verify_s3(get, secrets, now).error, sigv4_error::unknown_access_key);
}

// What fleetcore presigns (job documents' placeholders) verifies as the URLs botocore presigns do.
TEST(sigv4_s3, own_presigned_urls_verify_until_they_expire) {
  const std::string target =
      presign_s3_get("localhost:9443", "/bk1/fw/a%20b.bin", "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                     "us-east-1", now, 600);
  auto get = s3_request("GET", target, {});
  auto r = verify_s3(get, secrets, now + 10);
  ASSERT_TRUE(r.ok()) << r.message << " " << target;
  EXPECT_TRUE(r.presigned);
  EXPECT_EQ(verify_s3(get, secrets, now + 601).error, sigv4_error::expired);
  get.headers = {{"Host", "otherhost:9443"}};
  EXPECT_EQ(verify_s3(get, secrets, now + 10).error, sigv4_error::signature_mismatch);
}

}  // namespace
}  // namespace fleetcore::auth
