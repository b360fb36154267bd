#include "storage/sqlite_store.hpp"

#include "common/log.hpp"
#include "storage/subscription_ids.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <future>
#include <memory>
#include <stdexcept>
#include <unordered_map>
#include <sys/stat.h>

namespace fleetcore::storage {
namespace {

constexpr const char* schema = R"sql(
CREATE TABLE IF NOT EXISTS retained(
  topic TEXT PRIMARY KEY, payload BLOB NOT NULL, qos INTEGER NOT NULL, props BLOB NOT NULL,
  expiry_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS sessions(
  client_id TEXT PRIMARY KEY, incarnation INTEGER NOT NULL, expiry_interval INTEGER NOT NULL,
  protocol INTEGER NOT NULL, disconnected_at INTEGER NOT NULL, node TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS subscriptions(
  client_id TEXT NOT NULL, filter TEXT NOT NULL, options INTEGER NOT NULL, sub_id INTEGER NOT NULL,
  incarnation INTEGER NOT NULL, PRIMARY KEY(client_id, filter)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS session_messages(
  client_id TEXT NOT NULL, seq INTEGER NOT NULL, incarnation INTEGER NOT NULL, topic TEXT NOT NULL,
  payload BLOB NOT NULL, qos INTEGER NOT NULL, retain INTEGER NOT NULL, props BLOB NOT NULL,
  expiry_at INTEGER NOT NULL, sub_ids TEXT NOT NULL, packet_id INTEGER NOT NULL DEFAULT 0,
  released INTEGER NOT NULL DEFAULT 0, PRIMARY KEY(client_id, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS session_inbound(
  client_id TEXT NOT NULL, packet_id INTEGER NOT NULL, incarnation INTEGER NOT NULL,
  PRIMARY KEY(client_id, packet_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS documents(
  kind TEXT NOT NULL, key TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY(kind, key)) WITHOUT ROWID;
PRAGMA user_version = 4;
)sql";

/// Version 2 -> 3: the packet id a queued message went out with.
constexpr const char* add_packet_ids = R"sql(
ALTER TABLE session_messages ADD COLUMN packet_id INTEGER NOT NULL DEFAULT 0;
ALTER TABLE session_messages ADD COLUMN released INTEGER NOT NULL DEFAULT 0;
)sql";

/// Version 3 -> 4: the cluster node holding each session (none on a single node).
constexpr const char* add_session_node = R"sql(
ALTER TABLE sessions ADD COLUMN node TEXT NOT NULL DEFAULT '';
)sql";

// Statement slots, prepared once.
enum stmt : std::size_t {
  put_retained,
  delete_retained,
  session_clear_subs,
  session_clear_msgs,
  session_put,
  session_touch,
  session_delete,
  session_delete_subs,
  session_delete_msgs,
  session_clear_inbound,
  session_delete_inbound,
  adopt_subs,
  adopt_msgs,
  adopt_inbound,
  session_adopt,
  sub_put,
  sub_delete,
  msg_put,
  msg_delete,
  msg_send,
  inbound_put,
  inbound_delete,
  doc_put,
  doc_delete,
  doc_swap,
  doc_create,
  begin,
  commit,
  rollback,
  savepoint,
  release,
  rollback_to,
  stmt_count
};

constexpr const char* sql_text[stmt_count] = {
    "INSERT OR REPLACE INTO retained VALUES(?1,?2,?3,?4,?5)",
    "DELETE FROM retained WHERE topic=?1",
    "DELETE FROM subscriptions WHERE client_id=?1",
    "DELETE FROM session_messages WHERE client_id=?1",
    "INSERT OR REPLACE INTO sessions(client_id, incarnation, expiry_interval, protocol, disconnected_at, node) "
    "VALUES(?1,?2,?3,?4,?5,?6)",
    "UPDATE sessions SET expiry_interval=?3, disconnected_at=?4 WHERE client_id=?1 AND incarnation=?2",
    "DELETE FROM sessions WHERE client_id=?1 AND incarnation=?2",
    "DELETE FROM subscriptions WHERE client_id=?1 AND incarnation=?2",
    "DELETE FROM session_messages WHERE client_id=?1 AND incarnation=?2",
    "DELETE FROM session_inbound WHERE client_id=?1",
    "DELETE FROM session_inbound WHERE client_id=?1 AND incarnation=?2",
    // The session's own row moves last: until then it says whether `from` is still the stored one.
    "UPDATE subscriptions SET incarnation=?3 WHERE client_id=?1 AND incarnation=?2 "
    "AND EXISTS(SELECT 1 FROM sessions WHERE client_id=?1 AND incarnation=?2)",
    "UPDATE session_messages SET incarnation=?3 WHERE client_id=?1 AND incarnation=?2 "
    "AND EXISTS(SELECT 1 FROM sessions WHERE client_id=?1 AND incarnation=?2)",
    "UPDATE session_inbound SET incarnation=?3 WHERE client_id=?1 AND incarnation=?2 "
    "AND EXISTS(SELECT 1 FROM sessions WHERE client_id=?1 AND incarnation=?2)",
    "UPDATE sessions SET incarnation=?3, node=?4 WHERE client_id=?1 AND incarnation=?2",
    "INSERT OR REPLACE INTO subscriptions SELECT ?1,?2,?3,?4,?5 "
    "WHERE EXISTS(SELECT 1 FROM sessions WHERE client_id=?1 AND incarnation=?5)",
    "DELETE FROM subscriptions WHERE client_id=?1 AND filter=?2 AND incarnation=?3",
    "INSERT OR REPLACE INTO session_messages SELECT ?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,0,0 "
    "WHERE EXISTS(SELECT 1 FROM sessions WHERE client_id=?1 AND incarnation=?3)",
    "DELETE FROM session_messages WHERE client_id=?1 AND seq=?2 AND incarnation=?3",
    "UPDATE session_messages SET packet_id=?3, released=?4 WHERE client_id=?1 AND seq=?2 AND incarnation=?5",
    "INSERT OR REPLACE INTO session_inbound SELECT ?1,?2,?3 "
    "WHERE EXISTS(SELECT 1 FROM sessions WHERE client_id=?1 AND incarnation=?3)",
    "DELETE FROM session_inbound WHERE client_id=?1 AND packet_id=?2 AND incarnation=?3",
    "INSERT OR REPLACE INTO documents VALUES(?1,?2,?3)",
    "DELETE FROM documents WHERE kind=?1 AND key=?2",
    "UPDATE documents SET body=?3 WHERE kind=?1 AND key=?2 AND body=?4",
    "INSERT OR IGNORE INTO documents VALUES(?1,?2,?3)",
    "BEGIN",
    "COMMIT",
    "ROLLBACK",
    "SAVEPOINT batch",
    "RELEASE batch",
    "ROLLBACK TO batch",
};

using detail::join_ids;
using detail::split_ids;

/// Binds positional parameters and steps a statement once.
class binder {
 public:
  explicit binder(sqlite3_stmt* s) : s_(s) {}
  ~binder() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  binder& text(std::string_view v) {
    sqlite3_bind_text(s_, ++i_, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
    return *this;
  }
  binder& blob(std::string_view v) {
    sqlite3_bind_blob(s_, ++i_, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
    return *this;
  }
  binder& integer(std::int64_t v) {
    sqlite3_bind_int64(s_, ++i_, v);
    return *this;
  }
  int step() { return sqlite3_step(s_); }

 private:
  sqlite3_stmt* s_;
  int i_ = 0;
};

std::string column_string(sqlite3_stmt* s, int col) {
  const void* p = sqlite3_column_blob(s, col);
  int n = sqlite3_column_bytes(s, col);
  return p ? std::string(static_cast<const char*>(p), static_cast<std::size_t>(n)) : std::string();
}

/// Steps `s` (owned from here on) to its end, calling `row` for each result row. A read that stops
/// before the end throws: a caller must never mistake a failed read for an empty table.
template <class Row>
void each_row(sqlite3* db, sqlite3_stmt* s, Row&& row) {
  std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> owned(s, sqlite3_finalize);
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) row(s);
  if (rc != SQLITE_DONE) throw std::runtime_error(std::string("sqlite read: ") + sqlite3_errmsg(db));
}

}  // namespace

sqlite_store::sqlite_store(const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  ::chmod(dir.c_str(), 0700);
  auto path = dir / "fleetcore.db";
  // NOMUTEX: only one thread at a time ever uses the connection — this one until the writer starts
  // (thread creation orders it), then the writer alone until it is joined.
  if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                      nullptr) != SQLITE_OK) {
    std::string err = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    throw std::runtime_error("cannot open " + path.string() + ": " + err);
  }
  ::chmod(path.c_str(), 0600);
  try {
    exec("PRAGMA journal_mode=WAL");
    exec("PRAGMA synchronous=FULL");
    // Each migration is chosen by what the file lacks, so a database of any older version takes
    // every step it needs, in order, before the schema (and its version) is written.
    if (lacks_column("session_messages", "packet_id")) exec(add_packet_ids);
    if (lacks_column("sessions", "node")) exec(add_session_node);
    exec(schema);
    statements_.resize(stmt_count);
    for (std::size_t i = 0; i < stmt_count; ++i) statements_[i] = prepare(sql_text[i]);
  } catch (...) {
    for (auto* s : statements_) sqlite3_finalize(s);
    sqlite3_close(db_);
    throw;
  }
  start();
}

sqlite_store::~sqlite_store() {
  stop();
  for (auto* s : statements_) sqlite3_finalize(s);
  sqlite3_close(db_);
}

void sqlite_store::exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown";
    sqlite3_free(err);
    throw std::runtime_error(std::string("sqlite: ") + msg);
  }
}

bool sqlite_store::lacks_column(const char* table, const char* column) {
  bool exists = false, found = false;
  auto* s = prepare("SELECT name FROM pragma_table_info(?1)");
  sqlite3_bind_text(s, 1, table, -1, SQLITE_STATIC);
  each_row(db_, s, [&](sqlite3_stmt* r) {
    exists = true;
    found = found || column_string(r, 0) == column;
  });
  return exists && !found;
}

sqlite3_stmt* sqlite_store::prepare(const char* sql) {
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr) != SQLITE_OK)
    throw std::runtime_error(std::string("sqlite prepare: ") + sqlite3_errmsg(db_));
  return s;
}

