// Fuzzes SigV4 verification: the input is split on newlines into method, target, Authorization,
// X-Amz-Date, one extra header line and the body. Nothing may crash or read out of bounds.
#include "auth/sigv4.hpp"

#include <cstdlib>

using namespace fleetcore::auth;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  std::string_view parts[6];
  for (int i = 0; i < 5; ++i) {
    std::size_t nl = in.find('\n');
    parts[i] = in.substr(0, nl);
    in = nl == std::string_view::npos ? std::string_view{} : in.substr(nl + 1);
  }
  parts[5] = in;
  http_request_view req{parts[0], parts[1], {{"Host", "example.amazonaws.com"}}, parts[5]};
  req.headers.emplace_back("Authorization", parts[2]);
  req.headers.emplace_back("X-Amz-Date", parts[3]);
  std::size_t colon = parts[4].find(':');
  if (colon != std::string_view::npos) req.headers.emplace_back(parts[4].substr(0, colon), parts[4].substr(colon + 1));
  secret_lookup secrets = [](std::string_view id) -> std::optional<std::string> {
    if (id == "AKIDEXAMPLE") return "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    return std::nullopt;
  };
  auto r = verify_sigv4(req, secrets, 1440938160);
  if (!r.ok() && r.message.empty()) std::abort();  // every refusal says why
  (void)canonical_request(req, {"host", "x-amz-date"});
  return 0;
}
