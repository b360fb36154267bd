#include "storage/postgres_store.hpp"

#include "common/log.hpp"
#include "storage/subscription_ids.hpp"

#include <libpq-fe.h>

#include <endian.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <unordered_map>

namespace fleetcore::storage {
namespace {

// Every integer column is BIGINT and every parameter is cast in the statement, so values travel in
// binary: 8 bytes big-endian for integers, the bytes themselves for TEXT and BYTEA.
constexpr const char* schema = R"sql(
CREATE TABLE retained(
  topic TEXT PRIMARY KEY, payload BYTEA NOT NULL, qos BIGINT NOT NULL, props BYTEA NOT NULL,
  expiry_at BIGINT NOT NULL);
CREATE TABLE sessions(
  client_id TEXT PRIMARY KEY, incarnation BIGINT NOT NULL, expiry_interval BIGINT NOT NULL,
  protocol BIGINT NOT NULL, disconnected_at BIGINT NOT NULL, node TEXT NOT NULL DEFAULT '');
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
)sql";

/// What takes a database of version i + 1 to version i + 2 (a new database gets `schema` at once).
constexpr const char* migrations[] = {
    // 1 -> 2: the cluster node holding each session (none on a single node).
    "ALTER TABLE sessions ADD COLUMN node TEXT NOT NULL DEFAULT ''",
};
static_assert(std::size(migrations) == static_cast<std::size_t>(postgres_store::schema_version - 1));

/// Held while a node creates or checks the schema, so that nodes starting together migrate once.
constexpr const char* schema_lock = "SELECT pg_advisory_lock(7309475734862741504)";
constexpr const char* schema_unlock = "SELECT pg_advisory_unlock(7309475734862741504)";

enum stmt : std::size_t {
  put_retained,
  delete_retained,
  session_clear_subs,
  session_clear_msgs,
  session_clear_inbound,
  session_put,
  session_touch,
  session_delete,
  session_delete_subs,
  session_delete_msgs,
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
  stmt_count
};

constexpr const char* sql_text[stmt_count] = {
    "INSERT INTO retained VALUES($1::text,$2::bytea,$3::bigint,$4::bytea,$5::bigint) ON CONFLICT(topic) DO UPDATE "
    "SET payload=EXCLUDED.payload, qos=EXCLUDED.qos, props=EXCLUDED.props, expiry_at=EXCLUDED.expiry_at",
    "DELETE FROM retained WHERE topic=$1::text",
    "DELETE FROM subscriptions WHERE client_id=$1::text",
    "DELETE FROM session_messages WHERE client_id=$1::text",
    "DELETE FROM session_inbound WHERE client_id=$1::text",
    "INSERT INTO sessions(client_id, incarnation, expiry_interval, protocol, disconnected_at, node) "
    "VALUES($1::text,$2::bigint,$3::bigint,$4::bigint,$5::bigint,$6::text) ON CONFLICT(client_id) DO UPDATE "
    "SET incarnation=EXCLUDED.incarnation, expiry_interval=EXCLUDED.expiry_interval, protocol=EXCLUDED.protocol, "
    "disconnected_at=EXCLUDED.disconnected_at, node=EXCLUDED.node",
    "UPDATE sessions SET expiry_interval=$3::bigint, disconnected_at=$4::bigint "
    "WHERE client_id=$1::text AND incarnation=$2::bigint",
    "DELETE FROM sessions WHERE client_id=$1::text AND incarnation=$2::bigint",
    "DELETE FROM subscriptions WHERE client_id=$1::text AND incarnation=$2::bigint",
    "DELETE FROM session_messages WHERE client_id=$1::text AND incarnation=$2::bigint",
    "DELETE FROM session_inbound WHERE client_id=$1::text AND incarnation=$2::bigint",
    // The session's own row moves last: until then it says whether `from` is still the stored one.
    "UPDATE subscriptions SET incarnation=$3::bigint WHERE client_id=$1::text AND incarnation=$2::bigint "
    "AND EXISTS(SELECT 1 FROM sessions WHERE client_id=$1::text AND incarnation=$2::bigint)",
    "UPDATE session_messages SET incarnation=$3::bigint WHERE client_id=$1::text AND incarnation=$2::bigint "
    "AND EXISTS(SELECT 1 FROM sessions WHERE client_id=$1::text AND incarnation=$2::bigint)",
    "UPDATE session_inbound SET incarnation=$3::bigint WHERE client_id=$1::text AND incarnation=$2::bigint "
    "AND EXISTS(SELECT 1 FROM sessions WHERE client_id=$1::text AND incarnation=$2::bigint)",
    // An adoption that moves no session row divides by zero: the statement, and so its batch, fails.
    "WITH w AS (UPDATE sessions SET incarnation=$3::bigint, node=$4::text WHERE client_id=$1::text "
    "AND incarnation=$2::bigint RETURNING 1) SELECT 1/count(*) FROM w",
    "INSERT INTO subscriptions SELECT $1::text,$2::text,$3::bigint,$4::bigint,$5::bigint "
    "WHERE EXISTS(SELECT 1 FROM sessions WHERE client_id=$1::text AND incarnation=$5::bigint) "
    "ON CONFLICT(client_id, filter) DO UPDATE SET options=EXCLUDED.options, sub_id=EXCLUDED.sub_id, "
    "incarnation=EXCLUDED.incarnation",
    "DELETE FROM subscriptions WHERE client_id=$1::text AND filter=$2::text AND incarnation=$3::bigint",
    "INSERT INTO session_messages SELECT $1::text,$2::bigint,$3::bigint,$4::text,$5::bytea,$6::bigint,$7::bigint,"
    "$8::bytea,$9::bigint,$10::text,0,0 "
    "WHERE EXISTS(SELECT 1 FROM sessions WHERE client_id=$1::text AND incarnation=$3::bigint) "
    "ON CONFLICT(client_id, seq) DO UPDATE SET incarnation=EXCLUDED.incarnation, topic=EXCLUDED.topic, "
    "payload=EXCLUDED.payload, qos=EXCLUDED.qos, retain=EXCLUDED.retain, props=EXCLUDED.props, "
    "expiry_at=EXCLUDED.expiry_at, sub_ids=EXCLUDED.sub_ids, packet_id=0, released=0",
    "DELETE FROM session_messages WHERE client_id=$1::text AND seq=$2::bigint AND incarnation=$3::bigint",
    "UPDATE session_messages SET packet_id=$3::bigint, released=$4::bigint "
    "WHERE client_id=$1::text AND seq=$2::bigint AND incarnation=$5::bigint",
    "INSERT INTO session_inbound SELECT $1::text,$2::bigint,$3::bigint "
    "WHERE EXISTS(SELECT 1 FROM sessions WHERE client_id=$1::text AND incarnation=$3::bigint) "
    "ON CONFLICT(client_id, packet_id) DO UPDATE SET incarnation=EXCLUDED.incarnation",
    "DELETE FROM session_inbound WHERE client_id=$1::text AND packet_id=$2::bigint AND incarnation=$3::bigint",
    "INSERT INTO documents VALUES($1::text,$2::text,$3::text) ON CONFLICT(kind, key) DO UPDATE SET body=EXCLUDED.body",
    "DELETE FROM documents WHERE kind=$1::text AND key=$2::text",
    // A swap that changes no row divides by zero: the statement, and so its batch, fails.
    "WITH w AS (UPDATE documents SET body=$3::text WHERE kind=$1::text AND key=$2::text AND body=$4::text RETURNING 1) "
    "SELECT 1/count(*) FROM w",
    "WITH w AS (INSERT INTO documents VALUES($1::text,$2::text,$3::text) ON CONFLICT(kind, key) DO NOTHING RETURNING 1) "
    "SELECT 1/count(*) FROM w",
};

const std::string& statement_name(std::size_t i) {
  static const auto names = [] {
    std::array<std::string, stmt_count> n;
    for (std::size_t k = 0; k < stmt_count; ++k) n[k] = "fc" + std::to_string(k);
    return n;
  }();
  return names[i];
}

using result_ptr = std::unique_ptr<PGresult, void (*)(PGresult*)>;
result_ptr wrap(PGresult* r) { return result_ptr(r, PQclear); }

std::string error_of(pg_conn* c, const PGresult* r) {
  std::string e = r ? PQresultErrorMessage(r) : "";
  if (e.empty()) e = PQerrorMessage(c);
  while (!e.empty() && (e.back() == '\n' || e.back() == ' ')) e.pop_back();
  std::replace(e.begin(), e.end(), '\n', ' ');  // one log line
  std::replace(e.begin(), e.end(), '\t', ' ');
  return e;
}

/// The parameters of one statement, in binary.
class params {
 public:
  params& text(std::string_view v) { return add(v.data(), v.size()); }
  params& integer(std::int64_t v) {
    std::uint64_t be = htobe64(static_cast<std::uint64_t>(v));
    auto& slot = ints_[n_ints_++];
    std::memcpy(slot.data(), &be, 8);
    return add(slot.data(), 8);
  }
  int count() const { return n_; }
  const char* const* values() const { return values_.data(); }
  const int* lengths() const { return lengths_.data(); }
  const int* formats() const { return formats_.data(); }

