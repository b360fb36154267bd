#include "storage/sqlite_store.hpp"

#include "common/log.hpp"

#include <sqlite3.h>

#include <stdexcept>
#include <sys/stat.h>

namespace fleetcore::storage {
namespace {

constexpr const char* schema = R"sql(
CREATE TABLE IF NOT EXISTS retained(
  topic TEXT PRIMARY KEY, payload BLOB NOT NULL, qos INTEGER NOT NULL, props BLOB NOT NULL,
  expiry_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS sessions(
  client_id TEXT PRIMARY KEY, incarnation INTEGER NOT NULL, expiry_interval INTEGER NOT NULL,
  protocol INTEGER NOT NULL, disconnected_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS subscriptions(
  client_id TEXT NOT NULL, filter TEXT NOT NULL, options INTEGER NOT NULL, sub_id INTEGER NOT NULL,
  incarnation INTEGER NOT NULL, PRIMARY KEY(client_id, filter)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS session_messages(
  client_id TEXT NOT NULL, seq INTEGER NOT NULL, incarnation INTEGER NOT NULL, topic TEXT NOT NULL,
  payload BLOB NOT NULL, qos INTEGER NOT NULL, retain INTEGER NOT NULL, props BLOB NOT NULL,
  expiry_at INTEGER NOT NULL, sub_ids TEXT NOT NULL, PRIMARY KEY(client_id, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS documents(
  kind TEXT NOT NULL, key TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY(kind, key)) WITHOUT ROWID;
PRAGMA user_version = 2;
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
  sub_put,
  sub_delete,
  msg_put,
  msg_delete,
  doc_put,
  doc_delete,
  begin,
  commit,
  rollback,
  stmt_count
};

constexpr const char* sql_text[stmt_count] = {
    "INSERT OR REPLACE INTO retained VALUES(?1,?2,?3,?4,?5)",
    "DELETE FROM retained WHERE topic=?1",
    "DELETE FROM subscriptions WHERE client_id=?1",
    "DELETE FROM session_messages WHERE client_id=?1",
    "INSERT OR REPLACE INTO sessions VALUES(?1,?2,?3,?4,?5)",
    "UPDATE sessions SET expiry_interval=?3, disconnected_at=?4 WHERE client_id=?1 AND incarnation=?2",
    "DELETE FROM sessions WHERE client_id=?1 AND incarnation=?2",
    "DELETE FROM subscriptions WHERE client_id=?1 AND incarnation=?2",
    "DELETE FROM session_messages WHERE client_id=?1 AND incarnation=?2",
    "INSERT OR REPLACE INTO subscriptions SELECT ?1,?2,?3,?4,?5 "
    "WHERE EXISTS(SELECT 1 FROM sessions WHERE client_id=?1 AND incarnation=?5)",
    "DELETE FROM subscriptions WHERE client_id=?1 AND filter=?2 AND incarnation=?3",
    "INSERT OR REPLACE INTO session_messages SELECT ?1,?2,?3,?4,?5,?6,?7,?8,?9,?10 "
    "WHERE EXISTS(SELECT 1 FROM sessions WHERE client_id=?1 AND incarnation=?3)",
    "DELETE FROM session_messages WHERE client_id=?1 AND seq=?2",
    "INSERT OR REPLACE INTO documents VALUES(?1,?2,?3)",
    "DELETE FROM documents WHERE kind=?1 AND key=?2",
    "BEGIN",
    "COMMIT",
    "ROLLBACK",
};

std::string join_ids(const std::vector<std::uint32_t>& ids) {
  std::string s;
  for (auto id : ids) {
    if (!s.empty()) s += ',';
    s += std::to_string(id);
  }
  return s;
}

std::vector<std::uint32_t> split_ids(std::string_view s) {
  std::vector<std::uint32_t> ids;
  std::uint32_t v = 0;
  bool any = false;
  for (char c : s) {
    if (c == ',') {
      if (any) ids.push_back(v);
      v = 0;
      any = false;
    } else if (c >= '0' && c <= '9') {
      v = v * 10 + static_cast<std::uint32_t>(c - '0');
      any = true;
    }
  }
  if (any) ids.push_back(v);
  return ids;
}

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

}  // namespace

sqlite_store::sqlite_store(const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  ::chmod(dir.c_str(), 0700);
  auto path = dir / "fleetcore.db";
  if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                      nullptr) != SQLITE_OK) {
    std::string err = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    throw std::runtime_error("cannot open " + path.string() + ": " + err);
  }
  ::chmod(path.c_str(), 0600);
  exec("PRAGMA journal_mode=WAL");
  exec("PRAGMA synchronous=FULL");
  exec(schema);
  statements_.resize(stmt_count);
  for (std::size_t i = 0; i < stmt_count; ++i) statements_[i] = prepare(sql_text[i]);
  thread_ = std::thread([this] { run(); });
}

sqlite_store::~sqlite_store() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
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

sqlite3_stmt* sqlite_store::prepare(const char* sql) {
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr) != SQLITE_OK)
    throw std::runtime_error(std::string("sqlite prepare: ") + sqlite3_errmsg(db_));
  return s;
}

snapshot sqlite_store::load() {
  snapshot snap;
  auto* s = prepare("SELECT topic, payload, qos, props, expiry_at FROM retained");
  while (sqlite3_step(s) == SQLITE_ROW) {
    stored_message m;
    m.topic = column_string(s, 0);
    m.payload = column_string(s, 1);
    m.qos = static_cast<std::uint8_t>(sqlite3_column_int(s, 2));
    m.retain = true;
    m.props = column_string(s, 3);
    m.expiry_at_ms = sqlite3_column_int64(s, 4);
    snap.retained.push_back(std::move(m));
  }
  sqlite3_finalize(s);

  std::unordered_map<std::string, std::size_t> index;
  s = prepare("SELECT client_id, incarnation, expiry_interval, protocol, disconnected_at FROM sessions");
  while (sqlite3_step(s) == SQLITE_ROW) {
    session_record r;
    r.client_id = column_string(s, 0);
    r.incarnation = static_cast<std::uint64_t>(sqlite3_column_int64(s, 1));
    r.expiry_interval = static_cast<std::uint32_t>(sqlite3_column_int64(s, 2));
    r.protocol = static_cast<std::uint8_t>(sqlite3_column_int(s, 3));
    r.disconnected_at_ms = sqlite3_column_int64(s, 4);
    snap.max_incarnation = std::max(snap.max_incarnation, r.incarnation);
    index[r.client_id] = snap.sessions.size();
    snap.sessions.push_back(std::move(r));
  }
  sqlite3_finalize(s);

  s = prepare("SELECT client_id, filter, options, sub_id, incarnation FROM subscriptions");
  while (sqlite3_step(s) == SQLITE_ROW) {
    auto it = index.find(column_string(s, 0));
    if (it == index.end()) continue;
    auto& sess = snap.sessions[it->second];
    if (static_cast<std::uint64_t>(sqlite3_column_int64(s, 4)) != sess.incarnation) continue;
    sess.subscriptions.push_back({column_string(s, 1), static_cast<std::uint8_t>(sqlite3_column_int(s, 2)),
                                  static_cast<std::uint32_t>(sqlite3_column_int64(s, 3))});
  }
  sqlite3_finalize(s);

  s = prepare(
      "SELECT client_id, seq, incarnation, topic, payload, qos, retain, props, expiry_at, sub_ids "
      "FROM session_messages ORDER BY client_id, seq");
  while (sqlite3_step(s) == SQLITE_ROW) {
    auto seq = static_cast<std::uint64_t>(sqlite3_column_int64(s, 1));
    snap.max_seq = std::max(snap.max_seq, seq);
    auto it = index.find(column_string(s, 0));
    if (it == index.end()) continue;
    auto& sess = snap.sessions[it->second];
    if (static_cast<std::uint64_t>(sqlite3_column_int64(s, 2)) != sess.incarnation) continue;
    queued_record q;
    q.seq = seq;
    q.msg.topic = column_string(s, 3);
    q.msg.payload = column_string(s, 4);
    q.msg.qos = static_cast<std::uint8_t>(sqlite3_column_int(s, 5));
    q.msg.retain = sqlite3_column_int(s, 6) != 0;
    q.msg.props = column_string(s, 7);
    q.msg.expiry_at_ms = sqlite3_column_int64(s, 8);
    q.subscription_ids = split_ids(column_string(s, 9));
    sess.queue.push_back(std::move(q));
  }
  sqlite3_finalize(s);
  return snap;
}

std::vector<document> sqlite_store::load_documents(const std::string& kind) {
  std::vector<document> docs;
  auto* s = prepare("SELECT kind, key, body FROM documents WHERE kind=?1 ORDER BY key");
  sqlite3_bind_text(s, 1, kind.data(), static_cast<int>(kind.size()), SQLITE_TRANSIENT);
  while (sqlite3_step(s) == SQLITE_ROW) docs.push_back({column_string(s, 0), column_string(s, 1), column_string(s, 2)});
  sqlite3_finalize(s);
  return docs;
}

void sqlite_store::submit(std::vector<operation> ops, std::function<void(bool)> done) {
  {
    std::lock_guard lock(mutex_);
    queue_.push_back({std::move(ops), std::move(done)});
    ++submitted_;
  }
  wake_.notify_one();
}

void sqlite_store::flush() {
  std::unique_lock lock(mutex_);
  std::uint64_t target = submitted_;
  flushed_.wait(lock, [&] { return committed_ >= target; });
}

void sqlite_store::apply(const operation& operation) {
  auto& st = statements_;
  auto check = [this](int rc) {
    if (rc != SQLITE_DONE) {
      errors_.inc();
      FC_LOG_ERROR("storage.write_failed", "rc={} err=\"{}\"", rc, sqlite3_errmsg(db_));
    }
  };
  std::visit(
      [&](const auto& o) {
        using T = std::decay_t<decltype(o)>;
        if constexpr (std::is_same_v<T, op::put_retained>) {
          check(binder(st[put_retained]).text(o.msg.topic).blob(o.msg.payload).integer(o.msg.qos)
                    .blob(o.msg.props).integer(o.msg.expiry_at_ms).step());
        } else if constexpr (std::is_same_v<T, op::delete_retained>) {
          check(binder(st[delete_retained]).text(o.topic).step());
        } else if constexpr (std::is_same_v<T, op::put_session>) {
          check(binder(st[session_clear_subs]).text(o.client_id).step());
          check(binder(st[session_clear_msgs]).text(o.client_id).step());
          check(binder(st[session_put]).text(o.client_id).integer(static_cast<std::int64_t>(o.incarnation))
                    .integer(o.expiry_interval).integer(o.protocol).integer(o.disconnected_at_ms).step());
        } else if constexpr (std::is_same_v<T, op::touch_session>) {
          check(binder(st[session_touch]).text(o.client_id).integer(static_cast<std::int64_t>(o.incarnation))
                    .integer(o.expiry_interval).integer(o.disconnected_at_ms).step());
        } else if constexpr (std::is_same_v<T, op::delete_session>) {
          auto inc = static_cast<std::int64_t>(o.incarnation);
          check(binder(st[session_delete]).text(o.client_id).integer(inc).step());
          check(binder(st[session_delete_subs]).text(o.client_id).integer(inc).step());
          check(binder(st[session_delete_msgs]).text(o.client_id).integer(inc).step());
        } else if constexpr (std::is_same_v<T, op::put_subscription>) {
          check(binder(st[sub_put]).text(o.client_id).text(o.sub.filter).integer(o.sub.options)
                    .integer(o.sub.subscription_id).integer(static_cast<std::int64_t>(o.incarnation)).step());
        } else if constexpr (std::is_same_v<T, op::delete_subscription>) {
          check(binder(st[sub_delete]).text(o.client_id).text(o.filter)
                    .integer(static_cast<std::int64_t>(o.incarnation)).step());
        } else if constexpr (std::is_same_v<T, op::put_message>) {
          const auto& m = o.rec.msg;
          std::string ids = join_ids(o.rec.subscription_ids);
          check(binder(st[msg_put]).text(o.client_id).integer(static_cast<std::int64_t>(o.rec.seq))
                    .integer(static_cast<std::int64_t>(o.incarnation)).text(m.topic).blob(m.payload)
                    .integer(m.qos).integer(m.retain ? 1 : 0).blob(m.props).integer(m.expiry_at_ms)
                    .text(ids).step());
        } else if constexpr (std::is_same_v<T, op::delete_message>) {
          check(binder(st[msg_delete]).text(o.client_id).integer(static_cast<std::int64_t>(o.seq)).step());
        } else if constexpr (std::is_same_v<T, op::put_document>) {
          check(binder(st[doc_put]).text(o.doc.kind).text(o.doc.key).text(o.doc.body).step());
        } else if constexpr (std::is_same_v<T, op::delete_document>) {
          check(binder(st[doc_delete]).text(o.kind).text(o.key).step());
        }
      },
      operation);
  ops_.inc();
}

void sqlite_store::run() {
  common::metrics_slot = 7;
  std::deque<batch> work;
  while (true) {
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (queue_.empty() && stop_) return;
      work.swap(queue_);
    }
    binder(statements_[begin]).step();
    for (const auto& b : work)
      for (const auto& o : b.ops) apply(o);
    bool durable = binder(statements_[commit]).step() == SQLITE_DONE;
    if (!durable) {
      errors_.inc();
      FC_LOG_ERROR("storage.commit_failed", "err=\"{}\" batches={}", sqlite3_errmsg(db_), work.size());
      binder(statements_[rollback]).step();
    }
    commits_.inc();
    for (auto& b : work)
      if (b.done) b.done(durable);
    {
      std::lock_guard lock(mutex_);
      committed_ += work.size();
    }
    flushed_.notify_all();
    work.clear();
  }
}

void sqlite_store::register_metrics(common::registry& r) const {
  r.add(commits_, "fleetcore_storage_commits_total", "", "Group commits (one fsync each).");
  r.add(ops_, "fleetcore_storage_operations_total", "", "Storage operations applied.");
  r.add(errors_, "fleetcore_storage_errors_total", "", "Failed storage writes and commits.");
}

}  // namespace fleetcore::storage
