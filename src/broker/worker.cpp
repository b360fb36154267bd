#include "broker/worker.hpp"

#include "common/metrics.hpp"

namespace fleetcore::broker {

namespace {
thread_local worker* current_worker = nullptr;
}

worker::worker(unsigned index) : index_(index) {}

worker::~worker() {
  stop();
  join();
}

worker* worker::current() noexcept { return current_worker; }

void worker::adopt_current_thread() noexcept { current_worker = this; }

void worker::start() {
  guard_ = std::make_unique<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>>(
      io_.get_executor());
  thread_ = std::thread([this] {
    current_worker = this;
    common::claim_metrics_slot();
    io_.run();
    current_worker = nullptr;
  });
}

void worker::stop() {
  guard_.reset();
  io_.stop();
}

void worker::join() {
  if (thread_.joinable()) thread_.join();
}

}  // namespace fleetcore::broker
