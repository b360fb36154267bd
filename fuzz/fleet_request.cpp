// Fuzzes the CBOR ⇄ JSON conversion of the fleet provisioning API's CBOR topics: nothing may crash,
// recurse or allocate without bound, and what decodes encodes back to CBOR that decodes the same.
#include "provisioning/cbor_json.hpp"

#include <cstdlib>

using namespace fleetcore::provisioning;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto v = cbor_to_json(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!v) return 0;
  auto again = cbor_to_json(json_to_cbor(*v));
  if (!again || *again != *v) std::abort();
  return 0;
}
