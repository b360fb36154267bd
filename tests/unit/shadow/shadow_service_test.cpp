// The shadow service in shared (cluster) mode: two services on one store stand for two nodes.
#include "shadow/shadow_service.hpp"

#include "storage/sqlite_store.hpp"

#include <boost/json/parse.hpp>
#include <gtest/gtest.h>
#include <unistd.h>

#include <condition_variable>
#include <filesystem>
#include <functional>
#include <optional>
#include <memory>
#include <mutex>
#include <set>
#include <vector>

namespace fleetcore::shadow {
namespace {

namespace json = boost::json;

/// Another store's batches, held until release(): a node whose commits are slow.
class held_store final : public storage::store {
 public:
  explicit held_store(storage::store& inner) : inner_(inner) {}
  storage::snapshot load() override { return inner_.load(); }
  std::vector<storage::document> load_documents(const std::string& kind) override { return inner_.load_documents(kind); }
  std::optional<storage::document> load_document(const std::string& kind, const std::string& key) override {
    return inner_.load_document(kind, key);
  }
  void load_session(std::string id, session_read done) override { inner_.load_session(std::move(id), std::move(done)); }
  void load_node_sessions(std::string node, sessions_read done) override {
    inner_.load_node_sessions(std::move(node), std::move(done));
  }
  void submit(std::vector<storage::operation> ops, std::function<void(bool)> done) override {
    std::lock_guard lock(mutex_);
    if (!hold_) return inner_.submit(std::move(ops), std::move(done));
    held_.emplace_back(std::move(ops), std::move(done));
    cv_.notify_all();
  }
  void flush() override { inner_.flush(); }
  void hold() {
    std::lock_guard lock(mutex_);
    hold_ = true;
  }
  /// Waits until `n` batches are held.
  void wait_for(std::size_t n) {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [&] { return held_.size() >= n; });
  }
  void release() {
    std::lock_guard lock(mutex_);
    hold_ = false;
    for (auto& [ops, done] : held_) inner_.submit(std::move(ops), std::move(done));
    held_.clear();
  }

