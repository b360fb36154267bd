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

/// SQLite in WAL mode with synchronous=FULL. One writer thread takes every batch queued since its
/// last commit and applies them in one transaction: a group commit, so one fsync covers many
/// acknowledgements.
class sqlite_store final : public store {
 public:
  /// Opens (creating if needed) `dir/fleetcore.db`. Throws std::runtime_error if the database cannot
  /// be opened or migrated: the server cannot start without its store.
  explicit sqlite_store(const std::filesystem::path& dir);
  ~sqlite_store() override;

  snapshot load() override;
  std::vector<document> load_documents(const std::string& kind) override;
  void submit(std::vector<operation> ops, std::function<void(bool)> done) override;
  void flush() override;

  void register_metrics(common::registry& r) const;

 private:
  struct batch {
    std::vector<operation> ops;
    std::function<void(bool)> done;
  };
  void run();
  void apply(const operation& op);
  void exec(const char* sql);
  sqlite3_stmt* prepare(const char* sql);

  sqlite3* db_ = nullptr;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable flushed_;
  std::deque<batch> queue_;
  std::uint64_t submitted_ = 0;
  std::uint64_t committed_ = 0;
  bool stop_ = false;
  std::vector<sqlite3_stmt*> statements_;
  common::counter commits_;
  common::counter ops_;
  common::counter errors_;
  std::thread thread_;
};

}  // namespace fleetcore::storage
