// What every storage backend promises (storage/store.hpp), run against each: SQLite always,
// PostgreSQL when FC_TEST_POSTGRES holds a conninfo (`make unit` starts scripts/postgres.sh and sets
// it). Each test gets a database of its own.
#include "storage/postgres_store.hpp"
#include "storage/sqlite_store.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <tuple>
#include <unistd.h>

namespace fleetcore::storage {
namespace {

/// One backend's database for one test: opened as often as the test likes, and reachable by an
/// operator's SQL on a connection of its own.
class backend {
 public:
  virtual ~backend() = default;
  virtual std::unique_ptr<group_commit_store> open() = 0;
  /// Runs `sql` outside the store; EXPECTs it to succeed.
  virtual void operator_sql(const std::string& sql) = 0;
  /// SQL that makes inserting a document with key 'bad' fail.
  virtual std::string refuse_bad_documents() const = 0;
  /// The backend's own check that its files are sound, where it has one.
  virtual void check_integrity() {}
};

class sqlite_backend final : public backend {
 public:
  explicit sqlite_backend(const std::string& name)
      : dir_(std::filesystem::temp_directory_path() / ("fc-contract-" + std::to_string(::getpid()) + "-" + name)) {
    std::filesystem::remove_all(dir_);
  }
  ~sqlite_backend() override { std::filesystem::remove_all(dir_); }
  std::unique_ptr<group_commit_store> open() override { return std::make_unique<sqlite_store>(dir_); }
  void operator_sql(const std::string& sql) override {
    sqlite3* c = nullptr;
    ASSERT_EQ(sqlite3_open_v2((dir_ / "fleetcore.db").c_str(), &c, SQLITE_OPEN_READWRITE, nullptr), SQLITE_OK);
    sqlite3_busy_timeout(c, 5000);
    char* err = nullptr;
    EXPECT_EQ(sqlite3_exec(c, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
    sqlite3_free(err);
    sqlite3_close(c);
  }
  void check_integrity() override {
    sqlite3* c = nullptr;
    ASSERT_EQ(sqlite3_open_v2((dir_ / "fleetcore.db").c_str(), &c, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(c, "PRAGMA integrity_check", -1, &st, nullptr), SQLITE_OK);
    ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
    EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)), "ok");
    sqlite3_finalize(st);
    sqlite3_close(c);
  }
  std::string refuse_bad_documents() const override {
    return "CREATE TRIGGER refuse BEFORE INSERT ON documents WHEN NEW.key = 'bad' "
           "BEGIN SELECT RAISE(ABORT, 'refused'); END";
  }

 private:
  std::filesystem::path dir_;
};

class postgres_backend final : public backend {
 public:
  postgres_backend(std::string server, const std::string& name) : server_(std::move(server)), db_(database_name(name)) {
    admin("DROP DATABASE IF EXISTS " + db_);
    admin("CREATE DATABASE " + db_);
  }
  ~postgres_backend() override { admin("DROP DATABASE IF EXISTS " + db_ + " WITH (FORCE)"); }
  /// "fct_<test>", within PostgreSQL's 63 bytes: longer names end in a hash of the whole, so two tests
  /// that share a long prefix (and run at once under ctest -j) never share a database.
  static std::string database_name(const std::string& test) {
    std::string name = "fct_" + test;
    if (name.size() <= 63) return name;
    return fmt::format("{}_{:016x}", name.substr(0, 46), std::hash<std::string>{}(test));
  }
  std::string conninfo() const { return server_ + " dbname=" + db_; }
  std::unique_ptr<group_commit_store> open() override { return std::make_unique<postgres_store>(conninfo()); }
  void operator_sql(const std::string& sql) override { run(conninfo(), sql); }
  /// The first column of the first row of `sql` ("" if none).
  std::string query(const std::string& sql) {
    PGconn* c = PQconnectdb(conninfo().c_str());
    EXPECT_EQ(PQstatus(c), CONNECTION_OK) << PQerrorMessage(c);
    PGresult* r = PQexec(c, sql.c_str());
    EXPECT_EQ(PQresultStatus(r), PGRES_TUPLES_OK) << sql << ": " << PQerrorMessage(c);
    std::string out = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "";
    PQclear(r);
    PQfinish(c);
    return out;
  }
  std::string refuse_bad_documents() const override {
    return "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN IF NEW.key = 'bad' THEN "
           "RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql; "
           "CREATE TRIGGER refuse BEFORE INSERT ON documents FOR EACH ROW EXECUTE FUNCTION refuse()";
  }

