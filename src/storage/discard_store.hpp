#pragma once
// A store that keeps nothing and reports every batch durable at once: for fuzz targets and
// benchmarks of the layers above storage.
#include "storage/store.hpp"

namespace fleetcore::storage {

class discard_store final : public store {
 public:
  snapshot load() override { return {}; }
  std::vector<document> load_documents(const std::string&) override { return {}; }
  void load_session(std::string, session_read done) override { done(std::nullopt, true); }
  void load_node_sessions(std::string, sessions_read done) override { done({}, true); }
  void submit(std::vector<operation>, std::function<void(bool)> done) override {
    if (done) done(true);
  }
  void flush() override {}
};

}  // namespace fleetcore::storage
