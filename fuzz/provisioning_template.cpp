// Fuzzes the provisioning template parser and evaluator: the input is a template body, then (after a
// NUL byte, if any) a JSON object of parameters. Nothing may crash, recurse without bound or allocate
// without bound; a plan names its thing and its policies, and a certificate one way.
#include "provisioning/template.hpp"

#include <boost/json/parse.hpp>

#include <cstdlib>

using namespace fleetcore::provisioning;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  std::string_view body = in, params_text;
  if (auto nul = in.find('\0'); nul != std::string_view::npos) {
    body = in.substr(0, nul);
    params_text = in.substr(nul + 1);
  }
  std::string error;
  auto t = parse_template(body, error);
  if (!t) {
    if (error.empty()) std::abort();
    return 0;
  }
  std::map<std::string, std::string> params{{"ThingName", "t1"}, {"SerialNumber", "1"},
                                            {"AWS::IoT::Certificate::Id", "abc"}};
  boost::system::error_code ec;
  auto extra = boost::json::parse(params_text, ec);
  if (!ec && extra.is_object())
    for (const auto& [k, v] : extra.get_object())
      if (v.is_string()) params[std::string(k)] = std::string(v.get_string());
  auto p = evaluate(*t, params, error);
  if (!p) {
    if (error.empty()) std::abort();
    return 0;
  }
  if (p->thing && p->thing->name.empty()) std::abort();
  for (const auto& policy : p->policies)
    if (policy.name.empty()) std::abort();
  if (p->certificate && int(p->certificate->csr.has_value()) + int(p->certificate->id.has_value()) +
                                int(p->certificate->pem.has_value()) != 1)
    std::abort();
  return 0;
}
