#pragma once
#include "broker/router.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <thread>
#include <unordered_set>
#include <vector>

namespace fleetcore::broker {

class client_connection;

/// One thread running one io_context. Connections accepted onto a worker stay there; the worker owns
/// its copy of the subscription trie and a scratch buffer that plain-TCP reads use, so idle
/// connections hold no read buffer of their own.
class worker {
 public:
  explicit worker(unsigned index);
  ~worker();
  worker(const worker&) = delete;
  worker& operator=(const worker&) = delete;

  unsigned index() const noexcept { return index_; }
  boost::asio::io_context& io() noexcept { return io_; }
  router& routes() noexcept { return router_; }
  std::span<std::uint8_t> scratch() noexcept { return scratch_; }

  /// True when called on this worker's thread.
  bool on_thread() const noexcept { return current() == this; }
  /// Tests: the calling thread acts as this worker (no thread of its own); run its handlers with
  /// `io().poll()`.
  void adopt_current_thread() noexcept;
  static worker* current() noexcept;

  template <typename Fn>
  void post(Fn&& fn) {
    boost::asio::post(io_, std::forward<Fn>(fn));
  }

  void start();
  void stop();
  void join();

  /// Connections living on this worker (keepalive sweep, shutdown, back-pressure).
  std::unordered_set<std::shared_ptr<client_connection>>& connections() noexcept { return connections_; }
  std::vector<std::weak_ptr<client_connection>>& paused() noexcept { return paused_; }
  boost::asio::steady_timer& pressure_timer() noexcept { return pressure_timer_; }

 private:
  unsigned index_;
  boost::asio::io_context io_{1};
  std::unique_ptr<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guard_;
  router router_;
  std::array<std::uint8_t, 64 * 1024> scratch_{};
  std::unordered_set<std::shared_ptr<client_connection>> connections_;
  std::vector<std::weak_ptr<client_connection>> paused_;
  boost::asio::steady_timer pressure_timer_{io_};
  std::thread thread_;
};

}  // namespace fleetcore::broker