snapshot sqlite_store::read_snapshot() {
  snapshot snap;
  each_row(db_, prepare("SELECT topic, payload, qos, props, expiry_at FROM retained"), [&](sqlite3_stmt* s) {
    stored_message m;
    m.topic = column_string(s, 0);
    m.payload = column_string(s, 1);
    m.qos = static_cast<std::uint8_t>(sqlite3_column_int(s, 2));
    m.retain = true;
    m.props = column_string(s, 3);
    m.expiry_at_ms = sqlite3_column_int64(s, 4);
    snap.retained.push_back(std::move(m));
  });
  read_sessions({}, snap);
  return snap;
}

std::optional<session_record> sqlite_store::read_session(const std::string& client_id) {
  snapshot snap;
  read_sessions({session_scope::client, &client_id}, snap);
  if (snap.sessions.empty()) return std::nullopt;
  return std::move(snap.sessions.front());
}

std::vector<session_record> sqlite_store::read_node_sessions(const std::string& node) {
  snapshot snap;
  read_sessions({session_scope::node, &node}, snap);
  return std::move(snap.sessions);
}

void sqlite_store::read_sessions(session_scope scope, snapshot& snap) {
  // Every query reads all clients, only one client's rows (its primary key prefix), or the rows of
  // the clients whose session a node holds.
  auto query = [&](std::string sql, const char* order) {
    sql += scope.where(sql.substr(sql.rfind(' ') + 1), "?1");
    sql += order;
    auto* s = prepare(sql.c_str());
    if (scope.value) sqlite3_bind_text(s, 1, scope.value->data(), static_cast<int>(scope.value->size()), SQLITE_TRANSIENT);
    return s;
  };

  std::unordered_map<std::string, std::size_t> index;
  each_row(db_, query("SELECT client_id, incarnation, expiry_interval, protocol, disconnected_at, node FROM sessions", ""),
           [&](sqlite3_stmt* s) {
             session_record r;
             r.client_id = column_string(s, 0);
             r.incarnation = static_cast<std::uint64_t>(sqlite3_column_int64(s, 1));
             r.expiry_interval = static_cast<std::uint32_t>(sqlite3_column_int64(s, 2));
             r.protocol = static_cast<std::uint8_t>(sqlite3_column_int(s, 3));
             r.disconnected_at_ms = sqlite3_column_int64(s, 4);
             r.node = column_string(s, 5);
             snap.max_incarnation = std::max(snap.max_incarnation, r.incarnation);
             index[r.client_id] = snap.sessions.size();
             snap.sessions.push_back(std::move(r));
           });
  // Rows of another incarnation than the stored session's belong to no session.
  auto session_of = [&](sqlite3_stmt* s, int incarnation_col) -> session_record* {
    auto it = index.find(column_string(s, 0));
    if (it == index.end()) return nullptr;
    auto& sess = snap.sessions[it->second];
    return static_cast<std::uint64_t>(sqlite3_column_int64(s, incarnation_col)) == sess.incarnation ? &sess : nullptr;
  };

  each_row(db_, query("SELECT client_id, filter, options, sub_id, incarnation FROM subscriptions", ""),
           [&](sqlite3_stmt* s) {
             if (auto* sess = session_of(s, 4))
               sess->subscriptions.push_back({column_string(s, 1), static_cast<std::uint8_t>(sqlite3_column_int(s, 2)),
                                              static_cast<std::uint32_t>(sqlite3_column_int64(s, 3))});
           });

  each_row(db_,
           query("SELECT client_id, seq, incarnation, topic, payload, qos, retain, props, expiry_at, sub_ids, "
                 "packet_id, released FROM session_messages",
                 " ORDER BY client_id, seq"),
           [&](sqlite3_stmt* s) {
             auto seq = static_cast<std::uint64_t>(sqlite3_column_int64(s, 1));
             snap.max_seq = std::max(snap.max_seq, seq);
             auto* sess = session_of(s, 2);
             if (!sess) return;
             queued_record q;
             q.seq = seq;
             q.msg.topic = column_string(s, 3);
             q.msg.payload = column_string(s, 4);
             q.msg.qos = static_cast<std::uint8_t>(sqlite3_column_int(s, 5));
             q.msg.retain = sqlite3_column_int(s, 6) != 0;
             q.msg.props = column_string(s, 7);
             q.msg.expiry_at_ms = sqlite3_column_int64(s, 8);
             q.subscription_ids = split_ids(column_string(s, 9));
             q.packet_id = static_cast<std::uint16_t>(sqlite3_column_int(s, 10));
             q.released = sqlite3_column_int(s, 11) != 0;
             sess->queue.push_back(std::move(q));
           });

  each_row(db_, query("SELECT client_id, packet_id, incarnation FROM session_inbound", " ORDER BY client_id, packet_id"),
           [&](sqlite3_stmt* s) {
             if (auto* sess = session_of(s, 2))
               sess->inbound_qos2.push_back(static_cast<std::uint16_t>(sqlite3_column_int(s, 1)));
           });
}

