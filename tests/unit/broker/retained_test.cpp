#include "broker/retained.hpp"

#include <gtest/gtest.h>

namespace fleetcore::broker {
namespace {

message_ptr msg(std::string topic, std::string payload, std::int64_t expiry = 0) {
  auto m = std::make_shared<message>();
  m->topic = std::move(topic);
  m->payload = std::move(payload);
  m->retain = true;
  m->expiry_at_ms = expiry;
  return m;
}

TEST(retained_store, set_replace_clear) {
  retained_store r;
  EXPECT_EQ(r.set(msg("a/b", "1")), 1);
  EXPECT_EQ(r.set(msg("a/b", "2")), 0);
  EXPECT_EQ(r.match("a/b", 0).at(0)->payload, "2");
  EXPECT_EQ(r.set(msg("a/b", "")), -1);
  EXPECT_EQ(r.set(msg("a/b", "")), 0);
  EXPECT_EQ(r.size(), 0u);
}

TEST(retained_store, wildcard_match_and_expiry) {
  retained_store r;
  r.set(msg("s/1/t", "x"));
  r.set(msg("s/2/t", "y", 1000));
  r.set(msg("s/2/h", "z"));
  r.set(msg("$SYS/x", "sys"));
  EXPECT_EQ(r.match("s/+/t", 0).size(), 2u);
  EXPECT_EQ(r.match("s/+/t", 2000).size(), 1u);  // expired at 1000
  EXPECT_EQ(r.match("#", 0).size(), 3u);         // not $SYS
  EXPECT_EQ(r.match("$SYS/#", 0).size(), 1u);
}

}  // namespace
}  // namespace fleetcore::broker
