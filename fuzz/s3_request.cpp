// Fuzzes what the object store reads from a request before trusting it: S3 signature verification
// (header SigV4 with S3's rules, presigned SigV4 and SigV2 query parameters) and the XML bodies
// (CompleteMultipartUpload, CreateBucketConfiguration, VersioningConfiguration). The input is split on newlines into method,
// target, Authorization, one extra header line and the body. Nothing may crash or read out of bounds.
#include "auth/sigv4.hpp"
#include "objects/s3_xml.hpp"

#include <cstdlib>

using namespace fleetcore;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  std::string_view parts[5];
  for (int i = 0; i < 4; ++i) {
    std::size_t nl = in.find('\n');
    parts[i] = in.substr(0, nl);
    in = nl == std::string_view::npos ? std::string_view{} : in.substr(nl + 1);
  }
  parts[4] = in;
  auth::http_request_view req{parts[0], parts[1], {{"Host", "localhost:9443"}}, ""};
  if (!parts[2].empty()) req.headers.emplace_back("Authorization", parts[2]);
  req.headers.emplace_back("X-Amz-Date", "20150830T123600Z");
  std::size_t colon = parts[3].find(':');
  if (colon != std::string_view::npos) req.headers.emplace_back(parts[3].substr(0, colon), parts[3].substr(colon + 1));
  auth::secret_lookup secrets = [](std::string_view id) -> std::optional<std::string> {
    if (id == "AKIDEXAMPLE") return "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    return std::nullopt;
  };
  auto r = auth::verify_s3(req, secrets, 1440938160);
  if (!r.ok() && r.message.empty()) std::abort();  // every refusal says why
  if (auto listed = objects::parse_complete_multipart_upload(parts[4]))
    for (const auto& p : *listed)
      if (p.number < 1 || p.number > 10000 || p.etag.empty()) std::abort();
  (void)objects::parse_location_constraint(parts[4]);
  if (auto status = objects::parse_versioning_status(parts[4]); status && status->size() > 4096) std::abort();
  return 0;
}
