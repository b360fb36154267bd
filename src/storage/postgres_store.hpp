#pragma once
#include "storage/group_commit_store.hpp"

#include <chrono>
#include <cstdint>
#include <string>

struct pg_conn;

namespace fleetcore::storage {

/// PostgreSQL (libpq), for deployments whose nodes share their state: the same semantics as the
/// embedded SQLite store — batches in submission order, one batch one savepoint of the group's
/// transaction, durable (synchronous_commit on) before its completion runs. The group-commit thread
/// owns the only connection. A lost connection fails the batches of the group in progress and is
/// re-established at the next group.
class postgres_store final : public group_commit_store {
 public:
  /// The schema version this build creates and reads (table `fleetcore_schema`).
  static constexpr int schema_version = 2;

  /// Connects to `conninfo` (a `postgresql://` URL or libpq key=value string), then creates or checks
  /// the schema under an advisory lock (nodes starting together migrate once): a new database gets
  /// this version's schema, an older one is migrated. Throws std::runtime_error if it cannot
  /// connect, or the database has a newer schema than this build.
  explicit postgres_store(std::string conninfo);
  /// Applies everything already submitted, then disconnects.
  ~postgres_store() override;

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
  /// Runs a read; a connection the read finds dead (the server restarted while it was idle) is
  /// re-established and the read runs once more, as a group's BEGIN does. Throws if it still fails.
  template <class Read>
  auto reading(Read&& read);

  /// Runs a statement without parameters; false (logged, counted) if it failed.
  bool command(const char* sql);
  /// Connects and prepares the statements; false (logged) if it could not.
  bool connect();
  /// True if connected, reconnecting (and preparing again) if the connection was lost.
  bool connected();
  void migrate();

  std::string conninfo_;
  pg_conn* conn_ = nullptr;
  bool ready_ = false;  // connected, schema checked, statements prepared
  std::chrono::steady_clock::time_point next_attempt_{};  // of a reconnection
  std::int64_t xid_ = 0;  // of the open transaction
};

}  // namespace fleetcore::storage
