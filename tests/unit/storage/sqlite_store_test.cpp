#include "storage/sqlite_store.hpp"

#include <gtest/gtest.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <atomic>
#include <filesystem>
#include <future>
#include <thread>
#include <tuple>
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

/// Runs `sql` on a connection of its own (as an operator's sqlite3 shell would) and returns the first
/// column of the first row.
std::string query(const std::filesystem::path& db, const char* sql) {
  sqlite3* c = nullptr;
  EXPECT_EQ(sqlite3_open_v2(db.c_str(), &c, SQLITE_OPEN_READWRITE, nullptr), SQLITE_OK);
  sqlite3_busy_timeout(c, 5000);
  sqlite3_stmt* s = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(c, sql, -1, &s, nullptr), SQLITE_OK) << sqlite3_errmsg(c);
  std::string out;
  int rc = sqlite3_step(s);
  if (rc == SQLITE_ROW && sqlite3_column_text(s, 0)) out = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
  EXPECT_TRUE(rc == SQLITE_ROW || rc == SQLITE_DONE) << sqlite3_errmsg(c);
  sqlite3_finalize(s);
  sqlite3_close(c);
  return out;
}

TEST_F(sqlite_store_test, schema_2_database_gains_packet_ids) {
  std::filesystem::create_directories(dir_);
  {
    sqlite3* c = nullptr;
    ASSERT_EQ(sqlite3_open((dir_ / "fleetcore.db").c_str(), &c), SQLITE_OK);
    const char* v2 = R"sql(
      CREATE TABLE sessions(client_id TEXT PRIMARY KEY, incarnation INTEGER NOT NULL,
        expiry_interval INTEGER NOT NULL, protocol INTEGER NOT NULL, disconnected_at INTEGER NOT NULL);
      CREATE TABLE session_messages(client_id TEXT NOT NULL, seq INTEGER NOT NULL, incarnation INTEGER NOT NULL,
        topic TEXT NOT NULL, payload BLOB NOT NULL, qos INTEGER NOT NULL, retain INTEGER NOT NULL,
        props BLOB NOT NULL, expiry_at INTEGER NOT NULL, sub_ids TEXT NOT NULL,
        PRIMARY KEY(client_id, seq)) WITHOUT ROWID;
      INSERT INTO sessions VALUES('dev', 1, 60, 4, 0);
      INSERT INTO session_messages VALUES('dev', 5, 1, 't', 'kept', 1, 0, '', 0, '');
      PRAGMA user_version = 2;)sql";
    ASSERT_EQ(sqlite3_exec(c, v2, nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(c);
  }
  sqlite_store s(dir_);
  s.submit({op::send_message{"dev", 1, 5, 9, false}}, nullptr);
  s.flush();
  auto snap = s.load();
  ASSERT_EQ(snap.sessions.size(), 1u);
  ASSERT_EQ(snap.sessions[0].queue.size(), 1u);
  EXPECT_EQ(snap.sessions[0].queue[0].msg.payload, "kept");
  EXPECT_EQ(snap.sessions[0].queue[0].packet_id, 9);
  EXPECT_EQ(snap.sessions[0].node, "");
  EXPECT_EQ(query(dir_ / "fleetcore.db", "PRAGMA user_version"), "4");
}

// Schema 3, as the previous release wrote it: its sessions gain a node ("", held here).
TEST_F(sqlite_store_test, schema_3_database_gains_session_nodes) {
  std::filesystem::create_directories(dir_);
  {
    sqlite3* c = nullptr;
    ASSERT_EQ(sqlite3_open((dir_ / "fleetcore.db").c_str(), &c), SQLITE_OK);
    const char* v3 = R"sql(
      CREATE TABLE retained(
        topic TEXT PRIMARY KEY, payload BLOB NOT NULL, qos INTEGER NOT NULL, props BLOB NOT NULL,
        expiry_at INTEGER NOT NULL);
      CREATE TABLE sessions(
        client_id TEXT PRIMARY KEY, incarnation INTEGER NOT NULL, expiry_interval INTEGER NOT NULL,
        protocol INTEGER NOT NULL, disconnected_at INTEGER NOT NULL);
      CREATE TABLE subscriptions(
        client_id TEXT NOT NULL, filter TEXT NOT NULL, options INTEGER NOT NULL, sub_id INTEGER NOT NULL,
        incarnation INTEGER NOT NULL, PRIMARY KEY(client_id, filter)) WITHOUT ROWID;
      CREATE TABLE session_messages(
        client_id TEXT NOT NULL, seq INTEGER NOT NULL, incarnation INTEGER NOT NULL, topic TEXT NOT NULL,
        payload BLOB NOT NULL, qos INTEGER NOT NULL, retain INTEGER NOT NULL, props BLOB NOT NULL,
        expiry_at INTEGER NOT NULL, sub_ids TEXT NOT NULL, packet_id INTEGER NOT NULL DEFAULT 0,
        released INTEGER NOT NULL DEFAULT 0, PRIMARY KEY(client_id, seq)) WITHOUT ROWID;
      CREATE TABLE session_inbound(
        client_id TEXT NOT NULL, packet_id INTEGER NOT NULL, incarnation INTEGER NOT NULL,
        PRIMARY KEY(client_id, packet_id)) WITHOUT ROWID;
      CREATE TABLE documents(
        kind TEXT NOT NULL, key TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY(kind, key)) WITHOUT ROWID;
      INSERT INTO sessions VALUES('dev', 4, 60, 5, 1000);
      INSERT INTO subscriptions VALUES('dev', 'a/#', 1, 0, 4);
      INSERT INTO session_messages VALUES('dev', 5, 4, 't', 'kept', 1, 0, '', 0, '', 12, 0);
      PRAGMA user_version = 3;)sql";
    ASSERT_EQ(sqlite3_exec(c, v3, nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(c);
  }
  {
    sqlite_store s(dir_);
    auto snap = s.load();
    ASSERT_EQ(snap.sessions.size(), 1u);
    const auto& r = snap.sessions[0];
    EXPECT_EQ(std::tuple(r.client_id, r.incarnation, r.disconnected_at_ms, r.node),
              std::tuple(std::string("dev"), std::uint64_t{4}, std::int64_t{1000}, std::string()));
    EXPECT_EQ(r.subscriptions.size(), 1u);
    ASSERT_EQ(r.queue.size(), 1u);
    EXPECT_EQ(r.queue[0].packet_id, 12);
    EXPECT_EQ(query(dir_ / "fleetcore.db", "PRAGMA user_version"), "4");
    // The new column is written like any other.
    EXPECT_TRUE(s.submit_and_wait({op::adopt_session{"dev", 4, 5, "node-b"}}));
  }
  sqlite_store s(dir_);  // a migrated database opens as it is
  auto snap = s.load();
  ASSERT_EQ(snap.sessions.size(), 1u);
  EXPECT_EQ(std::tuple(snap.sessions[0].incarnation, snap.sessions[0].node), std::tuple(std::uint64_t{5}, std::string("node-b")));
  EXPECT_EQ(snap.sessions[0].queue.size(), 1u);
}

TEST_F(sqlite_store_test, files_have_tight_permissions) {
  sqlite_store s(dir_);
  EXPECT_EQ(std::filesystem::status(dir_).permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_all);
  auto db = std::filesystem::status(dir_ / "fleetcore.db").permissions() & std::filesystem::perms::all;
  EXPECT_EQ(db, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
}

// Waiting for a read on the store's own thread would deadlock: it is a checked error instead.
TEST_F(sqlite_store_test, reading_from_a_completion_is_a_checked_error) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        spdlog::set_default_logger(spdlog::stderr_logger_mt("death"));
        sqlite_store s(dir_);
        std::promise<void> never;
        s.submit({}, [&](bool) { s.load_documents("thing"); });
        never.get_future().wait();
      },
      "check.failed");
}

}  // namespace
}  // namespace fleetcore::storage