 private:
  storage::store& inner_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool hold_ = false;
  std::vector<std::pair<std::vector<storage::operation>, std::function<void(bool)>>> held_;
};

class shared_shadow_test : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("fc-shadow-" + std::to_string(::getpid()) + "-" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    store_ = std::make_unique<storage::sqlite_store>(dir_);
  }
  void TearDown() override {
    a_.reset();
    b_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  /// A node's shadow service; its committed changes are collected in `sent`.
  std::unique_ptr<shadow_service> node(std::vector<storage::operation>& sent, storage::store* through = nullptr) {
    auto s = std::make_unique<shadow_service>(through ? *through : *store_, clock_);
    s->replicate = [this, &sent](const std::vector<storage::operation>& w) {
      std::lock_guard lock(mutex_);
      sent.insert(sent.end(), w.begin(), w.end());
    };
    s->start();
    return s;
  }
  static json::object update(shadow_service& s, int n) {
    auto r = s.call(operation::update, "t1", "", R"({"state":{"reported":{"n":)" + std::to_string(n) + "}}}").get();
    EXPECT_EQ(r.status, 200) << r.body;
    return json::parse(r.body).as_object();
  }
  static json::object get(shadow_service& s) {
    auto r = s.call(operation::get, "t1", "", "").get();
    EXPECT_EQ(r.status, 200) << r.body;
    return json::parse(r.body).as_object();
  }
  static std::int64_t stored_version(storage::store& st) {
    auto d = st.load_document(std::string(shadow_service::document_kind), "t1\t");
    return d ? json::parse(d->body).at("version").as_int64() : -1;
  }

  std::filesystem::path dir_;
  std::unique_ptr<storage::sqlite_store> store_;
  common::manual_clock clock_;
  std::mutex mutex_;
  std::vector<storage::operation> sent_a_, sent_b_;
  std::unique_ptr<shadow_service> a_, b_;
};

TEST_F(shared_shadow_test, a_node_that_lost_the_race_applies_its_update_over_the_other_nodes) {
  a_ = node(sent_a_);
  b_ = node(sent_b_);
  // Both nodes start from nothing; A creates version 1, then B, which has not seen it, updates.
  EXPECT_EQ(update(*a_, 1).at("version").as_int64(), 1);
  auto from_b = update(*b_, 2);
  EXPECT_EQ(from_b.at("version").as_int64(), 2);  // not a second version 1
  EXPECT_EQ(stored_version(*store_), 2);
  auto doc = get(*b_);
  EXPECT_EQ(doc.at("version").as_int64(), 2);
  EXPECT_EQ(doc.at("state").at("reported").at("n").as_int64(), 2);
  // A learns of version 2 from B's replica, so its next update needs no second try.
  ASSERT_EQ(sent_b_.size(), 1u);
  a_->apply_replica(sent_b_);
  EXPECT_EQ(get(*a_).at("version").as_int64(), 2);
  EXPECT_EQ(update(*a_, 3).at("version").as_int64(), 3);
  common::registry metrics;
  a_->register_metrics(metrics);
  b_->register_metrics(metrics);
  const auto text = metrics.render();
  // B lost once; A, told by the replica, never.
  EXPECT_NE(text.find("fleetcore_shadow_conflicts_total 1\n"), std::string::npos) << text;
}

TEST_F(shared_shadow_test, versions_never_fork_under_concurrent_updates_through_two_nodes) {
  a_ = node(sent_a_);
  b_ = node(sent_b_);
  std::vector<std::future<reply>> replies;
  for (int i = 0; i < 50; ++i) {
    const std::string body = R"({"state":{"reported":{"n":)" + std::to_string(i) + "}}}";
    replies.push_back(a_->call(operation::update, "t1", "", body));
    replies.push_back(b_->call(operation::update, "t1", "", body));
  }
  std::set<std::int64_t> versions;
  for (auto& f : replies) {
    auto r = f.get();
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_TRUE(versions.insert(json::parse(r.body).at("version").as_int64()).second) << r.body;
  }
  EXPECT_EQ(versions.size(), 100u);
  EXPECT_EQ(*versions.begin(), 1);
  EXPECT_EQ(*versions.rbegin(), 100);
  EXPECT_EQ(stored_version(*store_), 100);
}

TEST_F(shared_shadow_test, a_late_replica_does_not_roll_a_shadow_back) {
  a_ = node(sent_a_);
  b_ = node(sent_b_);
  update(*a_, 1);
  update(*a_, 2);
  ASSERT_EQ(sent_a_.size(), 2u);
  b_->apply_replica({sent_a_[1]});
  b_->apply_replica({sent_a_[0]});  // arrives after the newer one
  EXPECT_EQ(get(*b_).at("version").as_int64(), 2);
  // A delete keeps the version: its tombstone replaces the shadow of the same version.
  ASSERT_EQ(a_->call(operation::remove, "t1", "", "").get().status, 200);
  b_->apply_replica({sent_a_.back()});
  EXPECT_EQ(b_->call(operation::get, "t1", "", "").get().status, 404);
}

// A device sends two updates to node A, one after the other; A's first commit is slow. Meanwhile B
// changes the shadow twice and A hears of it. A's first update lost the race and is applied again
// over B's; the second, which waited for it, comes after it: the shadow ends with the device's last
// value.
TEST_F(shared_shadow_test, a_devices_updates_keep_their_order_when_the_first_loses_the_race) {
  held_store slow(*store_);
  a_ = node(sent_a_, &slow);
  b_ = node(sent_b_);
  slow.hold();
  auto first = a_->call(operation::update, "t1", "", R"({"state":{"reported":{"dev":13}}})");
  slow.wait_for(1);
  update(*b_, 1);
  update(*b_, 2);
  ASSERT_EQ(sent_b_.size(), 2u);
  a_->apply_replica({sent_b_[1]});  // B's version 2, newer than A's uncommitted version 1
  auto second = a_->call(operation::update, "t1", "", R"({"state":{"reported":{"dev":14}}})");
  slow.release();
  auto r1 = first.get(), r2 = second.get();
  ASSERT_EQ(r1.status, 200) << r1.body;
  ASSERT_EQ(r2.status, 200) << r2.body;
  EXPECT_LT(json::parse(r1.body).at("version").as_int64(), json::parse(r2.body).at("version").as_int64());
  auto stored = store_->load_document(std::string(shadow_service::document_kind), "t1\t");
  ASSERT_TRUE(stored);
  auto doc = json::parse(stored->body).as_object();
  EXPECT_EQ(doc.at("version").as_int64(), 4);
  EXPECT_EQ(json::serialize(doc.at("state").at("reported")), R"({"n":2,"dev":14})");
  a_.reset();  // before the store it writes through
}

// Three nodes, each told of the others' changes as they commit; eight devices send fifteen updates
// each, without waiting for the answers, each device to one node. Every update is applied once, and
// each device's last value is what the shadow keeps.
TEST_F(shared_shadow_test, pipelined_updates_through_three_nodes_keep_each_devices_order) {
  std::vector<storage::operation> sent_c;
  std::vector<shadow_service*> nodes;
  std::vector<std::unique_ptr<shadow_service>> owned;
  for (int i = 0; i < 3; ++i) {
    auto s = std::make_unique<shadow_service>(*store_, clock_);
    s->replicate = [&nodes, i](const std::vector<storage::operation>& w) {
      for (int j = 0; j < 3; ++j)
        if (j != i) nodes[j]->apply_replica(w);
    };
    nodes.push_back(s.get());
    owned.push_back(std::move(s));
  }
  for (auto& s : owned) s->start();
  constexpr int devices = 8, per = 15;
  std::vector<std::future<reply>> replies;
  for (int k = 0; k < per; ++k)
    for (int d = 0; d < devices; ++d)
      replies.push_back(nodes[d % 3]->call(operation::update, "t1", "",
                                           R"({"state":{"reported":{"w)" + std::to_string(d) + R"(":)" + std::to_string(k) + "}}}"));
  for (auto& f : replies) {
    auto r = f.get();
    ASSERT_EQ(r.status, 200) << r.body;
  }
  auto stored = store_->load_document(std::string(shadow_service::document_kind), "t1\t");
  ASSERT_TRUE(stored);
  auto doc = json::parse(stored->body).as_object();
  EXPECT_EQ(doc.at("version").as_int64(), devices * per);
  for (int d = 0; d < devices; ++d)
    EXPECT_EQ(doc.at("state").at("reported").at("w" + std::to_string(d)).as_int64(), per - 1) << d;
  for (auto& s : owned) s->stop();
}

}  // namespace
}  // namespace fleetcore::shadow
