// Fuzzes the jobs service's device side: each input is a request (its first byte picks the topic:
// get, start-next, $next/get, <jobId>/get, <jobId>/update of a job that exists or not, an unknown
// operation) from one session, applied to jobs that carry over between inputs (recreated every few
// inputs, their timers expired as the clock moves). Invariants: every request gets exactly one
// answer, on the request topic's /accepted or /rejected, to the session that asked, and a JSON one;
// the job's counts always add up to its executions.
#include "broker/message.hpp"
#include "jobs/jobs_service.hpp"
#include "storage/discard_store.hpp"

#include <boost/json/parse.hpp>

#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

using namespace fleetcore;

namespace {
struct harness {
  storage::discard_store store;
  common::manual_clock clock;
  jobs::jobs_service service{store, clock,
                             jobs::directory{[](std::string_view t) { return t == "t1"; },
                                             [](std::string_view) { return std::nullopt; },
                                             [](std::string_view) { return std::vector<std::string>{}; },
                                             [](std::string_view) { return false; }},  // no events: their ids need OpenSSL's per-thread state
                             "arn:aws:iot:us-east-1:123456789012:", jobs::settings{3'600'000, 10}};
  std::mutex mutex;
  std::vector<std::pair<std::string, std::string>> replies;  // (client, topic)

  harness() {
    service.reply = [this](const std::string& client, std::uint64_t, std::string topic, std::string payload) {
      boost::system::error_code ec;
      if (!boost::json::parse(payload, ec).is_object() || ec) std::abort();
      std::lock_guard lock(mutex);
      replies.emplace_back(client, std::move(topic));
    };
    service.publish = [](std::string, std::string payload) {
      boost::system::error_code ec;
      if (!boost::json::parse(payload, ec).is_object() || ec) std::abort();
    };
    service.start();
    recreate();
  }
  void recreate() {
    for (const char* id : {"j1", "j2"}) {
      (void)service.call("DeleteJob", {{"jobId", id}, {"force", true}}).get();
      auto r = service.call("CreateJob", {{"jobId", id},
                                          {"targets", {"arn:aws:iot:us-east-1:123456789012:thing/t1"}},
                                          {"document", R"({"operation":"fuzz"})"},
                                          {"timeoutConfig", {{"inProgressTimeoutInMinutes", 2}}}})
                   .get();
      if (r.failed()) std::abort();
    }
  }
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static harness h;
  static unsigned n = 0;
  if (size == 0) return 0;
  static const char* suffixes[] = {"get", "start-next", "$next/get", "j1/get", "j1/update", "j2/update", "j3/update", "j1/bogus"};
  std::string topic = std::string("$aws/things/t1/jobs/") + suffixes[data[0] % 8];
  std::string payload(reinterpret_cast<const char*>(data) + 1, size - 1);
  broker::publish_context ctx;
  ctx.origin = broker::publish_origin::client;
  ctx.client_id = "fz";
  h.service.on_message(broker::make_message(topic, payload, 1, false, {}, 0, 9), ctx);
  h.service.drain();
  {
    std::lock_guard lock(h.mutex);
    if (h.replies.size() != 1) std::abort();
    const auto& [client, reply] = h.replies.front();
    if (client != "fz" || (reply != topic + "/accepted" && reply != topic + "/rejected")) std::abort();
    h.replies.clear();
  }
  auto job = boost::json::parse(h.service.call("DescribeJob", {{"jobId", "j1"}}).get().body);
  std::int64_t total = 0;
  for (const auto& [k, v] : job.at("job").at("jobProcessDetails").as_object()) total += v.as_int64();
  if (total != 1) std::abort();
  if (++n % 8 == 0) {
    h.clock.advance(std::chrono::seconds(50));
    h.service.tick();
    h.service.drain();
  }
  if (n % 64 == 0) h.recreate();
  return 0;
}
