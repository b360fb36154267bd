#include "transport/tls.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

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

std::filesystem::path keys_file(const char* name) {
  auto dir = std::filesystem::temp_directory_path() / ("fc-tickets-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto p = dir / name;
  std::filesystem::remove(p);
  return p;
}

TEST(SessionTickets, KeysKeptInTheirFileOpenTicketsAfterARestart) {
  common::manual_clock clock;
  auto file = keys_file("restart");
  session_tickets::key sealed;
  {
    session_tickets before(clock, 3600s, [](X509*) { return true; }, file);
    sealed = before.sealing_key();
  }
  struct stat st {};
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  clock.advance(600s);
  session_tickets after(clock, 3600s, [](X509*) { return true; }, file);
  bool renew = true;
  auto opened = after.opening_key(sealed.name.data(), renew);
  ASSERT_TRUE(opened);
  EXPECT_FALSE(renew);
  EXPECT_EQ(opened->aes, sealed.aes);
  EXPECT_EQ(opened->hmac, sealed.hmac);
  EXPECT_EQ(after.sealing_key().name, sealed.name);  // still the sealing key: 10 minutes old
}

TEST(SessionTickets, ARotationIsSavedAndOldKeysAreNotBroughtBack) {
  common::manual_clock clock;
  auto file = keys_file("rotation");
  session_tickets::key first, second;
  {
    session_tickets t(clock, 3600s, [](X509*) { return true; }, file);
    first = t.sealing_key();
    clock.advance(3600s);
    second = t.sealing_key();  // rotated: the file holds second (sealing) and first (retired)
  }
  bool renew = false;
  {
    session_tickets t(clock, 3600s, [](X509*) { return true; }, file);
    EXPECT_EQ(t.sealing_key().name, second.name);
    EXPECT_TRUE(t.opening_key(first.name.data(), renew));
    EXPECT_TRUE(renew);
  }
  clock.advance(7200s);  // down for two lifetimes: neither key opens anything any more
  session_tickets t(clock, 3600s, [](X509*) { return true; }, file);
  EXPECT_FALSE(t.opening_key(first.name.data(), renew));
  EXPECT_NE(t.sealing_key().name, second.name);
}

TEST(SessionTickets, AnUnreadableKeysFileGivesFreshKeys) {
  common::manual_clock clock;
  auto file = keys_file("garbage");
  std::ofstream(file) << "not hex at all 1 0\n";
  session_tickets t(clock, 3600s, [](X509*) { return true; }, file);
  auto k = t.sealing_key();
  bool renew = false;
  EXPECT_TRUE(t.opening_key(k.name.data(), renew));
  session_tickets again(clock, 3600s, [](X509*) { return true; }, file);  // and the file was rewritten
  EXPECT_EQ(again.sealing_key().name, k.name);
}

}  // namespace
}  // namespace fleetcore::transport
