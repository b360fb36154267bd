// Frames from other nodes, as they come off NATS (cluster/wire.hpp): decoding never crashes, and what
// decodes encodes back to the same frame.
#include "cluster/wire.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

using namespace fleetcore::cluster::wire;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view frame(reinterpret_cast<const char*>(data), size);
  auto same = [&](const auto& decoded) {
    if (decoded && encode(*decoded) != frame) std::abort();
  };
  same(decode_hello(frame));
  same(decode_bye(frame));
  same(decode_inherited(frame));
  same(decode_interest(frame));
  same(decode_claim(frame));
  same(decode_documents(frame));
  same(decode_message(frame));
  same(decode_ack(frame));
  return 0;
}