 private:
  params& add(const char* p, std::size_t n) {
    // A zero-length value must not be a null pointer, which libpq takes for SQL NULL.
    values_[n_] = p ? p : "";
    lengths_[n_] = static_cast<int>(n);
    formats_[n_] = 1;
    ++n_;
    return *this;
  }
  static constexpr int max_params = 12;
  std::array<const char*, max_params> values_{};
  std::array<int, max_params> lengths_{};
  std::array<int, max_params> formats_{};
  std::array<std::array<char, 8>, max_params> ints_{};
  int n_ = 0;
  int n_ints_ = 0;
};

using detail::join_ids;
using detail::split_ids;

/// A row of a binary result.
struct row {
  const PGresult* r;
  int i;
  std::string str(int col) const {
    return std::string(PQgetvalue(r, i, col), static_cast<std::size_t>(PQgetlength(r, i, col)));
  }
  std::int64_t integer(int col) const {
    std::uint64_t be;
    if (PQgetlength(r, i, col) != 8) throw std::runtime_error("postgresql read: not a bigint");
    std::memcpy(&be, PQgetvalue(r, i, col), 8);
    return static_cast<std::int64_t>(be64toh(be));
  }
};

/// The statements of one operation, each handed to `run` (false stops there).
bool statements_of(const operation& operation, const std::function<bool(std::size_t, const params&)>& run) {
  auto i64 = [](std::uint64_t v) { return static_cast<std::int64_t>(v); };
  return std::visit(
      [&](const auto& o) {
        using T = std::decay_t<decltype(o)>;
        if constexpr (std::is_same_v<T, op::put_retained>) {
          return run(put_retained, params().text(o.msg.topic).text(o.msg.payload).integer(o.msg.qos)
                                       .text(o.msg.props).integer(o.msg.expiry_at_ms));
        } else if constexpr (std::is_same_v<T, op::delete_retained>) {
          return run(delete_retained, params().text(o.topic));
        } else if constexpr (std::is_same_v<T, op::put_session>) {
          return run(session_clear_subs, params().text(o.client_id)) &&
                 run(session_clear_msgs, params().text(o.client_id)) &&
                 run(session_clear_inbound, params().text(o.client_id)) &&
                 run(session_put, params().text(o.client_id).integer(i64(o.incarnation)).integer(o.expiry_interval)
                                      .integer(o.protocol).integer(o.disconnected_at_ms).text(o.node));
        } else if constexpr (std::is_same_v<T, op::touch_session>) {
          return run(session_touch, params().text(o.client_id).integer(i64(o.incarnation)).integer(o.expiry_interval)
                                        .integer(o.disconnected_at_ms));
        } else if constexpr (std::is_same_v<T, op::delete_session>) {
          return run(session_delete, params().text(o.client_id).integer(i64(o.incarnation))) &&
                 run(session_delete_subs, params().text(o.client_id).integer(i64(o.incarnation))) &&
                 run(session_delete_msgs, params().text(o.client_id).integer(i64(o.incarnation))) &&
                 run(session_delete_inbound, params().text(o.client_id).integer(i64(o.incarnation)));
        } else if constexpr (std::is_same_v<T, op::adopt_session>) {
          return run(adopt_subs, params().text(o.client_id).integer(i64(o.from)).integer(i64(o.to))) &&
                 run(adopt_msgs, params().text(o.client_id).integer(i64(o.from)).integer(i64(o.to))) &&
                 run(adopt_inbound, params().text(o.client_id).integer(i64(o.from)).integer(i64(o.to))) &&
                 run(session_adopt, params().text(o.client_id).integer(i64(o.from)).integer(i64(o.to)).text(o.node));
        } else if constexpr (std::is_same_v<T, op::put_subscription>) {
          return run(sub_put, params().text(o.client_id).text(o.sub.filter).integer(o.sub.options)
                                  .integer(o.sub.subscription_id).integer(i64(o.incarnation)));
        } else if constexpr (std::is_same_v<T, op::delete_subscription>) {
          return run(sub_delete, params().text(o.client_id).text(o.filter).integer(i64(o.incarnation)));
        } else if constexpr (std::is_same_v<T, op::put_message>) {
          const auto& m = o.rec.msg;
          std::string ids = join_ids(o.rec.subscription_ids);
          return run(msg_put, params().text(o.client_id).integer(i64(o.rec.seq)).integer(i64(o.incarnation))
                                  .text(m.topic).text(m.payload).integer(m.qos).integer(m.retain ? 1 : 0)
                                  .text(m.props).integer(m.expiry_at_ms).text(ids));
        } else if constexpr (std::is_same_v<T, op::delete_message>) {
          return run(msg_delete, params().text(o.client_id).integer(i64(o.seq)).integer(i64(o.incarnation)));
        } else if constexpr (std::is_same_v<T, op::send_message>) {
          return run(msg_send, params().text(o.client_id).integer(i64(o.seq)).integer(o.packet_id)
                                   .integer(o.released ? 1 : 0).integer(i64(o.incarnation)));
        } else if constexpr (std::is_same_v<T, op::put_inbound_qos2>) {
          return run(inbound_put, params().text(o.client_id).integer(o.packet_id).integer(i64(o.incarnation)));
        } else if constexpr (std::is_same_v<T, op::delete_inbound_qos2>) {
          return run(inbound_delete, params().text(o.client_id).integer(o.packet_id).integer(i64(o.incarnation)));
        } else if constexpr (std::is_same_v<T, op::put_document>) {
          return run(doc_put, params().text(o.doc.kind).text(o.doc.key).text(o.doc.body));
        } else if constexpr (std::is_same_v<T, op::swap_document>) {
          if (!o.expected) return run(doc_create, params().text(o.doc.kind).text(o.doc.key).text(o.doc.body));
          return run(doc_swap, params().text(o.doc.kind).text(o.doc.key).text(o.doc.body).text(*o.expected));
        } else {
          static_assert(std::is_same_v<T, op::delete_document>);
          return run(doc_delete, params().text(o.kind).text(o.key));
        }
      },
      operation);
}

}  // namespace

