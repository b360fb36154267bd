#include "telemetry/store.hpp"

#include "common/json_members.hpp"
#include "common/log.hpp"

#include <boost/json.hpp>
#include <fmt/format.h>
#include <sqlite3.h>

#include <chrono>
#include <cmath>
#include <stdexcept>

namespace fleetcore::telemetry {

namespace json = boost::json;
using common::aws_response;

namespace {

std::string quote_identifier(std::string_view name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string_view column_of(record::kind k) {
  switch (k) {
    case record::kind::bigint: return "measure_value::bigint";
    case record::kind::double_: return "measure_value::double";
    case record::kind::boolean: return "measure_value::boolean";
    case record::kind::varchar: return "measure_value::varchar";
  }
  return "measure_value::varchar";
}

// Civil date <-> days since 1970-01-01 (Howard Hinnant's algorithms).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

std::optional<std::int64_t> parse_time(std::string_view s) {
  // YYYY-MM-DD HH:MM:SS[.fraction]
  if (s.size() < 19 || s[4] != '-' || s[7] != '-' || (s[10] != ' ' && s[10] != 'T') || s[13] != ':' || s[16] != ':')
    return std::nullopt;
  auto num = [&](std::size_t at, std::size_t n) -> std::optional<std::int64_t> {
    std::int64_t v = 0;
    for (std::size_t i = at; i < at + n; ++i) {
      if (s[i] < '0' || s[i] > '9') return std::nullopt;
      v = v * 10 + (s[i] - '0');
    }
    return v;
  };
  auto y = num(0, 4), mo = num(5, 2), d = num(8, 2), h = num(11, 2), mi = num(14, 2), se = num(17, 2);
  if (!y || !mo || !d || !h || !mi || !se || *mo < 1 || *mo > 12 || *d < 1 || *d > 31) return std::nullopt;
  std::int64_t ns = 0;
  if (s.size() > 19) {
    if (s[19] != '.' || s.size() > 29) return std::nullopt;
    std::int64_t scale = 100'000'000;
    for (std::size_t i = 20; i < s.size(); ++i, scale /= 10) {
      if (s[i] < '0' || s[i] > '9') return std::nullopt;
      ns += (s[i] - '0') * scale;
    }
  }
  std::int64_t days = days_from_civil(*y, static_cast<unsigned>(*mo), static_cast<unsigned>(*d));
  return ((days * 24 + *h) * 60 + *mi) * 60'000'000'000LL + *se * 1'000'000'000LL + ns;
}

std::optional<std::int64_t> parse_interval(std::string_view s) {
  std::size_t i = 0;
  std::int64_t n = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
    if (n > 1'000'000'000'000LL) return std::nullopt;
    n = n * 10 + (s[i++] - '0');
  }
  if (i == 0) return std::nullopt;
  auto unit = s.substr(i);
  if (unit == "ns") return n;
  if (unit == "us") return n * 1'000;
  if (unit == "ms") return n * 1'000'000;
  if (unit == "s") return n * 1'000'000'000LL;
  if (unit == "m") return n * 60'000'000'000LL;
  if (unit == "h") return n * 3'600'000'000'000LL;
  if (unit == "d") return n * 86'400'000'000'000LL;
  return std::nullopt;
}

bool timestamp_text(std::string_view s) { return s.size() == 29 && parse_time(s).has_value(); }

bool ident_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

std::int64_t now_ns(const common::clock& c) { return c.wall_ms() * 1'000'000; }

// --- SQL functions of the query dialect ---

const common::clock& clock_of(sqlite3_context* ctx) { return *static_cast<const common::clock*>(sqlite3_user_data(ctx)); }

void result_time(sqlite3_context* ctx, std::int64_t ns) {
  auto t = store::format_time(ns);
  sqlite3_result_text(ctx, t.c_str(), static_cast<int>(t.size()), SQLITE_TRANSIENT);
}

std::optional<std::int64_t> interval_arg(sqlite3_value* v) {
  auto* t = reinterpret_cast<const char*>(sqlite3_value_text(v));
  return t ? parse_interval(t) : std::nullopt;
}

std::optional<std::int64_t> time_arg(sqlite3_value* v) {
  if (sqlite3_value_type(v) == SQLITE_INTEGER) return sqlite3_value_int64(v);
  auto* t = reinterpret_cast<const char*>(sqlite3_value_text(v));
  return t ? parse_time(t) : std::nullopt;
}

void fn_now(sqlite3_context* ctx, int, sqlite3_value**) { result_time(ctx, now_ns(clock_of(ctx))); }

void fn_ago(sqlite3_context* ctx, int, sqlite3_value** argv) {
  auto i = interval_arg(argv[0]);
  if (!i) return sqlite3_result_error(ctx, "ago() takes an interval such as 1h, 15m, 30s", -1);
  result_time(ctx, now_ns(clock_of(ctx)) - *i);
}

void fn_bin(sqlite3_context* ctx, int, sqlite3_value** argv) {
  auto t = time_arg(argv[0]);
  auto i = interval_arg(argv[1]);
  if (!i || *i <= 0) return sqlite3_result_error(ctx, "bin() takes a time and an interval such as 1m", -1);
  if (!t) return sqlite3_result_null(ctx);
  std::int64_t b = *t - ((*t % *i) + *i) % *i;
  result_time(ctx, b);
}

void fn_from_ms(sqlite3_context* ctx, int, sqlite3_value** argv) {
  result_time(ctx, sqlite3_value_int64(argv[0]) * 1'000'000);
}

void fn_to_ms(sqlite3_context* ctx, int, sqlite3_value** argv) {
  auto t = time_arg(argv[0]);
  if (!t) return sqlite3_result_null(ctx);
  sqlite3_result_int64(ctx, *t / 1'000'000);
}

/// Queries may read and compute, nothing else (no ATTACH, PRAGMA, writes...).
int read_only_authorizer(void*, int action, const char*, const char*, const char*, const char*) {
  switch (action) {
    case SQLITE_SELECT:
    case SQLITE_READ:
    case SQLITE_FUNCTION:
    case SQLITE_RECURSIVE: return SQLITE_OK;
    default: return SQLITE_DENY;
  }
}

void exec(sqlite3* db, const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "?";
    sqlite3_free(err);
    throw std::runtime_error(std::string("telemetry: ") + sql + ": " + msg);
  }
}

}  // namespace

