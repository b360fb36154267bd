#include "storage/sqlite_store.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <future>
#include <unistd.h>

namespace fleetcore::storage {
namespace {

class sqlite_store_test : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("fc-store-" + std::to_string(::getpid()) + "-" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

stored_message m(std::string topic, std::string payload, std::uint8_t qos = 1) {
  return {std::move(topic), std::move(payload), qos, false, "\x03\x00\x01x", 0};
}

TEST_F(sqlite_store_test, round_trip_across_reopen) {
  {
    sqlite_store s(dir_);
    EXPECT_TRUE(s.load().sessions.empty());
    s.submit({op::put_retained{m("r/1", "keep")}, op::put_retained{m("r/2", "gone")}, op::delete_retained{"r/2"},
              op::put_session{"dev", 7, 3600, 5, 0},
              op::put_subscription{"dev", 7, {"a/#", 0x01, 12}},
              op::put_message{"dev", 7, {41, m("a/b", "one"), {12, 13}}},
              op::put_message{"dev", 7, {42, m("a/c", "two"), {}}},
              op::delete_message{"dev", 41}},
             nullptr);
    s.flush();
  }
  sqlite_store s(dir_);
  auto snap = s.load();
  ASSERT_EQ(snap.retained.size(), 1u);
  EXPECT_EQ(snap.retained[0].topic, "r/1");
  EXPECT_EQ(snap.retained[0].props, std::string("\x03\x00\x01x"));
  ASSERT_EQ(snap.sessions.size(), 1u);
  const auto& sess = snap.sessions[0];
  EXPECT_EQ(sess.incarnation, 7u);
  EXPECT_EQ(sess.expiry_interval, 3600u);
  ASSERT_EQ(sess.subscriptions.size(), 1u);
  EXPECT_EQ(sess.subscriptions[0].subscription_id, 12u);
  ASSERT_EQ(sess.queue.size(), 1u);
  EXPECT_EQ(sess.queue[0].seq, 42u);
  EXPECT_EQ(sess.queue[0].msg.payload, "two");
  EXPECT_EQ(snap.max_seq, 42u);
  EXPECT_EQ(snap.max_incarnation, 7u);
}

TEST_F(sqlite_store_test, replaced_session_cannot_write_over_successor) {
  sqlite_store s(dir_);
  s.submit({op::put_session{"dev", 1, 60, 5, 0}, op::put_subscription{"dev", 1, {"old", 1, 0}},
            op::put_session{"dev", 2, 60, 5, 0},                      // clean start: incarnation 2
            op::put_subscription{"dev", 1, {"late-from-old", 1, 0}},  // stale writer
            op::put_message{"dev", 1, {5, m("x", "stale"), {}}},
            op::put_subscription{"dev", 2, {"new", 1, 0}},
            op::delete_session{"dev", 1}},  // the old session ending must not delete the new one
           nullptr);
  s.flush();
  auto snap = s.load();
  ASSERT_EQ(snap.sessions.size(), 1u);
  EXPECT_EQ(snap.sessions[0].incarnation, 2u);
  ASSERT_EQ(snap.sessions[0].subscriptions.size(), 1u);
  EXPECT_EQ(snap.sessions[0].subscriptions[0].filter, "new");
  EXPECT_TRUE(snap.sessions[0].queue.empty());
}

TEST_F(sqlite_store_test, completions_fire_in_order_after_commit) {
  sqlite_store s(dir_);
  std::vector<int> order;
  std::mutex mu;
  std::promise<void> all;
  std::atomic<int> left{200};
  for (int i = 0; i < 200; ++i) {
    s.submit({op::put_retained{m("t/" + std::to_string(i), "x")}}, [&, i](bool durable) {
      EXPECT_TRUE(durable);
      std::lock_guard lock(mu);
      order.push_back(i);
      if (--left == 0) all.set_value();
    });
  }
  all.get_future().wait();
  for (int i = 0; i < 200; ++i) EXPECT_EQ(order[static_cast<std::size_t>(i)], i);
  EXPECT_EQ(s.load().retained.size(), 200u);
}

TEST_F(sqlite_store_test, files_have_tight_permissions) {
  sqlite_store s(dir_);
  EXPECT_EQ(std::filesystem::status(dir_).permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_all);
  auto db = std::filesystem::status(dir_ / "fleetcore.db").permissions() & std::filesystem::perms::all;
  EXPECT_EQ(db, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
}

}  // namespace
}  // namespace fleetcore::storage
