#pragma once
// The embedded telemetry store: time series written by the rules engine's timestream action and read
// with the Timestream query language's common subset (`aws timestream-query query`).
//
// Storage: one SQLite file (<data-dir>/telemetry.db, WAL), one table per Timestream table, named
// "<database>.<table>", with Timestream's columns: `time` (TEXT, 'YYYY-MM-DD HH:MM:SS.nnnnnnnnn' UTC,
// fixed width so that text order is time order), `measure_name`, `measure_value::bigint|double|
// boolean|varchar`, and one TEXT column per dimension name (added when first written). Writes are
// group-committed by a writer thread (one transaction per batch; WAL survives a crash of the
// process). Retention deletes rows older than `retention_hours`.
//
// Queries run on a read-only connection that may only read (an authorizer denies everything else)
// and are bounded in time. The Timestream text is rewritten to SQLite's dialect for the documented
// subset: "db"."table" names, measure_value::type columns, interval literals (1h, 15m, 30s, 10ms) and
// the functions ago(), now(), bin(), from_milliseconds(), to_milliseconds(); SELECT, WHERE, GROUP BY,
// ORDER BY, LIMIT and the aggregates are SQLite's own.
#include "common/aws_api.hpp"
#include "common/clock.hpp"
#include "common/metrics.hpp"

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

struct sqlite3;
struct sqlite3_stmt;

namespace fleetcore::telemetry {

/// One measure of one record, as Timestream's WriteRecords (and the timestream rule action) makes it.
struct record {
  std::string database;
  std::string table;
  std::int64_t time_ns = 0;
  std::vector<std::pair<std::string, std::string>> dimensions;
  std::string measure_name;
  enum class kind : std::uint8_t { bigint, double_, boolean, varchar } type = kind::varchar;
  std::int64_t bigint = 0;  // also boolean (0/1)
  double real = 0;
  std::string text;
};

struct settings {
  /// Rows older than this are deleted (checked every minute).
  unsigned retention_hours = 24 * 30;
  /// A query that runs longer is stopped (ValidationException).
  unsigned query_timeout_ms = 10'000;
  /// Rows per Query page.
  unsigned max_rows = 10'000;
};

class store {
 public:
  /// Opens (creates) `file`; starts the writer thread. Throws std::runtime_error if SQLite cannot.
  store(std::filesystem::path file, common::clock& clock, settings s);
  ~store();
  store(const store&) = delete;
  store& operator=(const store&) = delete;

  /// Appends `records`; `done(durable)` runs on the writer thread once their transaction committed.
  /// Any thread.
  void write(std::vector<record> records, std::function<void(bool)> done);

  /// timestream-query Query: {QueryString, MaxRows?, NextToken?} → {QueryId, Rows, ColumnInfo,
  /// NextToken?}. API thread.
  common::aws_response query(const boost::json::object& in);

  /// The Timestream text in SQLite's dialect (exposed for tests).
  static std::string rewrite(std::string_view timestream_sql);
  /// 'YYYY-MM-DD HH:MM:SS.nnnnnnnnn' of `ns` since the epoch (UTC).
  static std::string format_time(std::int64_t ns);

  void register_metrics(common::registry& r) const;

 private:
  struct batch {
    std::vector<record> records;
    std::function<void(bool)> done;
  };
  void writer_loop();
  bool apply(std::vector<batch>& batches);
  bool ensure_table(const record& r);
  void expire();

  common::clock& clock_;
  settings settings_;
  std::filesystem::path file_;
  sqlite3* db_ = nullptr;       // writer thread only
  sqlite3* reader_ = nullptr;   // API thread only
  std::map<std::string, std::set<std::string>> columns_;  // table -> dimension columns (writer)
  std::map<std::string, sqlite3_stmt*> inserts_;           // insert statement by SQL text (writer)

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<batch> queue_;
  bool stopping_ = false;
  std::int64_t next_expiry_ms_ = 0;
  std::thread writer_;

  common::counter records_, batches_, failed_batches_, queries_, query_errors_, expired_;
};

}  // namespace fleetcore::telemetry
