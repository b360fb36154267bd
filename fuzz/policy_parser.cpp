// Fuzzes the AWS IoT policy parser and evaluator: any document must parse or be refused with a
// message, and evaluating a parsed one must terminate without crashing.
#include "auth/policy.hpp"

#include <cstdlib>

using namespace fleetcore::auth;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  std::string error;
  auto doc = policy_document::parse(text, error);
  if (!doc) {
    if (error.empty()) std::abort();
    return 0;
  }
  variable_resolver vars = [](std::string_view name) -> std::optional<std::string> {
    if (name == "iot:ClientId") return "dev-*?\\1";
    if (name == "iot:Connection.Thing.IsAttached") return "true";
    return std::nullopt;
  };
  const policy_document* ps[] = {&*doc};
  for (const char* action : {"iot:Connect", "iot:Publish", "iot:Subscribe"})
    (void)evaluate(ps, action, "arn:aws:iot:us-east-1:123456789012:topic/a/b/c", vars);
  return 0;
}
