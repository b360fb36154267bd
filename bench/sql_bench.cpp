// AWS IoT SQL evaluations per second (payload parsing included), one thread:
//   cmake --build build --target sql_bench && build/bench/sql_bench
#include "rules/sql/sql.hpp"

#include <benchmark/benchmark.h>
#include <boost/json/monotonic_resource.hpp>

#include <cstdlib>

namespace {

using namespace fleetcore::rules::sql;

void run(benchmark::State& state, const char* sql, sql_version v, const char* payload, const char* topic = "t/1") {
  auto st = statement::parse(sql, v);
  if (!st) {
    state.SkipWithError(st.error().message.c_str());
    return;
  }
  message_context m;
  m.topic = topic;
  m.payload = payload;
  m.client_id = "dev-1";
  m.timestamp_ms = 1481825251155;
  std::size_t bytes = 0;
  for (auto _ : state) {
    evaluation e = st->evaluate(m);
    bytes += e.payload.size();
    benchmark::DoNotOptimize(e);
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["out_bytes/eval"] = static_cast<double>(bytes) / static_cast<double>(state.iterations());
}

void typical(benchmark::State& s) {
  run(s, "SELECT a, b FROM 't/+' WHERE c > 10", sql_version::v2015_10_08, R"({"a":1,"b":"x","c":42})");
}
void typical_no_match(benchmark::State& s) {
  run(s, "SELECT a, b FROM 't/+' WHERE c > 10", sql_version::v2015_10_08, R"({"a":1,"b":"x","c":4})");
}
void star_plus_context(benchmark::State& s) {
  run(s, "SELECT *, topic(2) AS dev, timestamp() AS ts FROM 'sensors/+/data' WHERE temp > 50",
      sql_version::v2016_03_23,
      R"({"deviceid":"iot123","temp":54.98,"humidity":32.43,"coords":{"latitude":47.615694,"longitude":-122.3359976}})",
      "sensors/d1/data");
}
void functions_heavy(benchmark::State& s) {
  run(s,
      "SELECT upper(deviceid) AS id, md5(deviceid) AS h, round(temp * 1.8 + 32) AS f, "
      "CASE status WHEN 'ok' THEN 1 ELSE 0 END AS up, concat(topic(1), '-', clientid()) AS src "
      "FROM 'sensors/#' WHERE startswith(deviceid, 'iot') AND humidity < 80",
      sql_version::v2016_03_23, R"({"deviceid":"iot123","temp":54.98,"humidity":32.43,"status":"ok"})",
      "sensors/d1/data");
}
void nested_select(benchmark::State& s) {
  run(s, "SELECT (SELECT v FROM e WHERE n = 'temperature') AS temperature, (SELECT VALUE n FROM e) AS sensors FROM 'my/topic'",
      sql_version::v2016_03_23,
      R"({"e":[{"n":"temperature","u":"Cel","t":1234,"v":22.5},{"n":"light","u":"lm","t":1235,"v":135},{"n":"acidity","u":"pH","t":1235,"v":7}]})");
}
// The rules engine's worker-side path: the payload parsed once per message (into an arena), then
// one evaluation per matching rule.
void parse_payload_only(benchmark::State& state) {
  const char* payload = R"({"a":1,"b":"x","c":4})";
  for (auto _ : state) {
    alignas(std::max_align_t) unsigned char buf[4096];
    boost::json::monotonic_resource mr(buf, sizeof buf);
    boost::json::value doc(&mr);
    benchmark::DoNotOptimize(parse_payload(payload, &mr, doc));
  }
  state.SetItemsProcessed(state.iterations());
}
// What rejects most messages of a simple WHERE: the top-level fields, scanned without a document.
void scan_fields_and_reject(benchmark::State& state) {
  auto st = statement::parse("SELECT a, b FROM 't/+' WHERE c > 10", sql_version::v2015_10_08);
  const char* payload = R"({"a":1,"b":"x","c":4})";
  for (auto _ : state) {
    payload_fields fields;
    std::string_view wanted[] = {"c"};
    bool json = fields.scan(payload, wanted);
    benchmark::DoNotOptimize(st->where_rejects(json ? &fields : nullptr));
  }
  state.SetItemsProcessed(state.iterations());
}
void typical_no_match_preparsed(benchmark::State& state) {
  auto st = statement::parse("SELECT a, b FROM 't/+' WHERE c > 10", sql_version::v2015_10_08);
  const char* payload = R"({"a":1,"b":"x","c":4})";
  auto doc = parse_payload(payload);
  message_context m;
  m.topic = "t/1";
  m.payload = payload;
  m.payload_parsed = true;
  m.parsed_payload = &*doc;
  for (auto _ : state) {
    evaluation e = st->evaluate(m);
    benchmark::DoNotOptimize(e);
  }
  state.SetItemsProcessed(state.iterations());
}
void template_topic(benchmark::State& state) {
  auto t = substitution_template::parse("alerts/${topic(2)}", sql_version::v2016_03_23);
  message_context m;
  m.topic = "sensors/d1/data";
  m.payload = R"({"temp":60})";
  for (auto _ : state) {
    auto out = t->render(m);
    benchmark::DoNotOptimize(out);
  }
  state.SetItemsProcessed(state.iterations());
}

}  // namespace

BENCHMARK(typical);
BENCHMARK(typical_no_match);
BENCHMARK(star_plus_context);
BENCHMARK(functions_heavy);
BENCHMARK(nested_select);
BENCHMARK(template_topic);
BENCHMARK(parse_payload_only);
BENCHMARK(typical_no_match_preparsed);
BENCHMARK(scan_fields_and_reject);
BENCHMARK_MAIN();