postgres_store::postgres_store(std::string conninfo) : conninfo_(std::move(conninfo)) {
  if (!connect()) {
    std::string err = conn_ ? PQerrorMessage(conn_) : "out of memory";
    PQfinish(conn_);
    throw std::runtime_error("cannot connect to postgresql: " + err);
  }
  try {
    migrate();
  } catch (...) {
    PQfinish(conn_);
    throw;
  }
  ready_ = true;
  start();
}

postgres_store::~postgres_store() {
  stop();
  PQfinish(conn_);
}

bool postgres_store::connect() {
  if (conn_) PQfinish(conn_);
  // A half-open TCP connection must not hold the store (every durable acknowledgement) forever:
  // keepalives and a send timeout, unless the conninfo sets its own (it is expanded after these).
  const char* keys[] = {"connect_timeout", "keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count",
                        "tcp_user_timeout", "dbname", nullptr};
  const char* values[] = {"10", "1", "10", "5", "3", "30000", conninfo_.c_str(), nullptr};
  conn_ = PQconnectdbParams(keys, values, 1);
  if (!conn_ || PQstatus(conn_) != CONNECTION_OK) {
    FC_LOG_ERROR("storage.connect_failed", "err=\"{}\"", conn_ ? error_of(conn_, nullptr) : "out of memory");
    return false;
  }
  PQsetNoticeProcessor(conn_, [](void*, const char*) {}, nullptr);  // "already exists, skipping" and the like
  // Commits are durable before they are acknowledged, whatever the server's default.
  if (!command("SET synchronous_commit = on")) return false;
  return true;
}