std::string store::format_time(std::int64_t ns) {
  std::int64_t secs = ns >= 0 ? ns / 1'000'000'000 : -((-ns + 999'999'999) / 1'000'000'000);
  std::int64_t frac = ns - secs * 1'000'000'000;
  std::int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
  std::int64_t rem = secs - days * 86400;
  // civil_from_days
  std::int64_t z = days + 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  const std::int64_t y = static_cast<std::int64_t>(yoe) + era * 400 + (m <= 2);
  return fmt::format("{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:09}", y, m, d, rem / 3600, rem / 60 % 60, rem % 60, frac);
}

std::string store::rewrite(std::string_view in) {
  std::string out;
  out.reserve(in.size() + 16);
  std::size_t i = 0;
  auto quoted = [&](char q) {  // copies a quoted token (doubled quotes inside) and returns its text
    std::size_t start = i++;
    while (i < in.size()) {
      if (in[i] == q) {
        if (i + 1 < in.size() && in[i + 1] == q) {
          i += 2;
          continue;
        }
        ++i;
        break;
      }
      ++i;
    }
    return in.substr(start, i - start);
  };
  while (i < in.size()) {
    char c = in[i];
    if (c == '\'') {
      out += quoted('\'');
    } else if (c == '"') {
      auto first = quoted('"');
      // "database"."table" names one of our tables, "database.table".
      std::size_t j = i;
      while (j < in.size() && in[j] == ' ') ++j;
      if (j < in.size() && in[j] == '.') {
        ++j;
        while (j < in.size() && in[j] == ' ') ++j;
        if (j < in.size() && in[j] == '"') {
          i = j;
          auto second = quoted('"');
          out += std::string(first.substr(0, first.size() - 1)) + "." + std::string(second.substr(1));
          continue;
        }
      }
      out += first;
    } else if (ident_char(c) && !(c >= '0' && c <= '9')) {
      std::size_t start = i;
      while (i < in.size() && ident_char(in[i])) ++i;
      auto word = in.substr(start, i - start);
      if (word == "measure_value" && in.substr(i, 2) == "::") {
        std::size_t t = i + 2;
        while (t < in.size() && ident_char(in[t])) ++t;
        out += "\"measure_value::" + std::string(in.substr(i + 2, t - i - 2)) + "\"";
        i = t;
      } else {
        out += word;
      }
    } else if (c >= '0' && c <= '9') {
      std::size_t start = i;
      while (i < in.size() && ((in[i] >= '0' && in[i] <= '9') || in[i] == '.')) ++i;
      std::size_t unit_end = i;
      while (unit_end < in.size() && std::isalpha(static_cast<unsigned char>(in[unit_end]))) ++unit_end;
      auto literal = in.substr(start, unit_end - start);
      if (unit_end > i && parse_interval(literal)) {  // 1h, 15m, 30s, 10ms: an interval
        out += "'" + std::string(literal) + "'";
        i = unit_end;
      } else {
        out += in.substr(start, i - start);
      }
    } else {
      out += c;
      ++i;
    }
  }
  return out;
}

