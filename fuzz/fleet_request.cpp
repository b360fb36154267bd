// Fuzzes what fleet provisioning reads from outside: the CBOR ⇄ JSON conversion of the fleet
// provisioning API's CBOR topics (nothing may crash, recurse or allocate without bound, and what
// decodes encodes back to CBOR that decodes the same), and a pre-provisioning hook's answer (the same
// bytes as the body of a 200 response: a verdict, never a crash; an allowed one has string overrides).
#include "provisioning/cbor_json.hpp"
#include "provisioning/hooks.hpp"

#include <cstdlib>

using namespace fleetcore::provisioning;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  fleetcore::net::http_outcome answer;
  answer.status = 200;
  answer.body = std::string(bytes);
  auto verdict = read_hook_answer(answer);
  if (!verdict.allowed && verdict.reason.empty()) std::abort();
  if (verdict.allowed && !verdict.reason.empty()) std::abort();

  auto v = cbor_to_json(bytes);
  if (!v) return 0;
  auto again = cbor_to_json(json_to_cbor(*v));
  if (!again || *again != *v) std::abort();
  return 0;
}
