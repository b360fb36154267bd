#include "ota/module.hpp"

namespace fleetcore::ota {

namespace {
std::string arn_prefix(const platform::core& core) {
  return "arn:aws:iot:" + core.registry.config().region + ":" + core.registry.config().account_id + ":";
}
}  // namespace

module::module(platform::core& core, objects::links objects, jobs::jobs_service& jobs,
               std::function<void(std::function<void()>)> defer)
    : streams_(core.store, core.clock, objects, arn_prefix(core)),
      signer_(core.store, core.clock, objects, core.data_dir / "signer", core.registry.config().region,
              core.registry.config().account_id),
      updates_(core.store, core.clock, arn_prefix(core), streams_, jobs, signer_, objects, std::move(defer)) {
  auto& b = core.broker;
  streams_.reply = platform::session_reply(core, 1);
  platform::release_behind_answers(core, streams_.inflight());
  b.add_hook(streams_);
  streams_.register_metrics(core.metrics);
  signer_.register_metrics(core.metrics);
}

common::aws_operations module::operations() {
  common::aws_operations ops;
  for (auto name : stream_service::operations())
    ops.emplace_back(std::string(name), [this](std::string_view op, const boost::json::object& in) {
      return streams_.call(op, in);
    });
  for (auto name : signer::signer_service::operations())
    ops.emplace_back(std::string(name), [this](std::string_view op, const boost::json::object& in) {
      return signer_.call(op, in);
    });
  for (auto name : ota_service::operations())
    ops.emplace_back(std::string(name), [this](std::string_view op, const boost::json::object& in) {
      return updates_.call(op, in);
    });
  return ops;
}

}  // namespace fleetcore::ota
