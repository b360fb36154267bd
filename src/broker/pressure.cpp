// Back-pressure: congested sessions hold back their publishers for a grace period, and broker-wide
// pressure (bytes queued for online sessions) pauses every publisher.
#include "broker/broker.hpp"

#include "common/log.hpp"

#include <algorithm>

namespace fleetcore::broker {

void broker::set_online(session& s, bool online) {
  if (s.online.exchange(online) == online) return;
  online_backlog_bytes_.fetch_add(online ? s.backlog_bytes : -s.backlog_bytes, std::memory_order_relaxed);
}

namespace {
std::int64_t steady_ms(const common::clock& c) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(c.now().time_since_epoch()).count();
}
}  // namespace

void broker::update_congestion(session& s) {
  // Hysteresis: congested at the threshold, clear again at half of it.
  const bool was = s.congested_since.load(std::memory_order_relaxed) != 0;
  const std::size_t divisor = was ? 2 : 1;
  bool c = s.conn && (s.queue.size() * divisor >= cfg_.congestion_queue_length ||
                      s.conn->outbound_bytes() * divisor * 2 >= cfg_.max_outbound_bytes);
  if (c == was) return;
  s.congested_since.store(c ? std::max<std::int64_t>(steady_ms(clock_), 1) : 0, std::memory_order_relaxed);
  congested_.fetch_add(c ? 1 : -1, std::memory_order_relaxed);
}

bool broker::holds_back_publishers(const session& s) const {
  std::int64_t since = s.congested_since.load(std::memory_order_relaxed);
  return since != 0 && steady_ms(clock_) - since < static_cast<std::int64_t>(cfg_.slow_consumer_grace_ms);
}

std::int64_t broker::pressure_bytes() const noexcept {
  return online_backlog_bytes_.load(std::memory_order_relaxed);
}

bool broker::under_pressure() noexcept {
  const auto backlog = pressure_bytes();
  const auto transit = inflight_between_workers_.load(std::memory_order_relaxed);
  const auto high = static_cast<std::int64_t>(cfg_.pressure_high_bytes);
  const auto low = static_cast<std::int64_t>(cfg_.pressure_low_bytes);
  std::int64_t since = pressure_since_.load(std::memory_order_relaxed);
  if (since == 0) {
    if (backlog <= high && transit <= high / 8) return false;
    std::int64_t now = std::max<std::int64_t>(steady_ms(clock_), 1);
    if (pressure_since_.compare_exchange_strong(since, now, std::memory_order_relaxed)) since = now;
  } else if (backlog < low && transit < low / 8) {
    // The episode is over; the next one gets its own grace period.
    pressure_since_.store(0, std::memory_order_relaxed);
    pressure_overrun_.store(false, std::memory_order_relaxed);
    return false;
  }
  if (steady_ms(clock_) - since < static_cast<std::int64_t>(cfg_.slow_consumer_grace_ms)) return true;
  // Still high after the grace period: what holds the bytes is not draining (sessions that do not
  // acknowledge). Pausing everyone would not help and would let them hold every publisher; the
  // per-session bounds cap the memory instead.
  if (!pressure_overrun_.exchange(true, std::memory_order_relaxed)) metrics_.pressure_overruns.inc();
  return false;
}

void broker::pause_for_pressure(client_connection& c) {
  worker& w = c.home();
  bool first = w.paused().empty();
  w.paused().push_back(c.weak_from_this());
  if (first) pressure_tick(w);
}

void broker::pressure_tick(worker& w) {
  w.pressure_timer().expires_after(std::chrono::milliseconds(2));
  w.pressure_timer().async_wait([this, &w](const boost::system::error_code& ec) {
    if (ec) return;
    bool relieved = !under_pressure();
    // Publishers paused for pressure resume together once it is relieved; rate-limited ones also
    // wait for their next one-second window.
    std::vector<std::weak_ptr<client_connection>> still;
    auto paused = std::move(w.paused());
    w.paused().clear();
    for (auto& wc : paused) {
      auto c = wc.lock();
      if (!c) continue;
      if (relieved && !c->rate_limited() && !c->blocked())
        c->resume_reading();
      else
        still.push_back(wc);
    }
    // resume_reading() may have paused some again (appending to w.paused()).
    for (auto& wc : still) w.paused().push_back(std::move(wc));
    if (!w.paused().empty()) pressure_tick(w);
  });
}

}  // namespace fleetcore::broker
