#include "shadow/document.hpp"

#include "mqtt/utf8.hpp"

#include <cmath>

namespace fleetcore::shadow {

namespace json = boost::json;

namespace {

constexpr std::size_t max_client_token = 64;

int depth_of(const json::value& v) {
  int d = 0;
  if (v.is_object()) {
    for (const auto& [k, child] : v.as_object()) d = std::max(d, depth_of(child));
    return d + 1;
  }
  if (v.is_array()) {
    for (const auto& child : v.as_array()) d = std::max(d, depth_of(child));
    return d + 1;
  }
  return 0;
}

bool array_has_null(const json::value& v, bool inside_array) {
  if (v.is_null()) return inside_array;
  if (v.is_object()) {
    for (const auto& [k, child] : v.as_object())
      if (array_has_null(child, false)) return true;
  } else if (v.is_array()) {
    for (const auto& child : v.as_array())
      if (array_has_null(child, true)) return true;
  }
  return false;
}

bool survives_storage(double d) {
  boost::system::error_code ec;
  auto back = json::parse(json::serialize(json::value(d)), ec);
  return !ec && back == json::value(d);
}

/// Gives every floating-point number a value that survives being written and read back unchanged.
/// Boost.JSON 1.81 does not always round a 17-digit number to the nearest double, so some values
/// would move by an ulp per write/read cycle (or alternate between two); the nearest double that
/// reads back as itself is kept instead, so a shadow reads the same across any number of restarts.
/// Returns false for a number JSON cannot represent (out of the range of a double).
bool normalize_numbers(json::value& v) {
  if (v.is_double()) {
    double d = v.as_double();
    if (!std::isfinite(d)) return false;
    if (survives_storage(d)) return true;
    for (int step = 1; step <= 64; ++step) {
      double up = d, down = d;
      for (int i = 0; i < step; ++i) {
        up = std::nextafter(up, HUGE_VAL);
        down = std::nextafter(down, -HUGE_VAL);
      }
      if (std::isfinite(down) && survives_storage(down)) return v = down, true;
      if (std::isfinite(up) && survives_storage(up)) return v = up, true;
    }
  } else if (v.is_object()) {
    for (auto& [k, child] : v.as_object())
      if (!normalize_numbers(child)) return false;
  } else if (v.is_array()) {
    for (auto& child : v.as_array())
      if (!normalize_numbers(child)) return false;
  }
  return true;
}

json::object timestamp_leaf(std::int64_t now) { return {{"timestamp", now}}; }

/// Metadata for the values of a request, as AWS IoT shapes it: objects mirrored, arrays an array
/// with one entry per element, every other value (nulls included) a timestamp leaf.
json::value metadata_for(const json::value& v, std::int64_t now) {
  if (v.is_array()) {
    json::array out;
    out.reserve(v.as_array().size());
    for (const auto& element : v.as_array()) out.push_back(metadata_for(element, now));
    return out;
  }
  if (!v.is_object()) return timestamp_leaf(now);
  json::object out;
  for (const auto& [k, child] : v.as_object()) out[k] = metadata_for(child, now);
  return out;
}

json::object& object_at(json::object& parent, std::string_view key) {
  auto& v = parent[key];
  if (!v.is_object()) v = json::object{};
  return v.as_object();
}

/// Merges `src` into `dst` (and `md`): null removes, objects merge, anything else (arrays included)
/// replaces, its metadata with it.
void merge(json::object& dst, json::object& md, const json::object& src, std::int64_t now) {
  for (const auto& [k, v] : src) {
    if (v.is_null()) {
      dst.erase(k);
      md.erase(k);
    } else if (v.is_object()) {
      merge(object_at(dst, k), object_at(md, k), v.as_object(), now);
    } else {
      dst[k] = v;
      md[k] = metadata_for(v, now);
    }
  }
}

/// Removes empty objects (left by deletions) and their metadata.
void prune(json::object& dst, json::object& md) {
  for (auto it = dst.begin(); it != dst.end();) {
    if (it->value().is_object()) {
      auto* m = md.if_contains(it->key());
      json::object empty;
      prune(it->value().as_object(), m && m->is_object() ? m->as_object() : empty);
      if (it->value().as_object().empty()) {
        md.erase(it->key());
        it = dst.erase(it);
        continue;
      }
    }
    ++it;
  }
}

const json::object* section(const json::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  return v && v->is_object() ? &v->as_object() : nullptr;
}

/// The metadata of `md` for exactly the keys present in `delta`.
json::object project(const json::object& md, const json::object& delta) {
  json::object out;
  for (const auto& [k, v] : delta) {
    auto* m = md.if_contains(k);
    if (!m) continue;
    if (v.is_object() && m->is_object())
      out[k] = project(m->as_object(), v.as_object());
    else
      out[k] = *m;
  }
  return out;
}

void add_token(json::object& o, const std::optional<std::string>& token) {
  if (token) o["clientToken"] = *token;
}

json::object snapshot(const shadow_state& s) {
  return {{"state", s.state}, {"metadata", s.metadata}, {"version", s.version}};
}

std::optional<error> common_fields(const json::object& body, request& out) {
  if (auto* t = body.if_contains("clientToken")) {
    if (!t->is_string() || t->as_string().size() > max_client_token) return error{400, "Invalid clientToken"};
    out.client_token = std::string(t->as_string());
  }
  if (auto* v = body.if_contains("version")) {
    if (v->is_int64() && v->as_int64() >= 0)
      out.version = v->as_int64();
    else if (v->is_uint64() && v->as_uint64() <= static_cast<std::uint64_t>(INT64_MAX))
      out.version = static_cast<std::int64_t>(v->as_uint64());
    else
      return error{400, "Invalid version"};
  }
  return std::nullopt;
}

std::optional<error> parse_object(std::string_view payload, json::object& out) {
  if (!mqtt::valid_utf8(payload)) return error{415, "Unsupported documented encoding; supported encoding is UTF-8"};
  boost::system::error_code ec;
  json::parse_options opts;
  opts.max_depth = 64;
  auto v = json::parse(payload, ec, {}, opts);
  if (ec || !v.is_object()) return error{400, "Invalid JSON"};
  out = std::move(v.as_object());
  return std::nullopt;
}

}  // namespace

std::string shadow_state::serialize() const {
  return json::serialize(json::object{{"state", state},
                                      {"metadata", metadata},
                                      {"version", version},
                                      {"exists", exists},
                                      {"deleted_at", deleted_at}});
}

std::optional<shadow_state> shadow_state::parse(std::string_view stored) {
  boost::system::error_code ec;
  auto v = json::parse(stored, ec);
  if (ec || !v.is_object()) return std::nullopt;
  auto& o = v.as_object();
  shadow_state s;
  if (auto* st = section(o, "state")) s.state = *st;
  if (auto* md = section(o, "metadata")) s.metadata = *md;
  if (auto* ver = o.if_contains("version"); ver && ver->is_int64()) s.version = ver->as_int64();
  if (auto* e = o.if_contains("exists"); e && e->is_bool()) s.exists = e->as_bool();
  if (auto* d = o.if_contains("deleted_at"); d && d->is_int64()) s.deleted_at = d->as_int64();
  return s;
}

std::optional<error> parse_simple(std::string_view payload, request& out) {
  out = {};
  bool blank = payload.find_first_not_of(" \t\r\n") == std::string_view::npos;
  if (blank) return std::nullopt;
  if (auto e = parse_object(payload, out.body)) return e;
  return common_fields(out.body, out);
}

std::optional<error> parse_update(std::string_view payload, const limits& lim, request& out) {
  out = {};
  if (payload.size() > lim.max_document_bytes) return error{413, "The payload exceeds the maximum size allowed"};
  if (auto e = parse_object(payload, out.body)) return e;
  if (auto e = common_fields(out.body, out)) return e;
  auto* st = out.body.if_contains("state");
  if (!st) return error{400, "Missing required node: state"};
  if (!normalize_numbers(*st)) return error{400, "Invalid JSON"};
  if (st->is_null()) return std::nullopt;
  if (!st->is_object()) return error{400, "State node must be an object"};
  for (const auto& [k, v] : st->as_object()) {
    if (k != "desired" && k != "reported") return error{400, "State contains an invalid node"};
    if (!v.is_object() && !v.is_null())
      return error{400, k == "desired" ? "Desired node must be an object" : "Reported node must be an object"};
    if (depth_of(v) > lim.max_depth)
      return error{400, "JSON contains too many levels of nesting; maximum is " + std::to_string(lim.max_depth)};
    if (array_has_null(v, false)) return error{400, "Invalid JSON"};
  }
  return std::nullopt;
}

json::object compute_delta(const json::object& desired, const json::object& reported) {
  json::object out;
  for (const auto& [k, dv] : desired) {
    const json::value* rv = reported.if_contains(k);
    if (dv.is_object() && rv && rv->is_object()) {
      auto sub = compute_delta(dv.as_object(), rv->as_object());
      if (!sub.empty()) out[k] = std::move(sub);
    } else if (!rv || *rv != dv) {
      out[k] = dv;
    }
  }
  return out;
}

std::optional<error> apply_update(shadow_state& s, const request& req, std::int64_t now, const limits& lim,
                                  update_result& out) {
  if (!s.exists && s.deleted_at != 0 && now - s.deleted_at > tombstone_keep_s) s.version = 0;
  if (req.version && *req.version != s.version) return error{409, "Version conflict"};
  shadow_state previous = s;
  const json::value& st = req.body.at("state");
  if (st.is_null()) {
    s.state.clear();
    s.metadata.clear();
  } else {
    for (const auto& [k, v] : st.as_object()) {
      if (v.is_null()) {
        s.state.erase(k);
        s.metadata.erase(k);
      } else {
        merge(object_at(s.state, k), object_at(s.metadata, k), v.as_object(), now);
      }
    }
    prune(s.state, s.metadata);
  }
  if (json::serialize(s.state).size() > lim.max_document_bytes) {
    s = std::move(previous);
    return error{413, "The payload exceeds the maximum size allowed"};
  }
  s.version = previous.version + 1;
  s.exists = true;
  s.deleted_at = 0;

  out.accepted = {{"state", st}, {"metadata", metadata_for(st, now)}, {"version", s.version}, {"timestamp", now}};
  if (st.is_null()) out.accepted["metadata"] = json::object{};
  add_token(out.accepted, req.client_token);

  out.delta.reset();
  if (st.is_object() && section(st.as_object(), "desired")) {
    const json::object* desired = section(s.state, "desired");
    const json::object* reported = section(s.state, "reported");
    json::object none;
    auto d = desired ? compute_delta(*desired, reported ? *reported : none) : json::object{};
    if (!d.empty()) {
      const json::object* md = section(s.metadata, "desired");
      json::object delta{{"version", s.version}, {"timestamp", now}, {"state", d}, {"metadata", md ? project(*md, d) : none}};
      add_token(delta, req.client_token);
      out.delta = std::move(delta);
    }
  }

  out.documents = {};
  if (previous.exists) out.documents["previous"] = snapshot(previous);
  out.documents["current"] = snapshot(s);
  out.documents["timestamp"] = now;
  add_token(out.documents, req.client_token);
  return std::nullopt;
}

std::optional<error> get_document(const shadow_state& s, const request& req, std::int64_t now, json::object& out,
                                  std::string_view name_for_errors) {
  if (!s.exists) return error{404, "No shadow exists with name: '" + std::string(name_for_errors) + "'"};
  json::object state = s.state;
  if (const json::object* desired = section(s.state, "desired")) {
    const json::object* reported = section(s.state, "reported");
    json::object none;
    auto d = compute_delta(*desired, reported ? *reported : none);
    if (!d.empty()) state["delta"] = std::move(d);
  }
  out = {{"state", std::move(state)}, {"metadata", s.metadata}, {"version", s.version}, {"timestamp", now}};
  add_token(out, req.client_token);
  return std::nullopt;
}

std::optional<error> delete_shadow(shadow_state& s, const request& req, std::int64_t now, json::object& out,
                                   std::string_view name_for_errors) {
  if (!s.exists) return error{404, "No shadow exists with name: '" + std::string(name_for_errors) + "'"};
  out = {{"version", s.version}, {"timestamp", now}};
  add_token(out, req.client_token);
  s.state.clear();
  s.metadata.clear();
  s.exists = false;
  s.deleted_at = now;
  return std::nullopt;
}

json::object error_document(const error& e, std::int64_t now, const std::optional<std::string>& client_token) {
  json::object o{{"code", e.code}, {"message", e.message}, {"timestamp", now}};
  add_token(o, client_token);
  return o;
}

}  // namespace fleetcore::shadow
