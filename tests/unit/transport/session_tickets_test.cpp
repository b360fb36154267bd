#include "transport/tls.hpp"

#include <gtest/gtest.h>

namespace fleetcore::transport {
namespace {

using namespace std::chrono_literals;

TEST(SessionTickets, KeysRotateEveryLifetimeAndTheRetiredOneOpensForOneMore) {
  common::manual_clock clock;
  session_tickets tickets(clock, 3600s, [](X509*) { return true; });
  auto first = tickets.sealing_key();
  clock.advance(3599s);
  EXPECT_EQ(tickets.sealing_key().name, first.name);
  bool renew = true;
  ASSERT_TRUE(tickets.opening_key(first.name.data(), renew));
  EXPECT_FALSE(renew);

  clock.advance(1s);  // one lifetime: a new key seals, the first still opens and asks for a new ticket
  auto second = tickets.sealing_key();
  EXPECT_NE(second.name, first.name);
  EXPECT_NE(second.aes, first.aes);
  EXPECT_NE(second.hmac, first.hmac);
  auto opened = tickets.opening_key(first.name.data(), renew);
  ASSERT_TRUE(opened);
  EXPECT_TRUE(renew);
  EXPECT_EQ(opened->aes, first.aes);

  clock.advance(3599s);
  EXPECT_TRUE(tickets.opening_key(first.name.data(), renew));
  clock.advance(1s);  // two lifetimes: the first key is gone
  EXPECT_FALSE(tickets.opening_key(first.name.data(), renew));
  EXPECT_TRUE(tickets.opening_key(second.name.data(), renew));  // retired now, still opening
  EXPECT_TRUE(renew);
}

TEST(SessionTickets, AKeyRetiredLateStillOpensForAWholeLifetime) {
  // Rotation happens when a key is next needed: after a quiet day the current key may have sealed a
  // ticket a moment ago, so it opens for one lifetime from its retirement, not from its creation.
  common::manual_clock clock;
  session_tickets tickets(clock, 3600s, [](X509*) { return true; });
  auto first = tickets.sealing_key();
  clock.advance(24h);
  bool renew = false;
  EXPECT_TRUE(tickets.opening_key(first.name.data(), renew));
  EXPECT_TRUE(renew);
  EXPECT_NE(tickets.sealing_key().name, first.name);
  clock.advance(3599s);
  EXPECT_TRUE(tickets.opening_key(first.name.data(), renew));
}

TEST(SessionTickets, UnknownKeyNamesOpenNothing) {
  common::manual_clock clock;
  session_tickets tickets(clock, 60s, [](X509*) { return true; });
  std::array<unsigned char, session_tickets::k_name_size> name{};
  bool renew = false;
  EXPECT_FALSE(tickets.opening_key(name.data(), renew));
}

TEST(SessionTickets, ResumptionAsksTheCertificateCheckEachTime) {
  common::manual_clock clock;
  bool accepted = true;
  int asked = 0;
  session_tickets tickets(clock, 60s, [&](X509*) {
    ++asked;
    return accepted;
  });
  X509* cert = X509_new();
  EXPECT_TRUE(tickets.may_resume(cert));
  accepted = false;  // revoked since
  EXPECT_FALSE(tickets.may_resume(cert));
  EXPECT_FALSE(tickets.may_resume(nullptr));  // a session without a certificate never resumes
  EXPECT_EQ(asked, 2);
  X509_free(cert);
}

}  // namespace
}  // namespace fleetcore::transport