 private:
  void admin(const std::string& sql) { run(server_ + " dbname=postgres", sql); }
  static void run(const std::string& conninfo, const std::string& sql) {
    PGconn* c = PQconnectdb(conninfo.c_str());
    ASSERT_EQ(PQstatus(c), CONNECTION_OK) << PQerrorMessage(c);
    PQsetNoticeProcessor(c, [](void*, const char*) {}, nullptr);
    PGresult* r = PQexec(c, sql.c_str());
    EXPECT_TRUE(PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK)
        << sql << ": " << PQerrorMessage(c);
    PQclear(r);
    PQfinish(c);
  }
  std::string server_;
  std::string db_;
};

std::string key(int i) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%06d", i);
  return buf;
}

stored_message m(std::string topic, std::string payload, std::uint8_t qos = 1) {
  return {std::move(topic), std::move(payload), qos, false, "\x03\x00\x01x", 0};
}

class store_contract_test : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    for (auto& ch : name) ch = std::isalnum(static_cast<unsigned char>(ch)) ? static_cast<char>(std::tolower(ch)) : '_';
    if (GetParam() == "sqlite") {
      backend_ = std::make_unique<sqlite_backend>(name);
      return;
    }
    const char* server = std::getenv("FC_TEST_POSTGRES");
    if (!server || !*server) GTEST_SKIP() << "FC_TEST_POSTGRES not set (make unit starts scripts/postgres.sh)";
    backend_ = std::make_unique<postgres_backend>(server, name);
  }
  std::unique_ptr<group_commit_store> open() { return backend_->open(); }
  std::unique_ptr<backend> backend_;
};

struct session_read_result {
  std::optional<session_record> record;
  bool ok = false;
};

/// load_session, waited for (a test may; the broker never does).
session_read_result read_session(store& s, std::string client_id) {
  std::promise<session_read_result> result;
  auto ready = result.get_future();
  s.load_session(std::move(client_id),
                 [&result](std::optional<session_record> r, bool ok) { result.set_value({std::move(r), ok}); });
  return ready.get();
}

