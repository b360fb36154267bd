// Fuzzes the shadow update parser and merger: each input is an /update payload applied to a shadow
// that carries over between inputs (every few inputs it is deleted, and its stored form is read
// back). Invariants: a refusal is an AWS error code and changes nothing; an accepted update bumps
// the version by one and keeps the state within the size limit; the stored form round-trips.
#include "shadow/document.hpp"

#include <cstdlib>

using namespace fleetcore::shadow;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static shadow_state s;
  static std::int64_t now = 1'700'000'000;
  static unsigned n = 0;
  std::string_view payload(reinterpret_cast<const char*>(data), size);
  limits lim;
  ++now;
  request req;
  update_result out;
  const auto before_version = s.version;
  const auto before_state = s.state;
  auto e = parse_update(payload, lim, req);
  if (!e) e = apply_update(s, req, now, lim, out);
  if (e) {
    if (e->code != 400 && e->code != 409 && e->code != 413 && e->code != 415) std::abort();
    if (s.state != before_state || s.version != before_version) std::abort();
  } else {
    // (A shadow deleted more than 48 hours ago starts over at version 1.)
    if (s.version != before_version + 1 && s.version != 1) std::abort();
    if (boost::json::serialize(s.state).size() > lim.max_document_bytes) std::abort();
  }
  boost::json::object doc;
  (void)get_document(s, {}, now, doc, "fuzz");
  auto back = shadow_state::parse(s.serialize());
  if (!back || back->state != s.state || back->version != s.version) std::abort();
  if (++n % 16 == 0) (void)delete_shadow(s, {}, now, doc, "fuzz");
  return 0;
}