void postgres_store::migrate() {
  auto exec = [this](const char* sql) {
    auto r = wrap(PQexec(conn_, sql));
    auto st = PQresultStatus(r.get());
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
      throw std::runtime_error("postgresql schema: " + error_of(conn_, r.get()));
    return r;
  };
  exec(schema_lock);
  try {
    exec("CREATE TABLE IF NOT EXISTS fleetcore_schema(version BIGINT NOT NULL)");
    auto v = exec("SELECT version FROM fleetcore_schema");
    if (PQntuples(v.get()) == 0) {
      exec("BEGIN");
      exec(schema);
      exec(("INSERT INTO fleetcore_schema VALUES(" + std::to_string(schema_version) + ")").c_str());
      exec("COMMIT");
      FC_LOG_INFO("storage.schema_created", "backend=postgresql version={}", schema_version);
    } else if (auto version = std::stoll(PQgetvalue(v.get(), 0, 0)); version > schema_version) {
      throw std::runtime_error("postgresql schema version " + std::to_string(version) +
                               " is newer than this build's " + std::to_string(schema_version));
    } else if (version < 1) {
      throw std::runtime_error("postgresql schema version " + std::to_string(version) + " is unknown");
    } else if (version < schema_version) {
      // Every step and the new version in one transaction: a failure leaves the old schema whole.
      exec("BEGIN");
      for (auto from = version; from < schema_version; ++from) exec(migrations[static_cast<std::size_t>(from - 1)]);
      exec(("UPDATE fleetcore_schema SET version = " + std::to_string(schema_version)).c_str());
      exec("COMMIT");
      FC_LOG_INFO("storage.schema_migrated", "backend=postgresql from={} to={}", version, schema_version);
    }
  } catch (...) {
    PQclear(PQexec(conn_, "ROLLBACK"));
    PQclear(PQexec(conn_, schema_unlock));
    throw;
  }
  exec(schema_unlock);
  for (std::size_t i = 0; i < stmt_count; ++i) {
    auto r = wrap(PQprepare(conn_, statement_name(i).c_str(), sql_text[i], 0, nullptr));
    if (PQresultStatus(r.get()) != PGRES_COMMAND_OK)
      throw std::runtime_error(std::string("postgresql prepare: ") + error_of(conn_, r.get()));
  }
}

