#pragma once
// Decoding and encoding of whole MQTT packets. No I/O: the caller hands in the bytes it has and gets a
// packet, a request for more bytes, or the reason code to close the connection with.
#include "mqtt/packets.hpp"

#include <cstdint>
#include <span>
#include <vector>

namespace fleetcore::mqtt {

struct decode_result {
  enum class status : std::uint8_t { need_more, ok, error };
  status state = status::need_more;
  /// Bytes consumed when `ok` (the whole packet).
  std::size_t consumed = 0;
  /// Why decoding failed when `error`.
  reason_code error = reason_code::success;
  packet pkt;
};

/// Decodes one packet from the front of `data`, as the server reads what a client sends: a PUBLISH
/// carrying a Subscription Identifier is a protocol error [MQTT-3.3.4-6]. Variable Byte Integers must
/// be minimal [MQTT-1.5.5-1] (malformed otherwise).
/// - `version` is the connection's protocol version; a CONNECT carries its own and is decoded
///   whatever `version` says. An unknown protocol level yields `unsupported_protocol_version`.
/// - A packet whose total size exceeds `max_packet_size` yields `packet_too_large` as soon as its
///   fixed header is complete, before its body arrives.
decode_result decode(std::span<const std::uint8_t> data, protocol_version version,
                     std::uint32_t max_packet_size);

/// Appends the encoding of `p` for `version` to `out`.
void encode(const packet& p, protocol_version version, std::vector<std::uint8_t>& out);

/// Convenience for tests and tools.
inline std::vector<std::uint8_t> encode(const packet& p, protocol_version version) {
  std::vector<std::uint8_t> out;
  encode(p, version, out);
  return out;
}

/// Size of the fixed header for a packet whose remaining length is `remaining`.
inline std::size_t fixed_header_size(std::uint32_t remaining) {
  return 1 + (remaining < 128 ? 1 : remaining < 16384 ? 2 : remaining < 2097152 ? 3 : 4);
}

}  // namespace fleetcore::mqtt
