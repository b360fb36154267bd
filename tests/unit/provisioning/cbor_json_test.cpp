#include "provisioning/cbor_json.hpp"

#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

using namespace fleetcore::provisioning;

namespace {
std::string bytes(std::initializer_list<int> b) {
  std::string s;
  for (int c : b) s += static_cast<char>(c);
  return s;
}
}  // namespace

TEST(cbor_json, round_trips_the_fleet_provisioning_documents) {
  auto v = boost::json::parse(
      R"({"certificateOwnershipToken":"tok","parameters":{"SerialNumber":"9","n":-3,"big":300,"ok":true,"none":null,"f":1.5,"list":[1,"a"]}})");
  auto cbor = json_to_cbor(v);
  auto back = cbor_to_json(cbor);
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, v);
  // The smallest encodings: {"a": 1} is a1 61 61 01.
  EXPECT_EQ(json_to_cbor(boost::json::parse(R"({"a":1})")), bytes({0xa1, 0x61, 'a', 0x01}));
  // An indefinite map written by another encoder reads the same.
  auto indefinite = cbor_to_json(bytes({0xbf, 0x61, 'a', 0x20, 0xff}));  // {_ "a": -1}
  ASSERT_TRUE(indefinite);
  EXPECT_EQ(*indefinite, boost::json::parse(R"({"a":-1})"));
}

TEST(cbor_json, malformed_input_is_refused) {
  EXPECT_FALSE(cbor_to_json(""));
  EXPECT_FALSE(cbor_to_json(bytes({0xa1, 0x61})));                    // cut
  EXPECT_FALSE(cbor_to_json(bytes({0x01, 0x02})));                    // two items
  EXPECT_FALSE(cbor_to_json(bytes({0xa1, 0x01, 0x02})));              // an integer key
  EXPECT_FALSE(cbor_to_json(bytes({0x41, 0x00})));                    // a byte string
  EXPECT_FALSE(cbor_to_json(bytes({0xff})));                          // a stray break
  EXPECT_FALSE(cbor_to_json(bytes({0xbb, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})));  // 2^63 entries
  EXPECT_FALSE(cbor_to_json(std::string(20, '\x81') + bytes({0x00})));  // deeper than 16
}