bool postgres_store::command(const char* sql) {
  auto r = wrap(PQexec(conn_, sql));
  if (PQresultStatus(r.get()) == PGRES_COMMAND_OK) return true;
  count_error();
  FC_LOG_ERROR("storage.write_failed", "sql=\"{}\" err=\"{}\"", sql, error_of(conn_, r.get()));
  return false;
}

bool postgres_store::connected() {
  if (ready_ && PQstatus(conn_) == CONNECTION_OK) return true;
  // The server restarted or the network failed: a new session, whose statements are prepared again.
  // While the server cannot be reached, groups fail at once and a new attempt waits 200 ms.
  ready_ = false;
  auto now = std::chrono::steady_clock::now();
  if (now < next_attempt_) return false;
  next_attempt_ = now + std::chrono::milliseconds(200);
  FC_LOG_WARN("storage.reconnecting", "backend=postgresql");
  try {
    if (!connect()) return false;
    migrate();
    ready_ = true;
  } catch (const std::exception& e) {
    FC_LOG_ERROR("storage.connect_failed", "err=\"{}\"", e.what());
  }
  return ready_;
}

bool postgres_store::begin() {
  // A connection that died while idle (the server restarted) shows only when used: nothing of the
  // group has been sent yet, so reconnect and begin again, once.
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (!connected()) return false;
    // The transaction's id comes back with BEGIN (same round trip): if the connection is lost during
    // COMMIT, it tells what became of the transaction.
    xid_ = 0;
    auto r = wrap(PQexec(conn_, "BEGIN; SELECT txid_current()"));  // one round trip, the last result
    if (PQresultStatus(r.get()) == PGRES_TUPLES_OK && PQntuples(r.get()) == 1) {
      xid_ = std::stoll(PQgetvalue(r.get(), 0, 0));
      return true;
    }
    count_error();
    FC_LOG_ERROR("storage.write_failed", "sql=\"BEGIN\" err=\"{}\"", error_of(conn_, r.get()));
    if (PQstatus(conn_) == CONNECTION_OK) {
      PQclear(PQexec(conn_, "ROLLBACK"));
      return false;
    }
  }
  return false;
}