store::store(std::filesystem::path file, common::clock& clock, settings s)
    : clock_(clock), settings_(s), file_(std::move(file)) {
  if (sqlite3_open_v2(file_.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr) !=
      SQLITE_OK)
    throw std::runtime_error("telemetry: cannot open " + file_.string());
  exec(db_, "PRAGMA journal_mode=WAL");
  exec(db_, "PRAGMA synchronous=NORMAL");  // WAL: a committed batch survives a crash of the process
  if (sqlite3_open_v2(file_.c_str(), &reader_, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK)
    throw std::runtime_error("telemetry: cannot open " + file_.string() + " for reading");
  for (auto [name, argc, fn] : {std::tuple{"now", 0, &fn_now}, std::tuple{"ago", 1, &fn_ago},
                                std::tuple{"bin", 2, &fn_bin}, std::tuple{"from_milliseconds", 1, &fn_from_ms},
                                std::tuple{"to_milliseconds", 1, &fn_to_ms}})
    sqlite3_create_function_v2(reader_, name, argc, SQLITE_UTF8, &clock_, fn, nullptr, nullptr, nullptr);
  sqlite3_set_authorizer(reader_, read_only_authorizer, nullptr);
  writer_ = std::thread([this] { writer_loop(); });
}

store::~store() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (writer_.joinable()) writer_.join();
  for (auto& [sql, st] : inserts_) sqlite3_finalize(st);
  sqlite3_close(reader_);
  sqlite3_close(db_);
}

void store::write(std::vector<record> records, std::function<void(bool)> done) {
  {
    std::lock_guard lock(mutex_);
    queue_.push_back({std::move(records), std::move(done)});
  }
  wake_.notify_one();
}

