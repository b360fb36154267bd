// Telemetry store throughput: records/s written in group-committed batches (the timestream action's
// path), then the time of a 1-hour-window aggregate query over everything written.
//
//   build/bench/telemetry_bench --records 10000000 --batch 1000
#include "telemetry/store.hpp"

#include <CLI/CLI.hpp>
#include <boost/json.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <future>

using namespace fleetcore;

int main(int argc, char** argv) {
  CLI::App app{"telemetry store benchmark"};
  std::size_t total = 1'000'000, batch = 1000, devices = 1000;
  std::string dir = "/tmp/fc-telemetry-bench";
  app.add_option("--records", total, "records to write");
  app.add_option("--batch", batch, "records per write() call (one rule action's message has a few)");
  app.add_option("--devices", devices, "distinct values of the device dimension");
  app.add_option("--dir", dir, "scratch directory (removed first)");
  CLI11_PARSE(app, argc, argv);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  common::system_clock_source clock;
  telemetry::store s(std::filesystem::path(dir) / "telemetry.db", clock, {});

  // Records spread over the last 24 hours, newest last.
  const std::int64_t now_ns = clock.wall_ms() * 1'000'000;
  const std::int64_t span_ns = 24LL * 3600 * 1'000'000'000;
  std::atomic<std::size_t> pending{0};
  std::promise<void> all_done;
  std::atomic<bool> failed{false};
  auto start = std::chrono::steady_clock::now();
  std::size_t written = 0;
  while (written < total) {
    std::vector<telemetry::record> rs;
    rs.reserve(batch);
    for (std::size_t i = 0; i < batch && written < total; ++i, ++written) {
      std::int64_t t = now_ns - span_ns + static_cast<std::int64_t>(written) * (span_ns / static_cast<std::int64_t>(total));
      rs.push_back({"bench", "env", t, {{"device", "d" + std::to_string(written % devices)}}, "temp",
                    telemetry::record::kind::double_, 0, 20.0 + static_cast<double>(written % 100) / 10, {}});
    }
    pending++;
    s.write(std::move(rs), [&](bool ok) {
      if (!ok) failed = true;
      if (--pending == 0 && written >= total) all_done.set_value();
    });
    while (pending > 64) std::this_thread::sleep_for(std::chrono::microseconds(200));  // bounded backlog
  }
  if (pending > 0) all_done.get_future().wait();
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("records=%zu batch=%zu write_s=%.2f records_per_s=%.0f failed=%d\n", total, batch, secs,
              static_cast<double>(total) / secs, failed.load() ? 1 : 0);

  const char* q =
      R"(SELECT device, avg(measure_value::double) AS avg_temp, count(*) AS n FROM "bench"."env" )"
      R"(WHERE time > ago(1h) AND measure_name = 'temp' GROUP BY device ORDER BY avg_temp DESC LIMIT 10)";
  for (int run = 0; run < 3; ++run) {
    auto qs = std::chrono::steady_clock::now();
    auto r = s.query(boost::json::object{{"QueryString", q}, {"MaxRows", 1000}});
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - qs).count();
    std::printf("query_1h_window_ms=%.1f ok=%d\n", ms, r.failed() ? 0 : 1);
    if (r.failed()) std::printf("%s\n", r.body.c_str());
  }
  std::filesystem::remove_all(dir);
  return failed ? 1 : 0;
}