std::vector<document> sqlite_store::read_documents(const std::string& kind, const std::string* key) {
  std::vector<document> docs;
  auto* s = prepare(key ? "SELECT kind, key, body FROM documents WHERE kind=?1 AND key=?2"
                        : "SELECT kind, key, body FROM documents WHERE kind=?1 ORDER BY key");
  sqlite3_bind_text(s, 1, kind.data(), static_cast<int>(kind.size()), SQLITE_TRANSIENT);
  if (key) sqlite3_bind_text(s, 2, key->data(), static_cast<int>(key->size()), SQLITE_TRANSIENT);
  each_row(db_, s, [&](sqlite3_stmt* r) { docs.push_back({column_string(r, 0), column_string(r, 1), column_string(r, 2)}); });
  return docs;
}

bool sqlite_store::step(std::size_t statement) {
  int rc = binder(statements_[statement]).step();
  if (rc == SQLITE_DONE) return true;
  count_error();
  FC_LOG_ERROR("storage.write_failed", "sql=\"{}\" rc={} err=\"{}\"", sql_text[statement], rc, sqlite3_errmsg(db_));
  return false;
}

bool sqlite_store::apply(const operation& operation) {
  auto& st = statements_;
  auto check = [this](int rc) {
    if (rc == SQLITE_DONE) return true;
    count_error();
    FC_LOG_ERROR("storage.write_failed", "rc={} err=\"{}\"", rc, sqlite3_errmsg(db_));
    return false;
  };
  count_op();
  return std::visit(
      [&](const auto& o) {
        using T = std::decay_t<decltype(o)>;
        if constexpr (std::is_same_v<T, op::put_retained>) {
          return check(binder(st[put_retained]).text(o.msg.topic).blob(o.msg.payload).integer(o.msg.qos)
                           .blob(o.msg.props).integer(o.msg.expiry_at_ms).step());
        } else if constexpr (std::is_same_v<T, op::delete_retained>) {
          return check(binder(st[delete_retained]).text(o.topic).step());
        } else if constexpr (std::is_same_v<T, op::put_session>) {
          return check(binder(st[session_clear_subs]).text(o.client_id).step()) &&
                 check(binder(st[session_clear_msgs]).text(o.client_id).step()) &&
                 check(binder(st[session_clear_inbound]).text(o.client_id).step()) &&
                 check(binder(st[session_put]).text(o.client_id).integer(static_cast<std::int64_t>(o.incarnation))
                           .integer(o.expiry_interval).integer(o.protocol).integer(o.disconnected_at_ms)
                           .text(o.node).step());
        } else if constexpr (std::is_same_v<T, op::touch_session>) {
          return check(binder(st[session_touch]).text(o.client_id).integer(static_cast<std::int64_t>(o.incarnation))
                           .integer(o.expiry_interval).integer(o.disconnected_at_ms).step());
        } else if constexpr (std::is_same_v<T, op::delete_session>) {
          auto inc = static_cast<std::int64_t>(o.incarnation);
          return check(binder(st[session_delete]).text(o.client_id).integer(inc).step()) &&
                 check(binder(st[session_delete_subs]).text(o.client_id).integer(inc).step()) &&
                 check(binder(st[session_delete_msgs]).text(o.client_id).integer(inc).step()) &&
                 check(binder(st[session_delete_inbound]).text(o.client_id).integer(inc).step());
        } else if constexpr (std::is_same_v<T, op::adopt_session>) {
          auto from = static_cast<std::int64_t>(o.from), to = static_cast<std::int64_t>(o.to);
          if (!(check(binder(st[adopt_subs]).text(o.client_id).integer(from).integer(to).step()) &&
                check(binder(st[adopt_msgs]).text(o.client_id).integer(from).integer(to).step()) &&
                check(binder(st[adopt_inbound]).text(o.client_id).integer(from).integer(to).step()) &&
                check(binder(st[session_adopt]).text(o.client_id).integer(from).integer(to).text(o.node).step())))
            return false;
          if (sqlite3_changes(db_) == 1) return true;
          FC_LOG_DEBUG("storage.session_moved", "client={:q}", common::untrusted(o.client_id));
          return false;
        } else if constexpr (std::is_same_v<T, op::put_subscription>) {
          return check(binder(st[sub_put]).text(o.client_id).text(o.sub.filter).integer(o.sub.options)
                           .integer(o.sub.subscription_id).integer(static_cast<std::int64_t>(o.incarnation)).step());
        } else if constexpr (std::is_same_v<T, op::delete_subscription>) {
          return check(binder(st[sub_delete]).text(o.client_id).text(o.filter)
                           .integer(static_cast<std::int64_t>(o.incarnation)).step());
        } else if constexpr (std::is_same_v<T, op::put_message>) {
          const auto& m = o.rec.msg;
          std::string ids = join_ids(o.rec.subscription_ids);
          return check(binder(st[msg_put]).text(o.client_id).integer(static_cast<std::int64_t>(o.rec.seq))
                           .integer(static_cast<std::int64_t>(o.incarnation)).text(m.topic).blob(m.payload)
                           .integer(m.qos).integer(m.retain ? 1 : 0).blob(m.props).integer(m.expiry_at_ms)
                           .text(ids).step());
        } else if constexpr (std::is_same_v<T, op::delete_message>) {
          return check(binder(st[msg_delete]).text(o.client_id).integer(static_cast<std::int64_t>(o.seq))
                           .integer(static_cast<std::int64_t>(o.incarnation)).step());
        } else if constexpr (std::is_same_v<T, op::send_message>) {
          return check(binder(st[msg_send]).text(o.client_id).integer(static_cast<std::int64_t>(o.seq))
                           .integer(o.packet_id).integer(o.released ? 1 : 0)
                           .integer(static_cast<std::int64_t>(o.incarnation)).step());
        } else if constexpr (std::is_same_v<T, op::put_inbound_qos2>) {
          return check(binder(st[inbound_put]).text(o.client_id).integer(o.packet_id)
                           .integer(static_cast<std::int64_t>(o.incarnation)).step());
        } else if constexpr (std::is_same_v<T, op::delete_inbound_qos2>) {
          return check(binder(st[inbound_delete]).text(o.client_id).integer(o.packet_id)
                           .integer(static_cast<std::int64_t>(o.incarnation)).step());
        } else if constexpr (std::is_same_v<T, op::put_document>) {
          return check(binder(st[doc_put]).text(o.doc.kind).text(o.doc.key).text(o.doc.body).step());
        } else if constexpr (std::is_same_v<T, op::swap_document>) {
          binder b(st[o.expected ? doc_swap : doc_create]);
          b.text(o.doc.kind).text(o.doc.key).text(o.doc.body);
          if (o.expected) b.text(*o.expected);
          if (!check(b.step())) return false;
          if (sqlite3_changes(db_) == 1) return true;
          FC_LOG_DEBUG("storage.document_changed", "kind={} key={:q}", o.doc.kind, common::untrusted(o.doc.key));
          return false;
        } else {
          static_assert(std::is_same_v<T, op::delete_document>);
          return check(binder(st[doc_delete]).text(o.kind).text(o.key).step());
        }
      },
      operation);
}

bool sqlite_store::begin() { return step(stmt::begin); }

bool sqlite_store::in_transaction() { return !sqlite3_get_autocommit(db_); }

bool sqlite_store::apply_batch(const std::vector<operation>& ops) {
  if (!step(savepoint)) return false;
  bool ok = true;
  for (const auto& o : ops)
    if (!(ok = apply(o))) break;
  if (ok && step(release)) return true;
  // Undo this batch only. An error that already rolled back the whole transaction (SQLite does for
  // some I/O and full-disk errors) left no savepoint; if the savepoint cannot be undone, give up the
  // whole transaction rather than commit half a batch. Either way the caller sees autocommit.
  if (!sqlite3_get_autocommit(db_) && !(step(rollback_to) && step(release))) step(rollback);
  return false;
}

bool sqlite_store::commit() {
  if (step(stmt::commit)) return true;  // logged by step()
  if (!sqlite3_get_autocommit(db_)) step(rollback);
  return false;
}

}  // namespace fleetcore::storage