std::vector<std::string> filters_of(const session_record& r) {
  std::vector<std::string> out;
  for (const auto& sub : r.subscriptions) out.push_back(sub.filter);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::uint64_t> seqs_of(const session_record& r) {
  std::vector<std::uint64_t> out;
  for (const auto& q : r.queue) out.push_back(q.seq);
  return out;
}

TEST_P(store_contract_test, round_trip_across_reopen) {
  {
    auto s = open();
    EXPECT_TRUE(s->load().sessions.empty());
    s->submit({op::put_retained{m("r/1", "keep")}, op::put_retained{m("r/2", "gone")}, op::delete_retained{"r/2"},
               op::put_retained{m("r/1", std::string("k\0ep", 4))},  // replaced; binary payload
               op::put_session{"dev", 7, 3600, 5, 0, ""},
               op::put_subscription{"dev", 7, {"a/#", 0x01, 12}},
               op::put_message{"dev", 7, {41, m("a/b", "one"), {12, 13}}},
               op::put_message{"dev", 7, {42, m("a/c", "two"), {12, 13}}},
               op::delete_message{"dev", 7, 41}},
              nullptr);
    s->flush();
  }
  auto s = open();
  auto snap = s->load();
  ASSERT_EQ(snap.retained.size(), 1u);
  EXPECT_EQ(snap.retained[0].topic, "r/1");
  EXPECT_EQ(snap.retained[0].payload, std::string("k\0ep", 4));
  EXPECT_EQ(snap.retained[0].props, std::string("\x03\x00\x01x"));
  ASSERT_EQ(snap.sessions.size(), 1u);
  const auto& sess = snap.sessions[0];
  EXPECT_EQ(sess.incarnation, 7u);
  EXPECT_EQ(sess.expiry_interval, 3600u);
  EXPECT_EQ(sess.protocol, 5);
  ASSERT_EQ(sess.subscriptions.size(), 1u);
  EXPECT_EQ(sess.subscriptions[0].options, 0x01);
  EXPECT_EQ(sess.subscriptions[0].subscription_id, 12u);
  ASSERT_EQ(sess.queue.size(), 1u);
  EXPECT_EQ(sess.queue[0].seq, 42u);
  EXPECT_EQ(sess.queue[0].msg.payload, "two");
  EXPECT_EQ(sess.queue[0].subscription_ids, (std::vector<std::uint32_t>{12, 13}));
  EXPECT_EQ(snap.max_seq, 42u);
  EXPECT_EQ(snap.max_incarnation, 7u);
}

TEST_P(store_contract_test, replaced_session_cannot_write_over_successor) {
  auto s = open();
  s->submit({op::put_session{"dev", 1, 60, 5, 0, ""}, op::put_subscription{"dev", 1, {"old", 1, 0}},
             op::put_session{"dev", 2, 60, 5, 0, ""},                  // clean start: incarnation 2
             op::put_subscription{"dev", 1, {"late-from-old", 1, 0}},  // stale writer
             op::put_message{"dev", 1, {5, m("x", "stale"), {}}},
             op::put_subscription{"dev", 2, {"new", 1, 0}},
             op::delete_session{"dev", 1}},  // the old session ending must not delete the new one
            nullptr);
  s->flush();
  auto snap = s->load();
  ASSERT_EQ(snap.sessions.size(), 1u);
  EXPECT_EQ(snap.sessions[0].incarnation, 2u);
  ASSERT_EQ(snap.sessions[0].subscriptions.size(), 1u);
  EXPECT_EQ(snap.sessions[0].subscriptions[0].filter, "new");
  EXPECT_TRUE(snap.sessions[0].queue.empty());
}

TEST_P(store_contract_test, packet_ids_in_both_directions_survive_reopen) {
  {
    auto s = open();
    s->submit({op::put_session{"dev", 3, 60, 5, 0, ""},
               op::put_message{"dev", 3, {10, m("a", "sent"), {}}},
               op::put_message{"dev", 3, {11, m("b", "released", 2), {}}},
               op::put_message{"dev", 3, {12, m("c", "queued"), {}}},
               op::send_message{"dev", 3, 10, 501, false},
               op::send_message{"dev", 3, 11, 502, false},
               op::send_message{"dev", 3, 11, 502, true},  // its PUBREC came back
               op::put_inbound_qos2{"dev", 3, 7},
               op::put_inbound_qos2{"dev", 3, 8},
               op::put_inbound_qos2{"dev", 2, 9},  // a replaced incarnation writes nothing
               op::delete_inbound_qos2{"dev", 3, 8}},
              nullptr);
    s->flush();
  }
  auto s = open();
  auto snap = s->load();
  ASSERT_EQ(snap.sessions.size(), 1u);
  const auto& q = snap.sessions[0].queue;
  ASSERT_EQ(q.size(), 3u);
  EXPECT_EQ(std::tuple(q[0].packet_id, q[0].released), std::tuple(std::uint16_t{501}, false));
  EXPECT_EQ(std::tuple(q[1].packet_id, q[1].released), std::tuple(std::uint16_t{502}, true));
  EXPECT_EQ(std::tuple(q[2].packet_id, q[2].released), std::tuple(std::uint16_t{0}, false));
  EXPECT_EQ(snap.sessions[0].inbound_qos2, std::vector<std::uint16_t>{7});
  // A clean start drops the held ids with the rest of the session.
  s->submit({op::put_session{"dev", 4, 60, 5, 0, ""}}, nullptr);
  s->flush();
  EXPECT_TRUE(s->load().sessions[0].inbound_qos2.empty());
}

TEST_P(store_contract_test, session_node_round_trips) {
  {
    auto s = open();
    EXPECT_TRUE(s->submit_and_wait({op::put_session{"here", 1, 60, 5, 0, "node-a"},
                                    op::put_session{"single", 2, 60, 5, 0, ""},
                                    op::put_session{"moved", 3, 60, 5, 0, "node-a"},
                                    op::put_session{"moved", 4, 60, 5, 0, "node-b"}}));  // replaced, node too
  }
  auto snap = open()->load();
  std::map<std::string, std::string> nodes;
  for (const auto& r : snap.sessions) nodes[r.client_id] = r.node;
  EXPECT_EQ(nodes, (std::map<std::string, std::string>{{"here", "node-a"}, {"moved", "node-b"}, {"single", ""}}));
}

TEST_P(store_contract_test, load_session_reads_one_client) {
  auto s = open();
  EXPECT_TRUE(s->submit_and_wait({op::put_session{"dev", 5, 600, 5, 1234, "node-a"},
                                  op::put_subscription{"dev", 5, {"a/#", 0x02, 7}},
                                  op::put_subscription{"dev", 5, {"$share/g/b", 0x01, 0}},
                                  op::put_message{"dev", 5, {30, m("t/30", "thirty"), {7}}},
                                  op::put_message{"dev", 5, {10, m("t/10", "ten", 2), {}}},
                                  op::put_message{"dev", 5, {20, m("t/20", "twenty"), {7, 8}}},
                                  op::send_message{"dev", 5, 10, 77, true},
                                  op::put_inbound_qos2{"dev", 5, 9},
                                  op::put_inbound_qos2{"dev", 5, 3},
                                  // Other clients, one whose id has "dev" as a prefix.
                                  op::put_session{"dev2", 6, 60, 5, 0, ""},
                                  op::put_subscription{"dev2", 6, {"other", 0, 0}},
                                  op::put_message{"dev2", 6, {15, m("o", "other"), {}}},
                                  op::put_inbound_qos2{"dev2", 6, 4},
                                  op::put_session{"de", 7, 60, 5, 0, ""},
                                  op::put_message{"de", 7, {16, m("o", "other"), {}}}}));
  // Rows an older incarnation left behind (as an operator could) belong to no session.
  backend_->operator_sql("INSERT INTO subscriptions VALUES('dev', 'stale', 0, 0, 4)");

  auto [record, ok] = read_session(*s, "dev");
  ASSERT_TRUE(ok);
  ASSERT_TRUE(record);
  EXPECT_EQ(record->client_id, "dev");
  EXPECT_EQ(record->incarnation, 5u);
  EXPECT_EQ(record->expiry_interval, 600u);
  EXPECT_EQ(record->protocol, 5);
  EXPECT_EQ(record->disconnected_at_ms, 1234);
  EXPECT_EQ(record->node, "node-a");
  EXPECT_EQ(filters_of(*record), (std::vector<std::string>{"$share/g/b", "a/#"}));
  EXPECT_EQ(seqs_of(*record), (std::vector<std::uint64_t>{10, 20, 30}));
  ASSERT_EQ(record->queue.size(), 3u);
  EXPECT_EQ(record->queue[0].msg.payload, "ten");
  EXPECT_EQ(record->queue[0].msg.qos, 2);
  EXPECT_EQ(std::tuple(record->queue[0].packet_id, record->queue[0].released), std::tuple(std::uint16_t{77}, true));
  EXPECT_EQ(record->queue[1].subscription_ids, (std::vector<std::uint32_t>{7, 8}));
  EXPECT_EQ(record->queue[2].msg.props, std::string("\x03\x00\x01x"));
  EXPECT_EQ(record->inbound_qos2, (std::vector<std::uint16_t>{3, 9}));

  // The same as load() has it.
  for (const auto& r : s->load().sessions) {
    if (r.client_id != "dev") continue;
    EXPECT_EQ(filters_of(r), filters_of(*record));
    EXPECT_EQ(seqs_of(r), seqs_of(*record));
    EXPECT_EQ(r.inbound_qos2, record->inbound_qos2);
  }

  auto unknown = read_session(*s, "nobody");
  EXPECT_TRUE(unknown.ok);
  EXPECT_FALSE(unknown.record);
}

TEST_P(store_contract_test, load_session_sees_every_batch_submitted_before_it) {
  auto s = open();
  s->submit({op::put_session{"dev", 1, 60, 5, 0, ""}}, nullptr);
  for (std::uint64_t i = 1; i <= 20; ++i) {
    s->submit({op::put_message{"dev", 1, {i, m("q", "x"), {}}}}, nullptr);
    auto [record, ok] = read_session(*s, "dev");  // no flush
    ASSERT_TRUE(ok);
    ASSERT_TRUE(record);
    ASSERT_EQ(record->queue.size(), i);
  }
  s->submit({op::delete_session{"dev", 1}}, nullptr);
  EXPECT_FALSE(read_session(*s, "dev").record);
}

// load_session only queues its read, so a completion (on the store's own thread) may call it, and
// so may its own callback.
TEST_P(store_contract_test, load_session_from_the_store_thread) {
  auto s = open();
  std::promise<std::pair<std::size_t, std::size_t>> result;
  s->submit({op::put_session{"dev", 1, 60, 5, 0, ""}, op::put_message{"dev", 1, {1, m("q", "x"), {}}}},
            [&](bool durable) {
              EXPECT_TRUE(durable);
              s->load_session("dev", [&](std::optional<session_record> first, bool ok) {
                EXPECT_TRUE(ok);
                s->submit({op::put_message{"dev", 1, {2, m("q", "y"), {}}}}, nullptr);
                s->load_session("dev", [&, n = first ? first->queue.size() : 0](std::optional<session_record> second,
                                                                                  bool) {
                  result.set_value({n, second ? second->queue.size() : 0});
                });
              });
            });
  EXPECT_EQ(result.get_future().get(), (std::pair<std::size_t, std::size_t>{1, 2}));
}

TEST_P(store_contract_test, adopt_session_moves_every_row_to_the_new_incarnation) {
  {
    auto s = open();
    EXPECT_TRUE(s->submit_and_wait({op::put_session{"dev", 1, 600, 5, 99, "node-a"},
                                    op::put_subscription{"dev", 1, {"a/#", 1, 3}},
                                    op::put_message{"dev", 1, {10, m("a/b", "queued"), {3}}},
                                    op::send_message{"dev", 1, 10, 41, false},
                                    op::put_inbound_qos2{"dev", 1, 7},
                                    op::put_session{"bystander", 1, 60, 5, 0, "node-a"},
                                    op::put_subscription{"bystander", 1, {"b", 0, 0}}}));
    EXPECT_TRUE(s->submit_and_wait({op::adopt_session{"dev", 1, 2, "node-b"}}));
    // The old holder still writes with incarnation 1: all of it is ignored.
    EXPECT_TRUE(s->submit_and_wait({op::put_subscription{"dev", 1, {"late", 1, 0}},
                                    op::put_message{"dev", 1, {11, m("a/c", "stale"), {}}},
                                    op::put_inbound_qos2{"dev", 1, 8},
                                    op::send_message{"dev", 1, 10, 99, true},  // neither its mark
                                    op::delete_message{"dev", 1, 10},          // nor its delete
                                    op::delete_subscription{"dev", 1, "a/#"},
                                    op::delete_inbound_qos2{"dev", 1, 7},
                                    op::touch_session{"dev", 1, 0, 0},
                                    op::delete_session{"dev", 1}}));
    // The new holder's writes apply.
    EXPECT_TRUE(s->submit_and_wait({op::put_subscription{"dev", 2, {"new", 1, 0}},
                                    op::put_message{"dev", 2, {12, m("a/d", "fresh"), {}}},
                                    op::put_inbound_qos2{"dev", 2, 9}}));
  }
  auto s = open();
  auto [record, ok] = read_session(*s, "dev");
  ASSERT_TRUE(ok);
  ASSERT_TRUE(record);
  EXPECT_EQ(record->incarnation, 2u);
  EXPECT_EQ(record->node, "node-b");
  EXPECT_EQ(record->expiry_interval, 600u);
  EXPECT_EQ(record->disconnected_at_ms, 99);
  EXPECT_EQ(filters_of(*record), (std::vector<std::string>{"a/#", "new"}));
  EXPECT_EQ(seqs_of(*record), (std::vector<std::uint64_t>{10, 12}));
  ASSERT_FALSE(record->queue.empty());
  EXPECT_EQ(record->queue[0].packet_id, 41);
  EXPECT_FALSE(record->queue[0].released);
  EXPECT_EQ(record->inbound_qos2, (std::vector<std::uint16_t>{7, 9}));
  auto bystander = read_session(*s, "bystander").record;
  ASSERT_TRUE(bystander);
  EXPECT_EQ(std::tuple(bystander->incarnation, bystander->node), std::tuple(std::uint64_t{1}, std::string("node-a")));
  EXPECT_EQ(filters_of(*bystander), std::vector<std::string>{"b"});
  EXPECT_EQ(s->load().max_incarnation, 2u);
}

TEST_P(store_contract_test, adopt_session_from_another_incarnation_fails_and_changes_nothing) {
  auto s = open();
  EXPECT_TRUE(s->submit_and_wait({op::put_session{"dev", 5, 60, 5, 0, "node-a"},
                                  op::put_subscription{"dev", 5, {"a", 1, 0}},
                                  op::put_message{"dev", 5, {1, m("a", "x"), {}}},
                                  op::put_inbound_qos2{"dev", 5, 2}}));
  // Another node adopted an incarnation that has been replaced since (the batch, with what it also
  // wrote, fails); and a client never stored.
  EXPECT_FALSE(s->submit_and_wait({op::put_document{{"thing", "t", "{}"}}, op::adopt_session{"dev", 4, 6, "node-b"}}));
  EXPECT_FALSE(s->submit_and_wait({op::adopt_session{"nobody", 1, 2, "node-b"}}));
  EXPECT_TRUE(s->load_documents("thing").empty());
  // Writes for the incarnation it would have moved to are ignored, the stored one's still apply.
  EXPECT_TRUE(s->submit_and_wait({op::put_subscription{"dev", 6, {"b", 1, 0}}, op::put_message{"dev", 6, {2, m("b", "y"), {}}},
                                  op::put_message{"dev", 5, {3, m("a", "z"), {}}}}));
  auto [record, ok] = read_session(*s, "dev");
  ASSERT_TRUE(ok);
  ASSERT_TRUE(record);
  EXPECT_EQ(record->incarnation, 5u);
  EXPECT_EQ(record->node, "node-a");
  EXPECT_EQ(filters_of(*record), std::vector<std::string>{"a"});
  EXPECT_EQ(seqs_of(*record), (std::vector<std::uint64_t>{1, 3}));
  EXPECT_EQ(record->inbound_qos2, std::vector<std::uint16_t>{2});
  EXPECT_FALSE(read_session(*s, "nobody").record);
}

// What a surviving node takes over when a node is gone: the sessions that node holds, each whole,
// and nothing of the others'.
TEST_P(store_contract_test, load_node_sessions_reads_the_sessions_one_node_holds) {
  auto s = open();
  EXPECT_TRUE(s->submit_and_wait({op::put_session{"a1", 1, 600, 5, 0, "node-a"},
                                  op::put_subscription{"a1", 1, {"x/#", 1, 0}},
                                  op::put_message{"a1", 1, {10, m("x/y", "one"), {}}},
                                  op::put_message{"a1", 1, {11, m("x/z", "two"), {}}},
                                  op::put_inbound_qos2{"a1", 1, 4},
                                  op::put_session{"a2", 2, 60, 4, 77, "node-a"},
                                  op::put_session{"b1", 3, 600, 5, 0, "node-b"},
                                  op::put_subscription{"b1", 3, {"x/#", 1, 0}},
                                  op::put_message{"b1", 3, {12, m("x/y", "b"), {}}}}));
  std::promise<std::pair<std::vector<session_record>, bool>> read;
  s->load_node_sessions("node-a", [&](std::vector<session_record> r, bool ok) { read.set_value({std::move(r), ok}); });
  auto [records, ok] = read.get_future().get();
  ASSERT_TRUE(ok);
  std::sort(records.begin(), records.end(), [](const auto& l, const auto& r) { return l.client_id < r.client_id; });
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].client_id, "a1");
  EXPECT_EQ(filters_of(records[0]), std::vector<std::string>{"x/#"});
  EXPECT_EQ(seqs_of(records[0]), (std::vector<std::uint64_t>{10, 11}));
  EXPECT_EQ(records[0].inbound_qos2, std::vector<std::uint16_t>{4});
  EXPECT_EQ(std::tuple(records[1].client_id, records[1].incarnation, records[1].disconnected_at_ms),
            std::tuple(std::string("a2"), std::uint64_t{2}, std::int64_t{77}));
  // Once adopted by another node, they are that node's.
  EXPECT_TRUE(s->submit_and_wait({op::adopt_session{"a1", 1, 9, "node-c"}}));
  std::promise<std::vector<std::string>> again;
  s->load_node_sessions("node-a", [&](std::vector<session_record> r, bool) {
    std::vector<std::string> ids;
    for (auto& x : r) ids.push_back(x.client_id);
    again.set_value(ids);
  });
  EXPECT_EQ(again.get_future().get(), std::vector<std::string>{"a2"});
}

