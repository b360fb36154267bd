#include "common/log.hpp"

#include <gtest/gtest.h>

#include <string>

using fleetcore::common::escape_untrusted;
using fleetcore::common::untrusted;

namespace {

// Nothing an outside field carries can end the log line or read as another key=value field.
TEST(untrusted, newline_and_separators_cannot_forge_a_line_or_field) {
  EXPECT_EQ(escape_untrusted("a\nevent.forged key=1"), "a\\x0aevent.forged\\x20key\\x3d1");
  EXPECT_EQ(escape_untrusted("x\r\ty\"z"), "x\\x0d\\x09y\\x22z");
  EXPECT_EQ(fmt::format("client={} rc=0", untrusted("dev rc=0\n")), "client=dev\\x20rc\\x3d0\\x0a rc=0");
}

// Messages keep their spaces inside quotes, and cannot close the quotes or the line.
TEST(untrusted, quoted_keeps_spaces_and_equals_but_not_quotes_or_newlines) {
  EXPECT_EQ(fmt::format("reason={:q} rc=0", untrusted("bad region 'x' a=b")), "reason=\"bad region 'x' a=b\" rc=0");
  EXPECT_EQ(fmt::format("reason={:q}", untrusted("x\" admin=1\nevent.forged")),
            "reason=\"x\\x22 admin=1\\x0aevent.forged\"");
}

TEST(untrusted, plain_ids_and_topics_are_unchanged) {
  EXPECT_EQ(escape_untrusted("dev-1"), "dev-1");
  EXPECT_EQ(escape_untrusted("$aws/things/dev-1/shadow/update"), "$aws/things/dev-1/shadow/update");
  EXPECT_EQ(escape_untrusted("sensors/+/#"), "sensors/+/#");
  EXPECT_EQ(escape_untrusted(""), "");
}

// The escape character itself is escaped, so `\x0a` in a name stays distinguishable from a newline.
TEST(untrusted, backslash_is_escaped) {
  EXPECT_EQ(escape_untrusted("a\\x0ab"), "a\\\\x0ab");
}

TEST(untrusted, raw_bytes_become_hex_and_valid_utf8_passes) {
  EXPECT_EQ(escape_untrusted(std::string("a\0b", 3)), "a\\x00b");
  EXPECT_EQ(escape_untrusted("\x7f\x1b[31m"), "\\x7f\\x1b[31m");
  EXPECT_EQ(escape_untrusted("\xff\xfe"), "\\xff\\xfe");
  EXPECT_EQ(escape_untrusted("caf\xc3\xa9 \xe2\x82\xac"), "caf\xc3\xa9\\x20\xe2\x82\xac");  // café €
  EXPECT_EQ(escape_untrusted("\xc3"), "\\xc3");                                            // truncated
  EXPECT_EQ(escape_untrusted("\xc0\xaf"), "\\xc0\\xaf");                                   // overlong '/'
  EXPECT_EQ(escape_untrusted("\xed\xa0\x80"), "\\xed\\xa0\\x80");                          // surrogate
  EXPECT_EQ(escape_untrusted("\xf0\x9f\x98\x80"), "\xf0\x9f\x98\x80");                     // emoji
}

// Code points that viewers render as a line break or that reorder the line.
TEST(untrusted, unicode_line_breaks_and_bidi_overrides_are_escaped) {
  EXPECT_EQ(escape_untrusted("a\xc2\x85" "b"), "a\\xc2\\x85b");          // NEL
  EXPECT_EQ(escape_untrusted("a\xe2\x80\xa8" "b"), "a\\xe2\\x80\\xa8b");  // LINE SEPARATOR
  EXPECT_EQ(escape_untrusted("\xe2\x80\xae"), "\\xe2\\x80\\xae");         // RIGHT-TO-LEFT OVERRIDE
}

TEST(untrusted, every_single_byte_yields_one_printable_token) {
  for (int b = 0; b < 256; ++b) {
    std::string out = escape_untrusted(std::string(1, static_cast<char>(b)));
    for (unsigned char c : out) {
      EXPECT_TRUE(c > 0x20 && c < 0x7F) << "byte " << b;
      EXPECT_NE(c, '=') << "byte " << b;
    }
  }
}

}  // namespace
