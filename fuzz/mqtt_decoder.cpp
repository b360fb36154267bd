// Fuzzes the MQTT packet decoder for both protocol versions. Whatever decodes must re-encode to bytes
// that decode to the same packet (the codec agrees with itself), and nothing may crash or leak.
#include "mqtt/codec.hpp"

#include <cstdlib>

using namespace fleetcore::mqtt;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  for (auto version : {protocol_version::v311, protocol_version::v5}) {
    std::span<const std::uint8_t> in(data, size);
    while (!in.empty()) {
      auto r = decode(in, version, 1 << 20);
      if (r.state != decode_result::status::ok) break;
      auto v = std::holds_alternative<connect_packet>(r.pkt) ? std::get<connect_packet>(r.pkt).version : version;
      auto again = encode(r.pkt, v);
      auto r2 = decode(again, v, 1 << 20);
      if (r2.state != decode_result::status::ok || !(r2.pkt == r.pkt)) std::abort();
      in = in.subspan(r.consumed);
    }
  }
  return 0;
}
