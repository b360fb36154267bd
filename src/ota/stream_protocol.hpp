#pragma once
// MQTT-based file delivery's messages (AWS IoT streams), in JSON and in CBOR: the requests devices
// publish on `$aws/things/<thing>/streams/<streamId>/{describe,get}/{json,cbor}` and the answers on
// `.../{description,data,rejected}/{json,cbor}`, with the short keys AWS uses (c, s, f, l, o, n, b;
// d, r, z, i, p; o, m on a rejection). CBOR as the AWS OTA agent (ota-for-aws-iot-embedded-sdk,
// ota_cbor.c) writes and reads it: one map with text keys, unsigned integers, a byte string for the
// bitmap and for the block's payload. Which blocks a GetStream request asks for is decided here too.
//
// Pure functions, no I/O: unit-tested and fuzzed (fuzz/stream_request.cpp).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fleetcore::ota {

enum class wire_format : std::uint8_t { json, cbor };

/// AWS's rejection codes (the `o` of a rejected message).
enum class stream_error : std::uint8_t {
  none,
  invalid_topic,
  invalid_json,
  invalid_cbor,
  invalid_request,
  unauthorized,
  block_size_out_of_bounds,
  offset_out_of_bounds,
  block_count_limit_exceeded,
  block_bitmap_limit_exceeded,
  resource_not_found,
  version_mismatch,
  etag_mismatch,
  internal_error,
};
std::string_view error_code(stream_error e) noexcept;

/// The service's limits (AWS IoT's quotas for MQTT-based file delivery).
struct stream_limits {
  static constexpr std::int64_t min_block_size = 256;
  static constexpr std::int64_t max_block_size = 131072;
  static constexpr std::int64_t max_offset = 98304;
  static constexpr std::int64_t max_block_count = 98304;
  static constexpr std::size_t max_bitmap_bytes = 12287;  // "less than 12,288 bytes"
  static constexpr std::size_t max_client_token = 64;
  /// Payload bytes one GetStream request is answered with at most; the device asks again for the rest.
  static constexpr std::uint64_t max_bytes_per_request = 131072;
};

/// A DescribeStream or GetStream request, decoded and checked (fields the kind does not use are ignored).
struct stream_request {
  std::optional<std::string> client_token;  // c
  std::optional<std::int64_t> version;      // s
  std::int64_t file = -1;                   // f (GetStream: required, 0-255)
  std::int64_t block_size = 0;              // l (GetStream: required, 256-131072)
  std::int64_t offset = 0;                  // o (0-98304)
  std::optional<std::int64_t> count;        // n (1-98304)
  std::optional<std::string> bitmap;        // b, as bytes (JSON carries it as a hex string)
};

/// Why a request was refused: its code, a message for the device, and the client token when it was
/// valid (a malformed one is not echoed).
struct stream_rejection {
  stream_error error = stream_error::none;
  std::string message;
  std::optional<std::string> client_token;
};

/// Decodes a DescribeStream (`get` false; an empty payload is an empty request) or GetStream request.
/// On error `rejection` is set and the request is unusable.
stream_request decode_request(wire_format format, bool get, std::string_view payload, stream_rejection& rejection);

/// The blocks a GetStream request gets, in order, for a file of `file_size` bytes: the bitmap's set
/// bits (relative to the offset), else `count` blocks from the offset (default: 128 KiB worth),
/// capped at `count` and at max_bytes_per_request of payload. Empty with `rejection` set if the
/// offset is past the file or nothing is left to send.
std::vector<std::uint32_t> select_blocks(const stream_request& r, std::uint64_t file_size, stream_rejection& rejection);

struct stream_file_info {
  std::uint32_t id = 0;
  std::uint64_t size = 0;
};

std::string encode_description(wire_format format, const std::optional<std::string>& client_token,
                               std::int64_t version, std::string_view description,
                               const std::vector<stream_file_info>& files);
std::string encode_block(wire_format format, const std::optional<std::string>& client_token, std::uint32_t file,
                         std::uint32_t block, std::string_view payload);
std::string encode_rejection(wire_format format, const stream_rejection& r);

}  // namespace fleetcore::ota
