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

std::string key(int i) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%06d", i);
  return buf;
}

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

TEST_F(sqlite_store_test, packet_ids_in_both_directions_survive_reopen) {
  {
    sqlite_store s(dir_);
    s.submit({op::put_session{"dev", 3, 60, 5, 0},
              op::put_message{"dev", 3, {10, m("a", "sent"), {}}},
              op::put_message{"dev", 3, {11, m("b", "released", 2), {}}},
              op::put_message{"dev", 3, {12, m("c", "queued"), {}}},
              op::send_message{"dev", 10, 501, false},
              op::send_message{"dev", 11, 502, false},
              op::send_message{"dev", 11, 502, true},  // its PUBREC came back
              op::put_inbound_qos2{"dev", 3, 7},
              op::put_inbound_qos2{"dev", 3, 8},
              op::put_inbound_qos2{"dev", 2, 9},  // a replaced incarnation writes nothing
              op::delete_inbound_qos2{"dev", 3, 8}},
             nullptr);
    s.flush();
  }
  sqlite_store s(dir_);
  auto snap = s.load();
  ASSERT_EQ(snap.sessions.size(), 1u);
  const auto& q = snap.sessions[0].queue;
  ASSERT_EQ(q.size(), 3u);
  EXPECT_EQ(std::tuple(q[0].packet_id, q[0].released), std::tuple(std::uint16_t{501}, false));
  EXPECT_EQ(std::tuple(q[1].packet_id, q[1].released), std::tuple(std::uint16_t{502}, true));
  EXPECT_EQ(std::tuple(q[2].packet_id, q[2].released), std::tuple(std::uint16_t{0}, false));
  EXPECT_EQ(snap.sessions[0].inbound_qos2, std::vector<std::uint16_t>{7});
  // A clean start drops the held ids with the rest of the session.
  s.submit({op::put_session{"dev", 4, 60, 5, 0}}, nullptr);
  s.flush();
  EXPECT_TRUE(s.load().sessions[0].inbound_qos2.empty());
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
  s.submit({op::send_message{"dev", 5, 9, false}}, nullptr);
  s.flush();
  auto snap = s.load();
  ASSERT_EQ(snap.sessions.size(), 1u);
  ASSERT_EQ(snap.sessions[0].queue.size(), 1u);
  EXPECT_EQ(snap.sessions[0].queue[0].msg.payload, "kept");
  EXPECT_EQ(snap.sessions[0].queue[0].packet_id, 9);
  EXPECT_EQ(query(dir_ / "fleetcore.db", "PRAGMA user_version"), "3");
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

// Start-up reads (broker, shadows, registry) used to run on the caller's thread on the writer's
// connection while the writer committed: two threads in one NOMUTEX connection corrupted the WAL.
// Reads from several threads while batches commit must each see a prefix of what was submitted, and
// leave a sound database.
TEST_F(sqlite_store_test, reads_from_other_threads_while_batches_commit) {
  constexpr int n = 400;
  {
    sqlite_store s(dir_);
    std::atomic<bool> writing{true};
    std::atomic<int> durable{0};
    auto reader = [&](bool documents) {
      std::size_t last = 0;
      int reads = 0;
      while (writing || reads < 3) {
        std::size_t seen;
        if (documents) {
          auto docs = s.load_documents("thing");
          seen = docs.size();
          for (std::size_t i = 0; i < docs.size(); ++i) {
            ASSERT_EQ(docs[i].key, key(static_cast<int>(i)));  // a prefix, in key order
            ASSERT_EQ(docs[i].body, "{\"n\":" + std::to_string(i) + "}");
          }
        } else {
          auto snap = s.load();
          seen = snap.retained.size();
          ASSERT_LE(snap.sessions.size(), 1u);
          if (seen) {
            ASSERT_EQ(snap.sessions.size(), 1u);
            ASSERT_EQ(snap.sessions[0].queue.size(), seen);  // each batch is all or nothing
          }
        }
        ASSERT_GE(seen, last);  // never goes back
        last = seen;
        ++reads;
      }
    };
    std::thread docs_reader(reader, true);
    std::thread snap_reader(reader, false);
    s.submit({op::put_session{"dev", 1, 3600, 5, 0}}, nullptr);
    for (int i = 0; i < n; ++i) {
      s.submit({op::put_document{{"thing", key(i), "{\"n\":" + std::to_string(i) + "}"}},
                op::put_retained{m("r/" + key(i), "v")},
                op::put_message{"dev", 1, {static_cast<std::uint64_t>(i + 1), m("q", key(i)), {}}}},
               [&](bool ok) { durable += ok; });
      if (i % 50 == 0) std::this_thread::yield();
    }
    s.flush();
    writing = false;
    docs_reader.join();
    snap_reader.join();
    EXPECT_EQ(durable, n);
    EXPECT_EQ(s.load_documents("thing").size(), static_cast<std::size_t>(n));
  }
  sqlite_store reopened(dir_);
  auto snap = reopened.load();
  EXPECT_EQ(snap.retained.size(), static_cast<std::size_t>(n));
  ASSERT_EQ(snap.sessions.size(), 1u);
  EXPECT_EQ(snap.sessions[0].queue.size(), static_cast<std::size_t>(n));
  EXPECT_EQ(reopened.load_documents("thing").size(), static_cast<std::size_t>(n));
  EXPECT_EQ(query(dir_ / "fleetcore.db", "PRAGMA integrity_check"), "ok");
}

TEST_F(sqlite_store_test, a_read_sees_every_batch_submitted_before_it) {
  sqlite_store s(dir_);
  for (int i = 0; i < 20; ++i) {
    s.submit({op::put_document{{"policy", key(i), "{}"}}}, nullptr);
    EXPECT_EQ(s.load_documents("policy").size(), static_cast<std::size_t>(i + 1));  // no flush needed
  }
}

// A statement that fails (here: a trigger an operator added) fails its own batch — reported not
// durable, nothing of it left behind — and no other batch of the same group commit.
TEST_F(sqlite_store_test, failed_statement_fails_only_its_batch) {
  sqlite_store s(dir_);
  EXPECT_EQ(query(dir_ / "fleetcore.db",
                  "CREATE TRIGGER refuse BEFORE INSERT ON documents WHEN NEW.key = 'bad' "
                  "BEGIN SELECT RAISE(ABORT, 'refused'); END"),
            "");
  // Hold the writer in a completion so the next three batches are taken as one group.
  std::promise<void> release;
  auto held = release.get_future().share();
  s.submit({op::put_document{{"thing", "first", "{}"}}}, [held](bool) { held.wait(); });
  std::promise<bool> a, b, c;
  s.submit({op::put_document{{"thing", "a", "{}"}}}, [&](bool ok) { a.set_value(ok); });
  s.submit({op::put_document{{"thing", "b", "{}"}}, op::put_retained{m("b/r", "x")},
            op::put_document{{"thing", "bad", "{}"}}},
           [&](bool ok) { b.set_value(ok); });
  s.submit({op::put_document{{"thing", "c", "{}"}}}, [&](bool ok) { c.set_value(ok); });
  release.set_value();
  EXPECT_TRUE(a.get_future().get());
  EXPECT_FALSE(b.get_future().get());
  EXPECT_TRUE(c.get_future().get());
  std::vector<std::string> keys;
  for (auto& d : s.load_documents("thing")) keys.push_back(d.key);
  EXPECT_EQ(keys, (std::vector<std::string>{"a", "c", "first"}));
  EXPECT_TRUE(s.load().retained.empty());

  common::registry metrics;
  s.register_metrics(metrics);
  EXPECT_NE(metrics.render().find("fleetcore_storage_failed_batches_total 1\n"), std::string::npos)
      << metrics.render();
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
