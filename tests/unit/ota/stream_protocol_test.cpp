#include "ota/stream_protocol.hpp"

#include <gtest/gtest.h>

#include <string>

using namespace fleetcore::ota;

namespace {
std::string bytes(std::initializer_list<int> b) {
  std::string s;
  for (int c : b) s += static_cast<char>(c);
  return s;
}

stream_request decode_ok(wire_format f, bool get, const std::string& payload) {
  stream_rejection why;
  auto r = decode_request(f, get, payload, why);
  EXPECT_EQ(why.error, stream_error::none) << why.message;
  return r;
}

stream_error decode_error(wire_format f, const std::string& payload, bool get = true) {
  stream_rejection why;
  decode_request(f, get, payload, why);
  return why.error;
}
}  // namespace

TEST(stream_protocol, json_get_request_with_the_guides_bitmap) {
  auto r = decode_ok(wire_format::json, true,
                     R"({"c":"1","s":1,"l":256,"f":1,"o":20,"n":32,"b":"0x130080"})");
  EXPECT_EQ(r.client_token, "1");
  EXPECT_EQ(r.version, 1);
  EXPECT_EQ(r.file, 1);
  EXPECT_EQ(r.block_size, 256);
  EXPECT_EQ(r.offset, 20);
  EXPECT_EQ(r.count, 32);
  EXPECT_EQ(r.bitmap, bytes({0x13, 0x00, 0x80}));
  // The Guide's example: blocks 20, 21, 24 and 43.
  stream_rejection why;
  EXPECT_EQ(select_blocks(r, 100 * 256, why), (std::vector<std::uint32_t>{20, 21, 24, 43}));
}

TEST(stream_protocol, cbor_request_as_the_ota_agent_encodes_it) {
  // {"c":"rdy","f":0,"l":4096,"o":0,"b":h'03',"n":1} as ota_cbor.c writes it (tinycbor, definite map).
  const std::string payload = bytes({0xa6, 0x61, 'c', 0x63, 'r', 'd', 'y', 0x61, 'f', 0x00, 0x61, 'l', 0x19, 0x10, 0x00,
                                     0x61, 'o', 0x00, 0x61, 'b', 0x41, 0x03, 0x61, 'n', 0x01});
  auto r = decode_ok(wire_format::cbor, true, payload);
  EXPECT_EQ(r.client_token, "rdy");
  EXPECT_EQ(r.file, 0);
  EXPECT_EQ(r.block_size, 4096);
  EXPECT_EQ(r.count, 1);
  EXPECT_EQ(r.bitmap, bytes({0x03}));
  stream_rejection why;
  EXPECT_EQ(select_blocks(r, 3 * 4096, why), (std::vector<std::uint32_t>{0}));  // n caps the bitmap
}

TEST(stream_protocol, cbor_indefinite_map_nested_values_and_tags_are_read) {
  // {_ "x": [1, {"y": 2}], "f": 2, "l": tag(1, 512) } — nested values skipped, the tag ignored.
  const std::string payload = bytes({0xbf, 0x61, 'x', 0x82, 0x01, 0xa1, 0x61, 'y', 0x02, 0x61, 'f', 0x02, 0x61, 'l',
                                     0xc1, 0x19, 0x02, 0x00, 0xff});
  auto r = decode_ok(wire_format::cbor, true, payload);
  EXPECT_EQ(r.file, 2);
  EXPECT_EQ(r.block_size, 512);
}

TEST(stream_protocol, malformed_payloads_get_their_codes) {
  EXPECT_EQ(decode_error(wire_format::json, "{"), stream_error::invalid_json);
  EXPECT_EQ(decode_error(wire_format::json, "[1]"), stream_error::invalid_json);
  EXPECT_EQ(decode_error(wire_format::cbor, bytes({0x82, 0x01, 0x02})), stream_error::invalid_cbor);  // an array
  EXPECT_EQ(decode_error(wire_format::cbor, bytes({0xa1, 0x61, 'f'})), stream_error::invalid_cbor);   // cut
  EXPECT_EQ(decode_error(wire_format::cbor, bytes({0xa0, 0x00})), stream_error::invalid_cbor);        // trailing
  EXPECT_EQ(decode_error(wire_format::cbor, bytes({0x01})), stream_error::invalid_cbor);              // a scalar
  EXPECT_EQ(decode_error(wire_format::cbor, ""), stream_error::invalid_cbor);
  // Nesting beyond 16 levels inside a value.
  std::string deep = bytes({0xa1, 0x61, 'z'}) + std::string(40, '\x81') + bytes({0x00});
  EXPECT_EQ(decode_error(wire_format::cbor, deep), stream_error::invalid_cbor);
  // A map claiming more entries than any payload holds.
  EXPECT_EQ(decode_error(wire_format::cbor, bytes({0xbb, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})),
            stream_error::invalid_cbor);
}

