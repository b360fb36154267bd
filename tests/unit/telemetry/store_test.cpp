#include "telemetry/store.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <future>

namespace fleetcore::telemetry {
namespace {

TEST(TelemetryRewrite, TimestreamNamesColumnsAndIntervals) {
  EXPECT_EQ(store::rewrite(R"(SELECT measure_value::double FROM "db"."tbl" WHERE time > ago(1h))"),
            R"(SELECT "measure_value::double" FROM "db.tbl" WHERE time > ago('1h'))");
  EXPECT_EQ(store::rewrite(R"(SELECT bin(time, 15m) FROM "a" . "b")"), R"(SELECT bin(time, '15m') FROM "a.b")");
  // Strings and numbers stay as they are; an identifier ending in digits and letters is not an interval.
  EXPECT_EQ(store::rewrite("SELECT '1h', 10, 2.5, x1h FROM t LIMIT 10"), "SELECT '1h', 10, 2.5, x1h FROM t LIMIT 10");
  EXPECT_EQ(store::rewrite(R"(SELECT "it""s" FROM t)"), R"(SELECT "it""s" FROM t)");
}

TEST(TelemetryTime, FixedWidthUtc) {
  EXPECT_EQ(store::format_time(0), "1970-01-01 00:00:00.000000000");
  EXPECT_EQ(store::format_time(1'700'000'000'123'456'789LL), "2023-11-14 22:13:20.123456789");
  EXPECT_EQ(store::format_time(-1), "1969-12-31 23:59:59.999999999");
}

TEST(TelemetryStore, WritesThenQueries) {
  auto dir = std::filesystem::temp_directory_path() / ("fc-telemetry-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  common::manual_clock clock;
  {
    store s(dir / "t.db", clock, {});
    std::vector<record> rs;
    for (int i = 0; i < 3; ++i)
      rs.push_back({"db1", "env", clock.wall_ms() * 1'000'000 - i * 1'000'000'000LL, {{"device", "d" + std::to_string(i)}},
                    "temp", record::kind::double_, 0, 20.0 + i, {}});
    std::promise<bool> done;
    s.write(std::move(rs), [&](bool ok) { done.set_value(ok); });
    ASSERT_TRUE(done.get_future().get());
    auto r = s.query(boost::json::object{
        {"QueryString", R"(SELECT count(*) AS n, max(measure_value::double) AS mx FROM "db1"."env" WHERE time > ago(1h))"}});
    ASSERT_FALSE(r.failed()) << r.body;
    EXPECT_NE(r.body.find(R"("ScalarValue":"3")"), std::string::npos) << r.body;
    EXPECT_NE(r.body.find(R"("ScalarValue":"22")"), std::string::npos) << r.body;
    auto denied = s.query(boost::json::object{{"QueryString", R"(DELETE FROM "db1"."env")"}});
    EXPECT_EQ(denied.error_type, "ValidationException");
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace fleetcore::telemetry
