#pragma once
// Splitting a byte stream into MQTT packets, shared by the load generators.
#include <cstddef>
#include <cstdint>

namespace fleetcore::bench {

/// Calls `on_packet(first byte, body, body length)` for every complete packet at the start of
/// `buf[0, len)`; returns the bytes consumed (an incomplete tail is left).
template <class F>
std::size_t for_each_packet(const std::uint8_t* buf, std::size_t len, F&& on_packet) {
  std::size_t pos = 0;
  while (len - pos >= 2) {
    const std::uint8_t* p = buf + pos;
    std::uint32_t body = 0;
    std::size_t i = 1;
    int shift = 0;
    for (; i < 5 && i < len - pos; ++i) {
      body |= std::uint32_t(p[i] & 0x7F) << shift;
      shift += 7;
      if (!(p[i] & 0x80)) break;
    }
    if (i >= len - pos) break;
    std::size_t total = i + 1 + body;
    if (len - pos < total) break;
    on_packet(p[0], p + i + 1, static_cast<std::size_t>(body));
    pos += total;
  }
  return pos;
}

}  // namespace fleetcore::bench
