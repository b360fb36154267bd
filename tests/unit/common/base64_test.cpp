#include "common/base64.hpp"

#include <gtest/gtest.h>

namespace fleetcore::common {
namespace {

TEST(Base64, RoundTripsEveryLength) {
  std::string bytes;
  for (int i = 0; i < 64; ++i) {
    auto decoded = base64_decode(base64_encode(bytes));
    ASSERT_TRUE(decoded);
    EXPECT_EQ(*decoded, bytes);
    bytes += static_cast<char>(i * 37);
  }
  EXPECT_EQ(base64_encode("{\"x\":1}"), "eyJ4IjoxfQ==");
}

TEST(Base64, AcceptsWhatDecodeDocumentsAndRefusesTheRest) {
  EXPECT_EQ(base64_decode("eyJ4IjoxfQ"), "{\"x\":1}");         // unpadded
  EXPECT_EQ(base64_decode("eyJ4\r\nIjoxfQ=="), "{\"x\":1}");   // MIME line breaks
  EXPECT_EQ(base64_decode("-_8="), base64_decode("+/8="));      // URL-safe alphabet
  EXPECT_FALSE(base64_decode("eyJ4IjoxfQ==eQ"));                // data after padding
  EXPECT_FALSE(base64_decode("ey J4"));                         // not base64
  EXPECT_FALSE(base64_decode("e"));                             // a truncated group
}

}  // namespace
}  // namespace fleetcore::common