TEST_P(store_contract_test, completions_fire_in_order_after_commit) {
  auto s = open();
  std::vector<int> order;
  std::mutex mu;
  std::promise<void> all;
  std::atomic<int> left{200};
  for (int i = 0; i < 200; ++i) {
    s->submit({op::put_retained{m("t/" + std::to_string(i), "x")}}, [&, i](bool durable) {
      EXPECT_TRUE(durable);
      std::lock_guard lock(mu);
      order.push_back(i);
      if (--left == 0) all.set_value();
    });
  }
  all.get_future().wait();
  for (int i = 0; i < 200; ++i) EXPECT_EQ(order[static_cast<std::size_t>(i)], i);
  EXPECT_EQ(s->load().retained.size(), 200u);
}

// Start-up reads (broker, shadows, registry) once ran on the caller's thread on the writer's SQLite
// connection while the writer committed, and two threads in one NOMUTEX connection corrupted the WAL.
// Reads from several threads while batches commit must each see a prefix of what was submitted,
// every batch all or nothing, and leave a sound database with everything acknowledged in it.
TEST_P(store_contract_test, reads_from_other_threads_while_batches_commit) {
  constexpr int n = 400;
  {
    auto s = open();
    std::atomic<bool> writing{true};
    std::atomic<int> durable{0};
    auto reader = [&](bool documents) {
      std::size_t last = 0;
      int reads = 0;
      while (writing || reads < 3) {
        std::size_t seen;
        if (documents) {
          auto docs = s->load_documents("thing");
          seen = docs.size();
          for (std::size_t i = 0; i < docs.size(); ++i) {
            ASSERT_EQ(docs[i].key, key(static_cast<int>(i)));  // a prefix, in key order
            ASSERT_EQ(docs[i].body, "{\"n\":" + std::to_string(i) + "}");
          }
        } else {
          auto snap = s->load();
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
    s->submit({op::put_session{"dev", 1, 3600, 5, 0, ""}}, nullptr);
    for (int i = 0; i < n; ++i) {
      s->submit({op::put_document{{"thing", key(i), "{\"n\":" + std::to_string(i) + "}"}},
                 op::put_retained{m("r/" + key(i), "v")},
                 op::put_message{"dev", 1, {static_cast<std::uint64_t>(i + 1), m("q", key(i)), {}}}},
                [&](bool ok) { durable += ok; });
      if (i % 50 == 0) std::this_thread::yield();
    }
    s->flush();
    writing = false;
    docs_reader.join();
    snap_reader.join();
    EXPECT_EQ(durable, n);
    EXPECT_EQ(s->load_documents("thing").size(), static_cast<std::size_t>(n));
  }
  auto reopened = open();
  auto snap = reopened->load();
  EXPECT_EQ(snap.retained.size(), static_cast<std::size_t>(n));
  ASSERT_EQ(snap.sessions.size(), 1u);
  EXPECT_EQ(snap.sessions[0].queue.size(), static_cast<std::size_t>(n));
  EXPECT_EQ(reopened->load_documents("thing").size(), static_cast<std::size_t>(n));
  reopened.reset();
  backend_->check_integrity();
}

TEST_P(store_contract_test, a_read_sees_every_batch_submitted_before_it) {
  auto s = open();
  for (int i = 0; i < 20; ++i) {
    s->submit({op::put_document{{"policy", key(i), "{}"}}}, nullptr);
    EXPECT_EQ(s->load_documents("policy").size(), static_cast<std::size_t>(i + 1));  // no flush needed
  }
}

// A statement that fails (here: a trigger an operator added) fails its own batch — reported not
// durable, nothing of it left behind — and no other batch of the same group commit.
TEST_P(store_contract_test, failed_statement_fails_only_its_batch) {
  auto s = open();
  backend_->operator_sql(backend_->refuse_bad_documents());
  // Hold the writer in a completion so the next three batches are taken as one group.
  std::promise<void> release;
  auto held = release.get_future().share();
  s->submit({op::put_document{{"thing", "first", "{}"}}}, [held](bool) { held.wait(); });
  std::promise<bool> a, b, c;
  s->submit({op::put_document{{"thing", "a", "{}"}}}, [&](bool ok) { a.set_value(ok); });
  s->submit({op::put_document{{"thing", "b", "{}"}}, op::put_retained{m("b/r", "x")},
             op::put_document{{"thing", "bad", "{}"}}},
            [&](bool ok) { b.set_value(ok); });
  s->submit({op::put_document{{"thing", "c", "{}"}}}, [&](bool ok) { c.set_value(ok); });
  release.set_value();
  EXPECT_TRUE(a.get_future().get());
  EXPECT_FALSE(b.get_future().get());
  EXPECT_TRUE(c.get_future().get());
  std::vector<std::string> keys;
  for (auto& d : s->load_documents("thing")) keys.push_back(d.key);
  EXPECT_EQ(keys, (std::vector<std::string>{"a", "c", "first"}));
  EXPECT_TRUE(s->load().retained.empty());

  common::registry metrics;
  s->register_metrics(metrics);
  EXPECT_NE(metrics.render().find("fleetcore_storage_failed_batches_total 1\n"), std::string::npos)
      << metrics.render();
}

// A batch far larger than one round trip's worth of statements (PostgreSQL sends 256 at a time) is
// still all or nothing: a failure in its last part undoes what its first parts wrote.
TEST_P(store_contract_test, a_large_batch_is_all_or_nothing) {
  auto s = open();
  backend_->operator_sql(backend_->refuse_bad_documents());
  std::vector<operation> good, bad;
  for (int i = 0; i < 3000; ++i) {
    good.push_back(op::put_document{{"good", key(i), "{}"}});
    bad.push_back(op::put_document{{"bad", i == 2900 ? "bad" : key(i), "{}"}});
  }
  EXPECT_TRUE(s->submit_and_wait(std::move(good)));
  EXPECT_FALSE(s->submit_and_wait(std::move(bad)));
  EXPECT_EQ(s->load_documents("good").size(), 3000u);
  EXPECT_TRUE(s->load_documents("bad").empty());
  EXPECT_TRUE(s->submit_and_wait({op::put_document{{"after", "x", "{}"}}}));  // the store goes on
}

// Compare-and-set of a document: the writer that read the stored body wins; one that read an older
// body (another node wrote meanwhile) fails its batch and leaves nothing of it.
TEST_P(store_contract_test, swap_document_writes_only_over_the_expected_body) {
  auto s = open();
  EXPECT_FALSE(s->load_document("shadow", "t1").has_value());
  EXPECT_TRUE(s->submit_and_wait({op::swap_document{{"shadow", "t1", R"({"version":1})"}, std::nullopt}}));
  // A second creation finds the first one's body.
  EXPECT_FALSE(s->submit_and_wait({op::put_retained{m("lost/r", "x")},
                                   op::swap_document{{"shadow", "t1", R"({"version":1,"other":true})"}, std::nullopt}}));
  EXPECT_TRUE(s->load().retained.empty());  // the whole batch is undone
  EXPECT_TRUE(s->submit_and_wait({op::swap_document{{"shadow", "t1", R"({"version":2})"}, R"({"version":1})"}}));
  // A writer that read version 1 lost the race to the one above.
  EXPECT_FALSE(s->submit_and_wait({op::swap_document{{"shadow", "t1", R"({"version":2,"fork":1})"}, R"({"version":1})"}}));
  EXPECT_FALSE(s->submit_and_wait({op::swap_document{{"shadow", "t2", R"({"version":1})"}, R"({"version":0})"}}));
  auto d = s->load_document("shadow", "t1");
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->body, R"({"version":2})");
  EXPECT_FALSE(s->load_document("shadow", "t2").has_value());
  EXPECT_FALSE(s->load_document("thing", "t1").has_value());  // the kind is part of the key
  // A lost race is not a store failure.
  common::registry metrics;
  s->register_metrics(metrics);
  EXPECT_NE(metrics.render().find("fleetcore_storage_errors_total 0\n"), std::string::npos) << metrics.render();
}

INSTANTIATE_TEST_SUITE_P(backends, store_contract_test, ::testing::Values("sqlite", "postgresql"),
                         [](const auto& info) { return info.param; });

// --- PostgreSQL only ---

class postgres_store_test : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* server = std::getenv("FC_TEST_POSTGRES");
    if (!server || !*server) GTEST_SKIP() << "FC_TEST_POSTGRES not set";
    std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    db_ = std::make_unique<postgres_backend>(server, "pg_" + name);
  }
  std::unique_ptr<postgres_backend> db_;
};