TEST(stream_protocol, limits_map_to_awss_codes) {
  auto j = wire_format::json;
  EXPECT_EQ(decode_error(j, R"({"l":256})"), stream_error::invalid_request);
  EXPECT_EQ(decode_error(j, R"({"f":256,"l":256})"), stream_error::invalid_request);
  EXPECT_EQ(decode_error(j, R"({"f":"0","l":256})"), stream_error::invalid_request);
  EXPECT_EQ(decode_error(j, R"({"f":0})"), stream_error::invalid_request);
  EXPECT_EQ(decode_error(j, R"({"f":0,"l":255})"), stream_error::block_size_out_of_bounds);
  EXPECT_EQ(decode_error(j, R"({"f":0,"l":131073})"), stream_error::block_size_out_of_bounds);
  EXPECT_EQ(decode_error(j, R"({"f":0,"l":256,"o":-1})"), stream_error::offset_out_of_bounds);
  EXPECT_EQ(decode_error(j, R"({"f":0,"l":256,"o":98305})"), stream_error::offset_out_of_bounds);
  EXPECT_EQ(decode_error(j, R"({"f":0,"l":256,"n":98305})"), stream_error::block_count_limit_exceeded);
  EXPECT_EQ(decode_error(j, R"({"f":0,"l":256,"b":"0xzz"})"), stream_error::invalid_request);
  EXPECT_EQ(decode_error(j, R"({"f":0,"l":256,"n":18446744073709551615})"), stream_error::block_count_limit_exceeded);
  EXPECT_EQ(decode_error(j, "{\"f\":0,\"l\":256,\"b\":\"" + std::string(2 * 12288, 'f') + "\"}"),
            stream_error::block_bitmap_limit_exceeded);
  EXPECT_EQ(decode_error(j, "{\"c\":\"" + std::string(65, 'x') + "\"}", false), stream_error::invalid_request);
  // A DescribeStream may be empty; the client token of a valid request is echoed in its rejection.
  decode_ok(j, false, "");
  stream_rejection why;
  decode_request(j, true, R"({"c":"k","f":0,"l":1})", why);
  EXPECT_EQ(why.client_token, "k");
  EXPECT_EQ(encode_rejection(j, why), R"({"o":"BlockSizeOutOfBounds","m":"the block size (l) must be 256-131072 bytes","c":"k"})");
}

TEST(stream_protocol, blocks_selected_without_bitmap_are_capped_at_128_kib) {
  stream_request r;
  r.block_size = 256;
  stream_rejection why;
  auto all = select_blocks(r, 1'000'000, why);  // default n: 131072 / 256
  ASSERT_EQ(all.size(), 512u);
  EXPECT_EQ(all.front(), 0u);
  EXPECT_EQ(all.back(), 511u);
  r.offset = 3;
  r.count = 2;
  EXPECT_EQ(select_blocks(r, 1000, why), (std::vector<std::uint32_t>{3}));  // the file has 4 blocks
  r.block_size = 131072;
  r.offset = 0;
  r.count = 5;
  EXPECT_EQ(select_blocks(r, 1'000'000, why).size(), 1u);  // 128 KiB per request
  r.offset = 8;
  EXPECT_TRUE(select_blocks(r, 1'000'000, why).empty());
  EXPECT_EQ(why.error, stream_error::resource_not_found);
  // An empty file has no block to send.
  r.offset = 0;
  EXPECT_TRUE(select_blocks(r, 0, why).empty());
  // A bitmap that selects only blocks past the end.
  stream_rejection why2;
  r.block_size = 256;
  r.bitmap = bytes({0x00, 0x80});
  EXPECT_TRUE(select_blocks(r, 1000, why2).empty());
  EXPECT_EQ(why2.error, stream_error::resource_not_found);
}

TEST(stream_protocol, answers_in_json_and_cbor) {
  EXPECT_EQ(encode_description(wire_format::json, "c1", 2, "fw", {{0, 131072}, {1, 51200}}),
            R"({"c":"c1","s":2,"d":"fw","r":[{"f":0,"z":131072},{"f":1,"z":51200}]})");
  EXPECT_EQ(encode_block(wire_format::json, std::nullopt, 0, 2, "abc"), R"({"f":0,"l":3,"i":2,"p":"YWJj"})");
  // CBOR with the smallest integer encodings: {"f":1,"l":3,"i":300,"p":h'616263'}
  EXPECT_EQ(encode_block(wire_format::cbor, std::nullopt, 1, 300, "abc"),
            bytes({0xa4, 0x61, 'f', 0x01, 0x61, 'l', 0x03, 0x61, 'i', 0x19, 0x01, 0x2c, 0x61, 'p', 0x43, 'a', 'b', 'c'}));
  EXPECT_EQ(encode_description(wire_format::cbor, std::nullopt, 1, "", {{0, 5}}),
            bytes({0xa3, 0x61, 's', 0x01, 0x61, 'd', 0x60, 0x61, 'r', 0x81, 0xa2, 0x61, 'f', 0x00, 0x61, 'z', 0x05}));
  stream_rejection why{stream_error::version_mismatch, "m", "t"};
  EXPECT_EQ(encode_rejection(wire_format::cbor, why),
            bytes({0xa3, 0x61, 'o', 0x6f, 'V', 'e', 'r', 's', 'i', 'o', 'n', 'M', 'i', 's', 'm', 'a', 't', 'c', 'h', 0x61,
                   'm', 0x61, 'm', 0x61, 'c', 0x61, 't'}));
  // What the encoder writes, the decoder reads (the block's keys are not request keys, but c is).
  stream_rejection none;
  auto back = decode_request(wire_format::cbor, false, encode_block(wire_format::cbor, "tok", 1, 2, "x"), none);
  EXPECT_EQ(none.error, stream_error::none);
  EXPECT_EQ(back.client_token, "tok");
}
