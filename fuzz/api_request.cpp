// Fuzzes the control plane behind authentication: the input is split on newlines into method,
// target, x-amzn-principal and body; the request is bound to an operation as botocore's model
// declares it and run by the registry (over a store that accepts everything). Nothing may crash;
// every refusal is an AWS-shaped error.
#include "api/routes.hpp"
#include "registry/registry.hpp"
#include "storage/discard_store.hpp"

#include <cstdlib>

using namespace fleetcore;

namespace {


registry::registry& the_registry() {
  static storage::discard_store store;
  static common::manual_clock clock;
  static auto key = auth::generate_ec_key();
  static auto ca = auth::make_certificate({"fuzz CA", {}, {}, 30, true, false}, key.get(), nullptr, nullptr);
  static registry::registry r({}, store, clock, auth::x509_ptr(X509_dup(ca.get())), auth::pkey_ptr(EVP_PKEY_dup(key.get())));
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  std::string_view parts[4];
  for (int i = 0; i < 3; ++i) {
    std::size_t nl = in.find('\n');
    parts[i] = in.substr(0, nl);
    in = nl == std::string_view::npos ? std::string_view{} : in.substr(nl + 1);
  }
  parts[3] = in;
  auto header = [&](std::string_view name) -> std::optional<std::string> {
    if (name == "x-amzn-principal" && !parts[2].empty()) return std::string(parts[2]);
    return std::nullopt;
  };
  // Signed for the iot control plane (botocore signs `iot` as execute-api), as the API binds it.
  auto bound = api::bind_request("execute-api", parts[0], parts[1], header, parts[3]);
  if (auto* e = std::get_if<api::bind_error>(&bound)) {
    if (e->code.empty() || e->message.empty()) std::abort();
    return 0;
  }
  auto& req = std::get<api::bound_request>(bound);
  auto out = the_registry().call(req.op->operation, req.input);
  if (out.error && (out.error->code.empty() || out.error->status < 400)) std::abort();
  return 0;
}