TEST_F(postgres_store_test, a_newer_schema_is_refused) {
  db_->open().reset();  // creates the current schema
  db_->operator_sql("UPDATE fleetcore_schema SET version = 99");
  try {
    db_->open();
    FAIL() << "opened a schema newer than this build";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("schema version 99 is newer"), std::string::npos) << e.what();
  }
}

// A database of schema 1 (sessions without their node), as the previous release left it: nodes
// starting together migrate it once and keep its sessions.
TEST_F(postgres_store_test, schema_1_database_is_migrated) {
  db_->operator_sql(R"sql(
    CREATE TABLE fleetcore_schema(version BIGINT NOT NULL);
    INSERT INTO fleetcore_schema VALUES(1);
    CREATE TABLE retained(
      topic TEXT PRIMARY KEY, payload BYTEA NOT NULL, qos BIGINT NOT NULL, props BYTEA NOT NULL,
      expiry_at BIGINT NOT NULL);
    CREATE TABLE sessions(
      client_id TEXT PRIMARY KEY, incarnation BIGINT NOT NULL, expiry_interval BIGINT NOT NULL,
      protocol BIGINT NOT NULL, disconnected_at BIGINT NOT NULL);
    CREATE TABLE subscriptions(
      client_id TEXT NOT NULL, filter TEXT NOT NULL, options BIGINT NOT NULL, sub_id BIGINT NOT NULL,
      incarnation BIGINT NOT NULL, PRIMARY KEY(client_id, filter));
    CREATE TABLE session_messages(
      client_id TEXT NOT NULL, seq BIGINT NOT NULL, incarnation BIGINT NOT NULL, topic TEXT NOT NULL,
      payload BYTEA NOT NULL, qos BIGINT NOT NULL, retain BIGINT NOT NULL, props BYTEA NOT NULL,
      expiry_at BIGINT NOT NULL, sub_ids TEXT NOT NULL, packet_id BIGINT NOT NULL DEFAULT 0,
      released BIGINT NOT NULL DEFAULT 0, PRIMARY KEY(client_id, seq));
    CREATE TABLE session_inbound(
      client_id TEXT NOT NULL, packet_id BIGINT NOT NULL, incarnation BIGINT NOT NULL,
      PRIMARY KEY(client_id, packet_id));
    CREATE TABLE documents(
      kind TEXT NOT NULL, key TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY(kind, key));
    INSERT INTO sessions VALUES('dev', 3, 60, 5, 0);
    INSERT INTO subscriptions VALUES('dev', 'a/#', 1, 0, 3);
  )sql");
  auto opening = [this] { return db_->open(); };
  auto a = std::async(std::launch::async, opening);
  auto b = std::async(std::launch::async, opening);
  auto s = a.get();
  b.get().reset();
  EXPECT_EQ(db_->query("SELECT string_agg(version::text, ',') FROM fleetcore_schema"),
            std::to_string(postgres_store::schema_version));
  EXPECT_EQ(db_->query("SELECT data_type FROM information_schema.columns WHERE table_name = 'sessions' "
                       "AND column_name = 'node'"),
            "text");
  auto snap = s->load();
  ASSERT_EQ(snap.sessions.size(), 1u);
  EXPECT_EQ(snap.sessions[0].incarnation, 3u);
  EXPECT_EQ(snap.sessions[0].node, "");
  ASSERT_EQ(snap.sessions[0].subscriptions.size(), 1u);
  EXPECT_TRUE(s->submit_and_wait({op::adopt_session{"dev", 3, 4, "node-b"}}));
  snap = s->load();
  ASSERT_EQ(snap.sessions.size(), 1u);
  EXPECT_EQ(snap.sessions[0].node, "node-b");
  EXPECT_EQ(snap.sessions[0].subscriptions.size(), 1u);
}