bool postgres_store::in_transaction() {
  auto st = PQtransactionStatus(conn_);
  return st == PQTRANS_INTRANS || st == PQTRANS_INERROR;
}

bool postgres_store::apply_batch(const std::vector<operation>& ops) {
  // The batch's statements go out in libpq's pipeline mode and their results come back together: one
  // round trip per batch (per 256 statements of a large one, so that neither side's socket fills while
  // the other waits). After a failed statement the server skips the rest up to the next sync, or
  // fails it in the aborted transaction; either way the savepoint then undoes the batch.
  if (PQenterPipelineMode(conn_) != 1) {
    count_error();
    FC_LOG_ERROR("storage.write_failed", "err=\"{}\"", error_of(conn_, nullptr));
    return false;
  }
  constexpr std::size_t max_unread = 256;
  std::vector<const char*> unread;  // the SQL of each query sent and not read yet, for the log
  bool ok = true;                   // every statement so far succeeded
  bool intact = true;               // the protocol state is known (else the connection is dropped)
  // Reads the results of the queries sent, up to a sync. Each query has its result, then a null.
  auto drain = [&] {
    if (!intact || PQpipelineSync(conn_) != 1) {
      intact = false;
      return;
    }
    for (const char* sql : unread) {
      PGresult* r = PQgetResult(conn_);
      if (!r) {
        intact = false;
        return;
      }
      auto st = PQresultStatus(r);
      if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        // A swap_document lost the race, or an adopt_session found the session taken over already.
        const bool changed = state && std::string_view(state) == "22012";
        if (ok && st != PGRES_PIPELINE_ABORTED && changed) {
          FC_LOG_DEBUG("storage.changed_meanwhile", "sql=\"{}\"", sql);
        } else if (ok && st != PGRES_PIPELINE_ABORTED) {
          count_error();
          FC_LOG_ERROR("storage.write_failed", "sql=\"{}\" err=\"{}\"", sql, error_of(conn_, r));
        }
        ok = false;
      }
      PQclear(r);
      if (PGresult* extra = PQgetResult(conn_)) {
        PQclear(extra);
        intact = false;
        return;
      }
    }
    unread.clear();
    PGresult* sync = PQgetResult(conn_);
    intact = sync && PQresultStatus(sync) == PGRES_PIPELINE_SYNC;
    PQclear(sync);
  };
  auto send = [&](const char* name, const char* sql, const params& p) {
    if (!ok || !intact) return false;
    if ((name ? PQsendQueryPrepared(conn_, name, p.count(), p.values(), p.lengths(), p.formats(), 1)
              : PQsendQueryParams(conn_, sql, 0, nullptr, nullptr, nullptr, nullptr, 1)) != 1) {
      count_error();
      FC_LOG_ERROR("storage.write_failed", "sql=\"{}\" err=\"{}\"", sql, error_of(conn_, nullptr));
      ok = false;
      return false;
    }
    unread.push_back(sql);
    if (unread.size() >= max_unread) drain();
    return ok && intact;
  };
  send(nullptr, "SAVEPOINT batch", params());
  for (const auto& o : ops) {
    count_op();
    if (!statements_of(o, [&](std::size_t s, const params& p) { return send(statement_name(s).c_str(), sql_text[s], p); }))
      break;
  }
  send(nullptr, "RELEASE SAVEPOINT batch", params());
  drain();
  if (!intact || PQexitPipelineMode(conn_) != 1) {
    count_error();
    FC_LOG_ERROR("storage.connection_lost", "err=\"{}\"", error_of(conn_, nullptr));
    PQfinish(conn_);
    conn_ = nullptr;  // in_transaction() is false from here; the next group reconnects
    ready_ = false;
    return false;
  }
  if (ok) return true;
  // Undo this batch only; if that is impossible, give up the whole transaction rather than commit
  // half a batch (in_transaction() then says so).
  if (in_transaction() && !(command("ROLLBACK TO SAVEPOINT batch") && command("RELEASE SAVEPOINT batch")))
    PQclear(PQexec(conn_, "ROLLBACK"));
  return false;
}