void store::writer_loop() {
  for (;;) {
    std::vector<batch> work;
    {
      std::unique_lock lock(mutex_);
      wake_.wait_for(lock, std::chrono::seconds(1), [this] { return stopping_ || !queue_.empty(); });
      if (stopping_ && queue_.empty()) return;
      while (!queue_.empty()) {
        work.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    if (!work.empty()) {
      bool ok = apply(work);
      batches_.inc();
      if (!ok) failed_batches_.inc();
      for (auto& b : work)
        if (b.done) b.done(ok);
    }
    if (clock_.wall_ms() >= next_expiry_ms_) {
      expire();
      next_expiry_ms_ = clock_.wall_ms() + 60'000;
    }
  }
}

bool store::ensure_table(const record& r) {
  std::string table = r.database + "." + r.table;
  auto it = columns_.find(table);
  if (it == columns_.end()) {
    auto q = quote_identifier(table);
    std::string create = "CREATE TABLE IF NOT EXISTS " + q +
                         "(time TEXT NOT NULL, measure_name TEXT NOT NULL, \"measure_value::bigint\" INTEGER, "
                         "\"measure_value::double\" REAL, \"measure_value::boolean\" BOOLEAN, "
                         "\"measure_value::varchar\" TEXT)";
    std::string index = "CREATE INDEX IF NOT EXISTS " + quote_identifier(table + ".time") + " ON " + q + "(time)";
    if (sqlite3_exec(db_, create.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK ||
        sqlite3_exec(db_, index.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK)
      return false;
    std::set<std::string> cols;
    sqlite3_stmt* st = nullptr;
    std::string info = "PRAGMA table_info(" + q + ")";
    if (sqlite3_prepare_v2(db_, info.c_str(), -1, &st, nullptr) != SQLITE_OK) return false;
    while (sqlite3_step(st) == SQLITE_ROW) cols.insert(reinterpret_cast<const char*>(sqlite3_column_text(st, 1)));
    sqlite3_finalize(st);
    it = columns_.emplace(table, std::move(cols)).first;
  }
  for (const auto& [name, value] : r.dimensions) {
    if (it->second.contains(name)) continue;
    std::string alter = "ALTER TABLE " + quote_identifier(table) + " ADD COLUMN " + quote_identifier(name) + " TEXT";
    if (sqlite3_exec(db_, alter.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) return false;
    it->second.insert(name);
  }
  return true;
}

bool store::apply(std::vector<batch>& batches) {
  if (sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK) return false;
  bool ok = true;
  std::size_t n = 0;
  for (auto& b : batches) {
    for (const auto& r : b.records) {
      if (!ensure_table(r)) {
        ok = false;
        break;
      }
      std::string sql = "INSERT INTO " + quote_identifier(r.database + "." + r.table) + "(time, measure_name, " +
                        quote_identifier(column_of(r.type));
      for (const auto& [name, value] : r.dimensions) sql += ", " + quote_identifier(name);
      sql += ") VALUES(?, ?, ?";
      for (std::size_t i = 0; i < r.dimensions.size(); ++i) sql += ", ?";
      sql += ")";
      auto& st = inserts_[sql];
      if (!st && sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) {
        inserts_.erase(sql);
        ok = false;
        break;
      }
      auto time = format_time(r.time_ns);
      sqlite3_bind_text(st, 1, time.c_str(), static_cast<int>(time.size()), SQLITE_TRANSIENT);
      sqlite3_bind_text(st, 2, r.measure_name.c_str(), static_cast<int>(r.measure_name.size()), SQLITE_STATIC);
      switch (r.type) {
        case record::kind::bigint:
        case record::kind::boolean: sqlite3_bind_int64(st, 3, r.bigint); break;
        case record::kind::double_: sqlite3_bind_double(st, 3, r.real); break;
        case record::kind::varchar:
          sqlite3_bind_text(st, 3, r.text.c_str(), static_cast<int>(r.text.size()), SQLITE_STATIC);
          break;
      }
      int i = 4;
      for (const auto& [name, value] : r.dimensions)
        sqlite3_bind_text(st, i++, value.c_str(), static_cast<int>(value.size()), SQLITE_STATIC);
      int rc = sqlite3_step(st);
      sqlite3_reset(st);
      sqlite3_clear_bindings(st);
      if (rc != SQLITE_DONE) {
        ok = false;
        break;
      }
      ++n;
    }
    if (!ok) break;
  }
  if (ok && sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr) == SQLITE_OK) {
    records_.inc(n);
    return true;
  }
  FC_LOG_ERROR("telemetry.write_failed", "err={:q}", common::untrusted(sqlite3_errmsg(db_)));
  sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  // Tables or columns created in the rolled-back transaction are gone: forget what we knew.
  columns_.clear();
  for (auto& [sql, st] : inserts_) sqlite3_finalize(st);
  inserts_.clear();
  return false;
}

void store::expire() {
  auto cutoff = format_time(now_ns(clock_) - std::int64_t(settings_.retention_hours) * 3'600'000'000'000LL);
  std::vector<std::string> tables;
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db_, "SELECT name FROM sqlite_master WHERE type='table'", -1, &st, nullptr) != SQLITE_OK) return;
  while (sqlite3_step(st) == SQLITE_ROW) tables.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)));
  sqlite3_finalize(st);
  for (const auto& t : tables) {
    std::string sql = "DELETE FROM " + quote_identifier(t) + " WHERE time < ?";
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) continue;
    sqlite3_bind_text(st, 1, cutoff.c_str(), static_cast<int>(cutoff.size()), SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_DONE) expired_.inc(static_cast<std::uint64_t>(sqlite3_changes(db_)));
    sqlite3_finalize(st);
  }
}

