#pragma once
#include "common/metrics.hpp"
#include "storage/store.hpp"

#include <condition_variable>
#include <deque>
#include <filesystem>
#include <mutex>
#include <thread>

struct sqlite3;
struct sqlite3_stmt;

namespace fleetcore::storage {

/// SQLite in WAL mode with synchronous=FULL. One thread, started by the constructor and joined by
/// the destructor, owns the only connection and runs every statement, reads included: `load` and
/// `load_documents` queue a read job behind the batches submitted before them and wait for its
/// result, so no two threads can ever use the connection at once. The writer takes every batch
/// queued since its last commit and applies them in one transaction, each batch in its own
/// savepoint: a group commit, so one fsync covers many acknowledgements, and a failed statement
/// fails only its own batch.
class sqlite_store final : public store {
 public:
  /// Opens (creating if needed) `dir/fleetcore.db`. Throws std::runtime_error if the database cannot
  /// be opened or migrated: the server cannot start without its store.
  explicit sqlite_store(const std::filesystem::path& dir);
  /// Applies everything already submitted, then closes the database.
  ~sqlite_store() override;

  /// Any thread but the store's own (checked: waiting there would deadlock).
  snapshot load() override;
  /// Any thread but the store's own (checked).
  std::vector<document> load_documents(const std::string& kind) override;
  /// Any thread, including the store's own (from a `done` callback).
  void submit(std::vector<operation> ops, std::function<void(bool)> done) override;
  /// Any thread but the store's own (checked).
  void flush() override;

  void register_metrics(common::registry& r) const;

 private:
  /// A write batch, or a read job when `read` is set (then `ops` and `done` are empty).
  struct job {
    std::vector<operation> ops;
    std::function<void(bool)> done;
    std::function<void()> read;
  };
  void run();
  void commit_group(std::deque<job>::iterator first, std::deque<job>::iterator last);
  bool apply_batch(const job& b);
  bool apply(const operation& op);
  bool step(std::size_t statement);
  void enqueue(job j);
  void check_not_store_thread() const;
  snapshot read_snapshot();
  std::vector<document> read_documents(const std::string& kind);
  void exec(const char* sql);
  /// True for a database of schema 2, whose queued messages have no packet id columns yet.
  bool needs_packet_ids();
  sqlite3_stmt* prepare(const char* sql);

  sqlite3* db_ = nullptr;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable flushed_;
  std::deque<job> queue_;
  std::uint64_t submitted_ = 0;
  std::uint64_t committed_ = 0;
  bool stop_ = false;
  std::vector<sqlite3_stmt*> statements_;
  common::counter commits_;
  common::counter ops_;
  common::counter errors_;
  common::counter failed_batches_;
  std::thread thread_;
};

}  // namespace fleetcore::storage
