#pragma once
// The telemetry store as a platform service: <data-dir>/telemetry.db, and the timestream-query Query
// operation on the api listener.
#include "platform/service.hpp"
#include "telemetry/store.hpp"

namespace fleetcore::telemetry {

class module final : public platform::service {
 public:
  module(platform::core& core, settings s)
      : store_(core.data_dir / "telemetry.db", core.clock, s) {
    store_.register_metrics(core.metrics);
  }
  std::string_view name() const override { return "telemetry"; }
  common::aws_operations operations() override {
    return {{"Query", [this](std::string_view, const boost::json::object& in) { return store_.query(in); }}};
  }
  /// The store, for the rules engine's timestream action.
  telemetry::store& store() noexcept { return store_; }

 private:
  telemetry::store store_;
};

}  // namespace fleetcore::telemetry
