// Fuzzes MQTT-based file delivery's request decoders (JSON and CBOR; the first byte picks the format
// and the kind) and the block selection that follows: nothing may crash, read out of bounds or
// allocate without bound; a decoded request respects AWS's limits, and the blocks selected for it
// stay inside the file, in increasing order, within 128 KiB of payload.
#include "ota/stream_protocol.hpp"

#include <cstdlib>

using namespace fleetcore::ota;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const auto format = data[0] & 1 ? wire_format::cbor : wire_format::json;
  const bool get = data[0] & 2;
  std::string_view payload(reinterpret_cast<const char*>(data + 1), size - 1);
  stream_rejection why;
  auto r = decode_request(format, get, payload, why);
  if (why.error != stream_error::none) {
    (void)encode_rejection(format, why);
    return 0;
  }
  if (r.client_token && r.client_token->size() > stream_limits::max_client_token) std::abort();
  if (!get) return 0;
  if (r.file < 0 || r.file > 255 || r.block_size < stream_limits::min_block_size ||
      r.block_size > stream_limits::max_block_size || r.offset < 0 || r.offset > stream_limits::max_offset)
    std::abort();
  const std::uint64_t file_size = (std::uint64_t(data[0]) << 14) + payload.size() * 97;
  auto blocks = select_blocks(r, file_size, why);
  std::uint64_t bytes = 0;
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    if (std::uint64_t(blocks[i]) * std::uint64_t(r.block_size) >= file_size) std::abort();
    if (i && blocks[i] <= blocks[i - 1]) std::abort();
    bytes += std::uint64_t(r.block_size);
  }
  if (bytes > std::max<std::uint64_t>(stream_limits::max_bytes_per_request, std::uint64_t(r.block_size))) std::abort();
  return 0;
}
