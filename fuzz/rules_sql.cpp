// AWS IoT SQL: arbitrary text as a statement (and as a substitution template), under every version;
// whatever parses is evaluated against a fixed JSON payload and against fuzzed bytes. Input
// "<sql>\0<payload>" gives the payload explicitly; without a NUL the input is also the payload.
#include "rules/sql/sql.hpp"

#include <boost/json/parse.hpp>

#include <cstdint>
#include <cstdlib>
#include <string_view>

namespace {

using namespace fleetcore::rules::sql;

constexpr std::string_view fixed_payload =
    R"({"a":1,"b":"x","c":42,"d":10.0,"e":[{"n":"t","v":22.5},{"n":"l","v":135}],"o":{"k":[1,2,{"z":null}]},)"
    R"("s":"-5.5E2","t":"true","enc":"eyJ0ZW1wIjozM30="})";

void check(const evaluation& e) {
  if (!e.matched && !e.payload.empty()) std::abort();  // no output without a match
  if (e.is_json) {  // what the engine calls JSON is JSON an action's consumer can parse
    boost::system::error_code ec;
    boost::json::parse_options opt;
    opt.max_depth = 100000;
    (void)boost::json::parse(e.payload, ec, {}, opt);
    if (ec) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  std::string_view sql = in, payload = in;
  if (auto nul = in.find('\0'); nul != std::string_view::npos) {
    sql = in.substr(0, nul);
    payload = in.substr(nul + 1);
  }
  message_context m;
  m.topic = "sensors/d1/data";
  m.client_id = "dev-1";
  m.principal = "cert";
  m.timestamp_ms = 1481825251155;
  m.account_id = "123456789012";
  m.shadow_reader = [](std::string_view, std::string_view) -> std::optional<boost::json::value> {
    return boost::json::parse(R"({"state":{"reported":{"alarm":"ON"}}})");
  };
  m.secret_reader = [](std::string_view, std::string_view) -> std::optional<std::string> { return "s"; };
  for (sql_version v : {sql_version::v2015_10_08, sql_version::v2016_03_23}) {
    auto st = statement::parse(sql, v);
    if (st) {
      m.payload = fixed_payload;
      check(st->evaluate(m));
      m.payload = payload;
      check(st->evaluate(m));
    } else if (st.error().offset > sql.size() || st.error().message.empty()) {
      std::abort();
    }
    auto t = substitution_template::parse(sql, v);
    if (t) {
      m.payload = fixed_payload;
      (void)t->render(m);
    }
  }
  return 0;
}
