#include "provisioning/hooks.hpp"

#include <boost/json/parse.hpp>

namespace fleetcore::provisioning {

namespace json = boost::json;

hook_verdict read_hook_answer(const net::http_outcome& o) {
  hook_verdict v;
  if (o.status == 0) {
    v.reason = "the pre-provisioning hook did not answer: " + o.error;
    return v;
  }
  if (o.status < 200 || o.status > 299) {
    v.reason = "the pre-provisioning hook failed: " + o.error;
    return v;
  }
  boost::system::error_code ec;
  auto body = json::parse(o.body, ec);
  if (ec || !body.is_object()) {
    v.reason = "the pre-provisioning hook's answer is not a JSON object";
    return v;
  }
  const auto& answer = body.get_object();
  // AWS's own note writes "true" as a string; a Lambda in Python returns the boolean.
  const auto* allow = answer.if_contains("allowProvisioning");
  const bool allowed = allow && ((allow->is_bool() && allow->get_bool()) ||
                                 (allow->is_string() && allow->get_string() == "true"));
  if (!allowed) {
    v.reason = "the pre-provisioning hook did not allow provisioning";
    return v;
  }
  if (const auto* o2 = answer.if_contains("parameterOverrides"); o2 && !o2->is_null()) {
    if (!o2->is_object()) {
      v.reason = "the pre-provisioning hook's parameterOverrides is not an object";
      return v;
    }
    for (const auto& [k, val] : o2->get_object()) {
      if (!val.is_string()) {
        v.reason = "the pre-provisioning hook's parameterOverrides." + std::string(k) + " is not a string";
        return v;
      }
      v.overrides[std::string(k)] = std::string(val.get_string());
    }
  }
  v.allowed = true;
  return v;
}

}  // namespace fleetcore::provisioning
