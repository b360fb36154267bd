#pragma once
#include "storage/group_commit_store.hpp"

#include <filesystem>

struct sqlite3;
struct sqlite3_stmt;

namespace fleetcore::storage {

/// The embedded default: SQLite in WAL mode with synchronous=FULL, one connection owned by the
/// group-commit thread (so NOMUTEX), each batch in a savepoint of the group's transaction.
class sqlite_store final : public group_commit_store {
 public:
  /// Opens (creating if needed) `dir/fleetcore.db`. Throws std::runtime_error if the database cannot
  /// be opened or migrated: the server cannot start without its store.
  explicit sqlite_store(const std::filesystem::path& dir);
  /// Applies everything already submitted, then closes the database.
  ~sqlite_store() override;

 private:
  bool begin() override;
  bool apply_batch(const std::vector<operation>& ops) override;
  bool in_transaction() override;
  bool commit() override;
  snapshot read_snapshot() override;
  std::vector<document> read_documents(const std::string& kind, const std::string* key) override;
  std::optional<session_record> read_session(const std::string& client_id) override;
  std::vector<session_record> read_node_sessions(const std::string& node) override;
  /// Adds the stored sessions of `scope` to `snap`, each with the subscriptions, queued messages and
  /// inbound ids of its own incarnation; counts max_seq and max_incarnation.
  void read_sessions(session_scope scope, snapshot& snap);

  bool apply(const operation& op);
  bool step(std::size_t statement);
  void exec(const char* sql);
  /// True if `table` exists without `column`: a database of an older schema, to be migrated.
  bool lacks_column(const char* table, const char* column);
  sqlite3_stmt* prepare(const char* sql);

  sqlite3* db_ = nullptr;
  std::vector<sqlite3_stmt*> statements_;
};

}  // namespace fleetcore::storage