bool postgres_store::commit() {
  // A COMMIT of an aborted transaction "succeeds" as a ROLLBACK: check that it really committed.
  if (PQtransactionStatus(conn_) != PQTRANS_INTRANS) {
    PQclear(PQexec(conn_, "ROLLBACK"));
    return false;
  }
  if (command("COMMIT")) return true;
  if (PQstatus(conn_) == CONNECTION_OK) return false;  // refused: rolled back
  // The connection was lost during COMMIT, which may have committed or not. Reporting "not durable"
  // for a committed group would have its writes retried and applied twice (a QoS 2 id held for a
  // message its client was told was refused), so ask a new connection what became of the
  // transaction, waiting while the server is down (nothing could commit meanwhile), up to 30 s.
  ready_ = false;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < give_up) {
    if (connected()) {
      params p;
      p.integer(xid_);
      auto r = wrap(PQexecParams(conn_, "SELECT txid_status($1::bigint)", p.count(), nullptr, p.values(), p.lengths(),
                                 p.formats(), 0));
      if (PQresultStatus(r.get()) == PGRES_TUPLES_OK && PQntuples(r.get()) == 1) {
        std::string_view status = PQgetisnull(r.get(), 0, 0) ? "" : PQgetvalue(r.get(), 0, 0);
        // "in progress": the old session has not ended yet (its COMMIT may still complete).
        if (status != "in progress") {
          FC_LOG_WARN("storage.commit_outcome", "backend=postgresql xid={} status=\"{}\"", xid_, status);
          return status == "committed";
        }
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  FC_LOG_ERROR("storage.commit_outcome_unknown", "backend=postgresql xid={}", xid_);
  return false;
}

namespace {
/// Runs a read (binary results) and calls `each` for every row; throws if the read fails: a caller
/// must never mistake a failed read for an empty table.
template <class Each>
void each_row(pg_conn* c, const char* sql, const params& p, Each&& each) {
  auto r = wrap(PQexecParams(c, sql, p.count(), nullptr, p.values(), p.lengths(), p.formats(), 1));
  if (PQresultStatus(r.get()) != PGRES_TUPLES_OK) throw std::runtime_error("postgresql read: " + error_of(c, r.get()));
  for (int i = 0, n = PQntuples(r.get()); i < n; ++i) each(row{r.get(), i});
}

/// Runs `read`'s queries in one read-only transaction: other nodes write to the same tables, and a
/// session adopted between two of its queries must not come back with half of its rows.
template <class Read>
auto in_one_snapshot(pg_conn* c, Read&& read) {
  auto exec = [c](const char* sql) {
    auto r = wrap(PQexec(c, sql));
    if (PQresultStatus(r.get()) != PGRES_COMMAND_OK) throw std::runtime_error("postgresql read: " + error_of(c, r.get()));
  };
  exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  try {
    auto result = read();
    exec("COMMIT");
    return result;
  } catch (...) {
    if (PQtransactionStatus(c) != PQTRANS_IDLE) PQclear(PQexec(c, "ROLLBACK"));
    throw;
  }
}
}  // namespace

template <class Read>
auto postgres_store::reading(Read&& read) {
  for (int attempt = 0;; ++attempt) {
    if (!connected()) throw std::runtime_error("postgresql read: not connected");
    try {
      return read();
    } catch (const std::runtime_error&) {
      if (attempt > 0 || PQstatus(conn_) == CONNECTION_OK) throw;
      FC_LOG_WARN("storage.connection_lost", "note=\"found by a read; reconnecting\"");
      ready_ = false;
      next_attempt_ = {};  // at once
    }
  }
}

snapshot postgres_store::read_snapshot() {
  return reading([this] {
    return in_one_snapshot(conn_, [this] {
      snapshot snap;
      each_row(conn_, "SELECT topic, payload, qos, props, expiry_at FROM retained", params(), [&](const row& r) {
        stored_message m;
        m.topic = r.str(0);
        m.payload = r.str(1);
        m.qos = static_cast<std::uint8_t>(r.integer(2));
        m.retain = true;
        m.props = r.str(3);
        m.expiry_at_ms = r.integer(4);
        snap.retained.push_back(std::move(m));
      });
      read_sessions({}, snap);
      return snap;
    });
  });
}

std::optional<session_record> postgres_store::read_session(const std::string& client_id) {
  return reading([&] {
    return in_one_snapshot(conn_, [&]() -> std::optional<session_record> {
      snapshot snap;
      read_sessions({session_scope::client, &client_id}, snap);
      if (snap.sessions.empty()) return std::nullopt;
      return std::move(snap.sessions.front());
    });
  });
}

std::vector<session_record> postgres_store::read_node_sessions(const std::string& node) {
  return reading([&] {
    return in_one_snapshot(conn_, [&] {
      snapshot snap;
      read_sessions({session_scope::node, &node}, snap);
      return std::move(snap.sessions);
    });
  });
}

void postgres_store::read_sessions(session_scope scope, snapshot& snap) {
  // Every query reads all clients, only one client's rows (its primary key prefix), or the rows of
  // the clients whose session a node holds.
  params filter;
  if (scope.value) filter.text(*scope.value);
  auto query = [&](std::string sql, const char* order, auto&& each) {
    sql += scope.where(sql.substr(sql.rfind(' ') + 1), "$1::text");
    sql += order;
    each_row(conn_, sql.c_str(), filter, each);
  };
  std::unordered_map<std::string, std::size_t> index;
  query("SELECT client_id, incarnation, expiry_interval, protocol, disconnected_at, node FROM sessions", "",
        [&](const row& r) {
          session_record s;
          s.client_id = r.str(0);
          s.incarnation = static_cast<std::uint64_t>(r.integer(1));
          s.expiry_interval = static_cast<std::uint32_t>(r.integer(2));
          s.protocol = static_cast<std::uint8_t>(r.integer(3));
          s.disconnected_at_ms = r.integer(4);
          s.node = r.str(5);
          snap.max_incarnation = std::max(snap.max_incarnation, s.incarnation);
          index[s.client_id] = snap.sessions.size();
          snap.sessions.push_back(std::move(s));
        });
  // Rows of another incarnation than the stored session's belong to no session.
  auto session_of = [&](const row& r, int incarnation_col) -> session_record* {
    auto it = index.find(r.str(0));
    if (it == index.end()) return nullptr;
    auto& s = snap.sessions[it->second];
    return static_cast<std::uint64_t>(r.integer(incarnation_col)) == s.incarnation ? &s : nullptr;
  };
  query("SELECT client_id, filter, options, sub_id, incarnation FROM subscriptions", "", [&](const row& r) {
    if (auto* s = session_of(r, 4))
      s->subscriptions.push_back({r.str(1), static_cast<std::uint8_t>(r.integer(2)), static_cast<std::uint32_t>(r.integer(3))});
  });
  query("SELECT client_id, incarnation, seq, topic, payload, qos, retain, props, expiry_at, sub_ids, packet_id, "
        "released FROM session_messages",
        " ORDER BY client_id, seq", [&](const row& r) {
          auto seq = static_cast<std::uint64_t>(r.integer(2));
          snap.max_seq = std::max(snap.max_seq, seq);
          auto* s = session_of(r, 1);
          if (!s) return;
          queued_record q;
          q.seq = seq;
          q.msg.topic = r.str(3);
          q.msg.payload = r.str(4);
          q.msg.qos = static_cast<std::uint8_t>(r.integer(5));
          q.msg.retain = r.integer(6) != 0;
          q.msg.props = r.str(7);
          q.msg.expiry_at_ms = r.integer(8);
          q.subscription_ids = split_ids(r.str(9));
          q.packet_id = static_cast<std::uint16_t>(r.integer(10));
          q.released = r.integer(11) != 0;
          s->queue.push_back(std::move(q));
        });
  query("SELECT client_id, incarnation, packet_id FROM session_inbound", " ORDER BY client_id, packet_id",
        [&](const row& r) {
          if (auto* s = session_of(r, 1)) s->inbound_qos2.push_back(static_cast<std::uint16_t>(r.integer(2)));
        });
}

std::vector<document> postgres_store::read_documents(const std::string& kind, const std::string* key) {
  return reading([&] {
    std::vector<document> docs;
    auto each = [&](const row& r) { docs.push_back({r.str(0), r.str(1), r.str(2)}); };
    if (key)
      each_row(conn_, "SELECT kind, key, body FROM documents WHERE kind=$1::text AND key=$2::text",
               params().text(kind).text(*key), each);
    else
      each_row(conn_, "SELECT kind, key, body FROM documents WHERE kind=$1::text ORDER BY key COLLATE \"C\"",
               params().text(kind), each);
    return docs;
  });
}

}  // namespace fleetcore::storage
