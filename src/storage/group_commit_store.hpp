#pragma once
// What every backend of `store` shares: one thread that owns the backend's only connection and runs
// every statement, reads included, in submission order; and group commit — the writer takes every
// batch queued since its last commit and applies them in one transaction, each batch in its own
// savepoint, so one durable commit covers many acknowledgements and a failed statement fails only
// its own batch. A backend says how to begin, apply a batch, commit and read.
#include "common/metrics.hpp"
#include "storage/store.hpp"

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

namespace fleetcore::storage {

class group_commit_store : public store {
 public:
  /// Any thread but the store's own (checked: waiting there would deadlock).
  snapshot load() final;
  /// Any thread but the store's own (checked).
  std::vector<document> load_documents(const std::string& kind) final;
  /// Any thread but the store's own (checked).
  std::optional<document> load_document(const std::string& kind, const std::string& key) final;
  /// Any thread, including the store's own (from a `done` callback): it only queues the read.
  void load_session(std::string client_id, session_read done) final;
  /// Any thread, including the store's own (from a `done` callback): it only queues the read.
  void load_node_sessions(std::string node, sessions_read done) final;
  /// Any thread, including the store's own (from a `done` callback).
  void submit(std::vector<operation> ops, std::function<void(bool)> done) final;
  /// Any thread but the store's own (checked).
  void flush() final;

  void register_metrics(common::registry& r) const;

 protected:
  /// Which sessions a backend's session read covers: all, one client's, or those one cluster node
  /// holds (`value`: the client id or node id).
  struct session_scope {
    enum { all, client, node } by = all;
    const std::string* value = nullptr;
    /// The WHERE clause (or nothing) that limits a query of `table` (sessions, subscriptions, queued
    /// messages, inbound ids: all keyed by client_id) to the scope; `param` is the backend's spelling
    /// of the one parameter, `value`.
    std::string where(std::string_view table, std::string_view param) const;
  };

  /// The backend's constructor calls start() once its connection is ready, and its destructor calls
  /// stop() before closing it: the thread calls the backend's functions below.
  void start();
  /// Applies everything already submitted, then joins the thread.
  void stop();

  /// Opens a transaction; false if it could not be.
  virtual bool begin() = 0;
  /// Applies one batch in a savepoint of the open transaction: true if all of it applied; otherwise
  /// the batch left nothing behind (or the transaction is gone: in_transaction() says).
  virtual bool apply_batch(const std::vector<operation>& ops) = 0;
  /// False once an error has ended the open transaction (with every batch in it).
  virtual bool in_transaction() = 0;
  /// Commits the open transaction durably; false if it failed (then nothing of it is kept).
  virtual bool commit() = 0;
  virtual snapshot read_snapshot() = 0;
  /// The documents of `kind` in key order; only the one of `key` when given.
  virtual std::vector<document> read_documents(const std::string& kind, const std::string* key) = 0;
  /// The session of `client_id` as read_snapshot() has it, if stored; throws if it cannot be read.
  virtual std::optional<session_record> read_session(const std::string& client_id) = 0;
  /// The sessions held by cluster node `node`, as read_snapshot() has them; throws if they cannot be read.
  virtual std::vector<session_record> read_node_sessions(const std::string& node) = 0;

  /// Counts an applied operation and a failed statement (the backend logs it).
  void count_op() { ops_.inc(); }
  void count_error() { errors_.inc(); }

 private:
  /// A write batch, or a read job when `read` is set (then `ops` and `done` are empty).
  struct job {
    std::vector<operation> ops;
    std::function<void(bool)> done;
    std::function<void()> read;
  };
  void run();
  void commit_group(std::deque<job>::iterator first, std::deque<job>::iterator last);
  void enqueue(job j);
  /// Queues `read` for the store's thread; `done(result, ok)` runs there (load_session and the like).
  template <class Result, class Read, class Done>
  void read_for(std::string what, Read read, Done done);
  void check_not_store_thread() const;

  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable flushed_;
  std::deque<job> queue_;
  std::uint64_t submitted_ = 0;
  std::uint64_t committed_ = 0;
  bool stop_ = false;
  common::counter commits_;
  common::counter ops_;
  common::counter errors_;
  common::counter failed_batches_;
  std::thread thread_;
};

}  // namespace fleetcore::storage