TEST_F(postgres_store_test, unreachable_server_is_a_clear_error) {
  try {
    postgres_store s("host=/nonexistent port=1 user=postgres connect_timeout=2");
    FAIL() << "connected to nothing";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot connect to postgresql"), std::string::npos) << e.what();
  }
}

// The connection is lost while idle (an administrator ends it, as a server restart would): the next
// batch reconnects and commits, and what was acknowledged before is still there.
TEST_F(postgres_store_test, a_connection_lost_while_idle_is_reestablished_by_the_next_batch) {
  auto s = db_->open();
  EXPECT_TRUE(s->submit_and_wait({op::put_document{{"thing", "before", "{}"}}}));
  db_->operator_sql(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
      "AND pid <> pg_backend_pid()");
  EXPECT_TRUE(s->submit_and_wait({op::put_document{{"thing", "after", "{}"}}}));
  std::vector<std::string> keys;
  for (auto& d : s->load_documents("thing")) keys.push_back(d.key);
  EXPECT_EQ(keys, (std::vector<std::string>{"after", "before"}));
}

// The same for a read, the first thing a node that was idle through a restart of the server may do
// (a session taken over from another node): it must not fail while the server is back.
TEST_F(postgres_store_test, a_read_reconnects_after_the_server_dropped_the_connection) {
  auto s = db_->open();
  EXPECT_TRUE(s->submit_and_wait({op::put_session{"dev", 4, 60, 5, 0, "n1"}, op::put_document{{"thing", "t", "{}"}}}));
  auto kill_sessions = [&] {
    db_->operator_sql(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid()");
  };
  kill_sessions();
  auto [record, ok] = read_session(*s, "dev");
  EXPECT_TRUE(ok);
  ASSERT_TRUE(record);
  EXPECT_EQ(record->incarnation, 4u);
  kill_sessions();
  EXPECT_EQ(s->load_documents("thing").size(), 1u);
  kill_sessions();
  EXPECT_EQ(s->load().sessions.size(), 1u);
}

}  // namespace
}  // namespace fleetcore::storage
