#include "storage/group_commit_store.hpp"

#include "common/log.hpp"

#include <algorithm>
#include <future>
#include <memory>

namespace fleetcore::storage {
namespace {

/// A read job: runs `read` on the store thread and hands the result (or its exception) to the
/// waiting caller. The job owns the promise, so the caller may return as soon as the value is set.
template <class T, class Read>
std::function<void()> read_job(std::shared_ptr<std::promise<T>> result, Read read) {
  return [result = std::move(result), read = std::move(read)] {
    try {
      result->set_value(read());
    } catch (const std::exception&) {
      result->set_exception(std::current_exception());
    }
  };
}

}  // namespace

void group_commit_store::start() { thread_ = std::thread([this] { run(); }); }

void group_commit_store::stop() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void group_commit_store::check_not_store_thread() const { FC_CHECK(std::this_thread::get_id() != thread_.get_id()); }

snapshot group_commit_store::load() {
  check_not_store_thread();
  auto result = std::make_shared<std::promise<snapshot>>();
  auto ready = result->get_future();
  enqueue({{}, {}, read_job(std::move(result), [this] { return read_snapshot(); })});
  return ready.get();
}

std::vector<document> group_commit_store::load_documents(const std::string& kind) {
  check_not_store_thread();
  auto result = std::make_shared<std::promise<std::vector<document>>>();
  auto ready = result->get_future();
  enqueue({{}, {}, read_job(std::move(result), [this, kind] { return read_documents(kind, nullptr); })});
  return ready.get();
}

std::optional<document> group_commit_store::load_document(const std::string& kind, const std::string& key) {
  check_not_store_thread();
  auto result = std::make_shared<std::promise<std::vector<document>>>();
  auto ready = result->get_future();
  enqueue({{}, {}, read_job(std::move(result), [this, kind, key] { return read_documents(kind, &key); })});
  auto docs = ready.get();
  if (docs.empty()) return std::nullopt;
  return std::move(docs.front());
}

std::string group_commit_store::session_scope::where(std::string_view table, std::string_view param) const {
  switch (by) {
    case client: return fmt::format(" WHERE client_id={}", param);
    case node:
      if (table == "sessions") return fmt::format(" WHERE node={}", param);
      return fmt::format(" WHERE client_id IN (SELECT client_id FROM sessions WHERE node={})", param);
    case all: break;
  }
  return {};
}

// Nobody waits for these reads, so a failure cannot travel as an exception: it is logged (with
// `what`), counted and reported to `done` as not ok (never as "nothing stored", which would let a
// caller start afresh).
template <class Result, class Read, class Done>
void group_commit_store::read_for(std::string what, Read read, Done done) {
  FC_CHECK(static_cast<bool>(done));
  enqueue({{}, {}, [this, what = std::move(what), read = std::move(read), done = std::move(done)] {
             Result result{};
             bool ok = true;
             try {
               result = read();
             } catch (const std::exception& e) {
               ok = false;
               count_error();
               FC_LOG_ERROR("storage.read_failed", "{} err={:q}", what, common::untrusted(e.what()));
             }
             done(std::move(result), ok);
           }});
}

void group_commit_store::load_session(std::string client_id, session_read done) {
  auto what = fmt::format("client={}", common::untrusted(client_id));
  read_for<std::optional<session_record>>(std::move(what), [this, id = std::move(client_id)] { return read_session(id); },
                                          std::move(done));
}

void group_commit_store::load_node_sessions(std::string node, sessions_read done) {
  auto what = fmt::format("node={:q}", common::untrusted(node));
  read_for<std::vector<session_record>>(std::move(what), [this, node = std::move(node)] { return read_node_sessions(node); },
                                        std::move(done));
}

void group_commit_store::submit(std::vector<operation> ops, std::function<void(bool)> done) {
  enqueue({std::move(ops), std::move(done), {}});
}

void group_commit_store::enqueue(job j) {
  {
    std::lock_guard lock(mutex_);
    queue_.push_back(std::move(j));
    ++submitted_;
  }
  wake_.notify_one();
}

void group_commit_store::flush() {
  check_not_store_thread();
  std::unique_lock lock(mutex_);
  std::uint64_t target = submitted_;
  flushed_.wait(lock, [&] { return committed_ >= target; });
}

void group_commit_store::commit_group(std::deque<job>::iterator first, std::deque<job>::iterator last) {
  const auto n = static_cast<std::size_t>(last - first);
  std::vector<char> durable(n, 0);
  std::size_t open_from = 0;  // first batch of the open transaction
  bool open = begin();
  for (std::size_t i = 0; i < n && open; ++i) {
    durable[i] = apply_batch(first[static_cast<std::ptrdiff_t>(i)].ops);
    if (!in_transaction()) {  // the transaction is gone, with every batch before this one
      FC_LOG_ERROR("storage.transaction_lost", "batches={}", i + 1 - open_from);
      std::fill(durable.begin() + static_cast<std::ptrdiff_t>(open_from),
                durable.begin() + static_cast<std::ptrdiff_t>(i) + 1, 0);
      open_from = i + 1;
      open = begin();
    }
  }
  if (open && !commit()) std::fill(durable.begin() + static_cast<std::ptrdiff_t>(open_from), durable.end(), 0);
  commits_.inc();
  for (std::size_t i = 0; i < n; ++i) {
    auto& b = first[static_cast<std::ptrdiff_t>(i)];
    if (!durable[i]) failed_batches_.inc();
    if (b.done) b.done(durable[i] != 0);
  }
}

void group_commit_store::run() {
  std::deque<job> work;
  while (true) {
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (queue_.empty() && stop_) return;
      work.swap(queue_);
    }
    // Consecutive batches share one commit; a read runs between commits, so it sees exactly the
    // batches queued before it.
    for (auto it = work.begin(); it != work.end();) {
      if (it->read) {
        it->read();
        ++it;
        continue;
      }
      auto end = std::find_if(it, work.end(), [](const job& j) { return static_cast<bool>(j.read); });
      commit_group(it, end);
      it = end;
    }
    {
      std::lock_guard lock(mutex_);
      committed_ += work.size();
    }
    flushed_.notify_all();
    work.clear();
  }
}

void group_commit_store::register_metrics(common::registry& r) const {
  r.add(commits_, "fleetcore_storage_commits_total", "", "Group commits (one durable commit each).");
  r.add(ops_, "fleetcore_storage_operations_total", "", "Storage operations applied.");
  r.add(errors_, "fleetcore_storage_errors_total", "", "Failed storage statements and commits.");
  r.add(failed_batches_, "fleetcore_storage_failed_batches_total", "",
        "Batches reported not durable (a statement or the commit failed).");
}

}  // namespace fleetcore::storage