aws_response store::query(const json::object& in) {
  queries_.inc();
  auto refuse = [this](std::string message) {
    query_errors_.inc();
    return aws_response::error(400, "ValidationException", message);
  };
  auto text = common::text_member(in, "QueryString");
  if (!text || text->empty()) return refuse("QueryString is required");
  std::int64_t max_rows = settings_.max_rows;
  if (auto m = common::int_member(in, "MaxRows")) {
    if (*m < 1 || *m > 1000) return refuse("MaxRows must be between 1 and 1000");
    max_rows = *m;
  }
  std::int64_t offset = 0;
  if (auto t = common::text_member(in, "NextToken")) {
    auto parsed = std::strtoll(std::string(*t).c_str(), nullptr, 10);
    if (parsed < 0) return refuse("NextToken is not valid");
    offset = parsed;
  }
  auto sql = rewrite(*text);
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(reader_, sql.c_str(), -1, &st, nullptr) != SQLITE_OK || !st) {
    std::string err = sqlite3_errmsg(reader_);
    if (st) sqlite3_finalize(st);
    return refuse("line 1: " + err);
  }
  std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> guard(st, sqlite3_finalize);
  if (!sqlite3_stmt_readonly(st)) return refuse("only SELECT queries are supported");
  // Bounded in time: SQLite calls the handler every 1000 steps.
  struct deadline {
    std::chrono::steady_clock::time_point at;
  } dl{std::chrono::steady_clock::now() + std::chrono::milliseconds(settings_.query_timeout_ms)};
  sqlite3_progress_handler(
      reader_, 1000, [](void* p) { return std::chrono::steady_clock::now() > static_cast<deadline*>(p)->at ? 1 : 0; },
      &dl);

  const int cols = sqlite3_column_count(st);
  struct cell {
    int type;
    std::string text;
  };
  std::vector<std::vector<cell>> rows;
  std::int64_t seen = 0;
  bool more = false;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (seen++ < offset) continue;
    if (static_cast<std::int64_t>(rows.size()) == max_rows) {
      more = true;
      break;
    }
    std::vector<cell> row;
    for (int c = 0; c < cols; ++c) {
      int t = sqlite3_column_type(st, c);
      std::string v;
      if (t == SQLITE_FLOAT) v = fmt::format("{}", sqlite3_column_double(st, c));
      else if (t != SQLITE_NULL) v = reinterpret_cast<const char*>(sqlite3_column_text(st, c));
      row.push_back({t, std::move(v)});
    }
    rows.push_back(std::move(row));
  }
  sqlite3_progress_handler(reader_, 0, nullptr, nullptr);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE)
    return refuse(rc == SQLITE_INTERRUPT ? "the query ran longer than the limit" : sqlite3_errmsg(reader_));

  // Column types: Timestream's scalar types, from the declared column or the first value present.
  json::array info;
  std::vector<std::string> types;
  for (int c = 0; c < cols; ++c) {
    std::string type = "VARCHAR";
    const char* decl = sqlite3_column_decltype(st, c);
    if (decl && std::string_view(decl) == "BOOLEAN") {
      type = "BOOLEAN";
    } else {
      for (const auto& row : rows) {
        if (row[c].type == SQLITE_NULL) continue;
        type = row[c].type == SQLITE_INTEGER ? "BIGINT"
               : row[c].type == SQLITE_FLOAT ? "DOUBLE"
               : timestamp_text(row[c].text) ? "TIMESTAMP"
                                             : "VARCHAR";
        break;
      }
    }
    types.push_back(type);
    info.push_back(json::object{{"Name", sqlite3_column_name(st, c)}, {"Type", json::object{{"ScalarType", type}}}});
  }
  json::array out;
  for (auto& row : rows) {
    json::array data;
    for (int c = 0; c < cols; ++c) {
      if (row[c].type == SQLITE_NULL) {
        data.push_back(json::object{{"NullValue", true}});
      } else if (types[c] == "BOOLEAN") {
        data.push_back(json::object{{"ScalarValue", row[c].text == "0" ? "false" : "true"}});
      } else {
        data.push_back(json::object{{"ScalarValue", std::move(row[c].text)}});
      }
    }
    out.push_back(json::object{{"Data", std::move(data)}});
  }
  json::object body{{"QueryId", fmt::format("q-{:x}-{}", clock_.wall_ms(), queries_.value())},
                    {"Rows", std::move(out)},
                    {"ColumnInfo", std::move(info)},
                    {"QueryStatus", json::object{{"ProgressPercentage", 100.0}}}};
  if (more) body["NextToken"] = std::to_string(offset + max_rows);
  return aws_response::ok(json::serialize(body));
}

void store::register_metrics(common::registry& r) const {
  r.add(records_, "fleetcore_telemetry_records_total", "", "Records written to the telemetry store.");
  r.add(batches_, "fleetcore_telemetry_batches_total", "", "Telemetry write transactions (group commits).");
  r.add(failed_batches_, "fleetcore_telemetry_failed_batches_total", "",
        "Telemetry write transactions that failed (their records were not written; the rule's errorAction runs).");
  r.add(expired_, "fleetcore_telemetry_expired_records_total", "", "Records deleted by retention.");
  r.add(queries_, "fleetcore_telemetry_queries_total", "", "timestream-query Query requests.");
  r.add(query_errors_, "fleetcore_telemetry_query_errors_total", "", "Queries refused (ValidationException).");
}

}  // namespace fleetcore::telemetry
