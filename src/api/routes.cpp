#include "api/routes.hpp"

#include "auth/sigv4.hpp"

#include <charconv>

namespace fleetcore::api {

namespace json = boost::json;

const std::vector<route>& routes() {
  static const std::vector<route> table = {
#include "api/iot_routes.inc"
      // fleetcore's extension: AWS IoT cannot import a CRL; this revokes the registered
      // certificates of a CA that the CRL lists.
      {"iot", "ImportCACertificateRevocationList", "POST", "/fleetcore/cacertificate/{caCertificateId}/crl", 200, "",
       {{"caCertificateId", param_location::uri, "caCertificateId", param_type::text}}, "execute-api"},
  };
  return table;
}

namespace {

std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> parts;
  std::size_t i = 1;  // after the leading '/'
  while (i <= path.size()) {
    auto slash = path.find('/', i);
    if (slash == std::string_view::npos) slash = path.size();
    parts.push_back(path.substr(i, slash - i));
    i = slash + 1;
  }
  return parts;
}

/// Matches the template's segments; fills `captures` (template name -> decoded value). Returns the
/// number of literal segments matched, or -1.
int match(std::string_view uri, const std::vector<std::string_view>& path,
          std::vector<std::pair<std::string_view, std::string>>& captures) {
  auto tpl = split_path(uri);
  captures.clear();
  // A greedy label ({name+}, last) takes the rest of the path, slashes included.
  const bool greedy = !tpl.empty() && tpl.back().ends_with("+}");
  if (greedy ? path.size() < tpl.size() : path.size() != tpl.size()) return -1;
  int literals = 0;
  for (std::size_t i = 0; i < tpl.size(); ++i) {
    if (greedy && i + 1 == tpl.size()) {
      std::string rest;
      for (std::size_t k = i; k < path.size(); ++k) rest += (k == i ? "" : "/") + auth::uri_decode(path[k]);
      if (rest.empty()) return -1;
      captures.emplace_back(tpl[i].substr(1, tpl[i].size() - 3), std::move(rest));
    } else if (tpl[i].starts_with('{') && tpl[i].ends_with('}')) {
      if (path[i].empty()) return -1;
      captures.emplace_back(tpl[i].substr(1, tpl[i].size() - 2), auth::uri_decode(path[i]));
    } else if (tpl[i] == path[i]) {
      ++literals;
    } else {
      return -1;
    }
  }
  return literals;
}

std::optional<json::value> convert(const std::string& raw, param_type type) {
  switch (type) {
    case param_type::text:
      return json::value(raw);
    case param_type::integer: {
      std::int64_t v = 0;
      auto [p, ec] = std::from_chars(raw.data(), raw.data() + raw.size(), v);
      if (ec != std::errc() || p != raw.data() + raw.size()) return std::nullopt;
      return json::value(v);
    }
    case param_type::boolean:
      if (raw == "true") return json::value(true);
      if (raw == "false") return json::value(false);
      return std::nullopt;
  }
  return std::nullopt;
}

}  // namespace

std::optional<bind_error> check_signed_path(std::string_view target) {
  std::string_view path = target.substr(0, target.find('?'));
  if (auth::normalize_path(path) == path) return std::nullopt;
  // Whether AWS routes such a path normalized is not documented; refusing it is the safe reading.
  return bind_error{"InvalidRequestException", 400,
                    "the request path must not contain empty, '.' or '..' segments: it is not the path that was signed"};
}

std::optional<bind_error> check_scope(const route& r, std::string_view scope_region, std::string_view scope_service,
                                      std::string_view region) {
  // AWS's answers, trailing space included.
  if (!region.empty() && scope_region != region)
    return bind_error{"InvalidSignatureException", 403,
                      "Credential should be scoped to a valid region, not '" + std::string(scope_region) + "'. "};
  if (scope_service != r.signing_name)
    return bind_error{"InvalidSignatureException", 403,
                      "Credential should be scoped to correct service: '" + std::string(r.signing_name) + "'. "};
  return std::nullopt;
}

namespace {

struct match_result {
  const route* op = nullptr;
  std::vector<std::pair<std::string_view, std::string>> captures;
};

/// The route of `signing_name` (empty: any) whose template matches `path` with the most literal
/// segments.
match_result best_route(std::string_view signing_name, std::string_view method, std::string_view path) {
  auto segments = split_path(path);
  match_result best;
  int best_literals = -1;
  std::vector<std::pair<std::string_view, std::string>> captures;
  for (const auto& r : routes()) {
    if (method != r.method || (!signing_name.empty() && signing_name != r.signing_name)) continue;
    int lit = match(r.uri, segments, captures);
    if (lit > best_literals) {
      best.op = &r;
      best_literals = lit;
      best.captures = captures;
    }
  }
  return best;
}

}  // namespace

const route* find_route(std::string_view signing_name, std::string_view method, std::string_view target) {
  std::string_view path = target.substr(0, target.find('?'));
  if (path.empty() || path[0] != '/') return nullptr;
  return best_route(signing_name, method, path).op;
}

std::variant<bound_request, bind_error> bind_request(std::string_view signing_name, std::string_view method,
                                                     std::string_view target,
                                                     const std::function<std::optional<std::string>(std::string_view)>& header,
                                                     std::string_view body) {
  auto q = target.find('?');
  std::string_view path = target.substr(0, q);
  std::string_view query = q == std::string_view::npos ? std::string_view() : target.substr(q + 1);
  if (path.empty() || path[0] != '/') return bind_error{"InvalidRequestException", 400, "bad request target"};
  // json protocol (timestream-query): the operation is named by X-Amz-Target, the body is the input.
  if (auto amz_target = header("x-amz-target")) {
    for (const auto& r : routes()) {
      if (*r.amz_target == '\0' || *amz_target != r.amz_target || method != r.method) continue;
      if (!signing_name.empty() && signing_name != r.signing_name) continue;
      bound_request out{&r, {}};
      boost::system::error_code ec;
      auto v = body.empty() ? json::value(json::object()) : json::parse(body, ec);
      if (ec || !v.is_object()) return bind_error{"ValidationException", 400, "the request body is not a JSON object"};
      out.input = std::move(v.as_object());
      return out;
    }
    return bind_error{"UnknownOperationException", 404, "no operation " + *amz_target};
  }
  auto [best, best_captures] = best_route(signing_name, method, path);
  if (!best)
    return bind_error{"UnknownOperationException", 404,
                      "no operation at " + std::string(method) + " " + std::string(path)};

  bound_request out{best, {}};
  if (*best->payload && best->payload_json) {
    boost::system::error_code ec;
    auto v = body.empty() ? json::value(json::object()) : json::parse(body, ec);
    if (ec || !v.is_object()) return bind_error{"InvalidRequestException", 400, "the request body is not a JSON object"};
    out.input[best->payload] = std::move(v);
  } else if (*best->payload) {
    out.input[best->payload] = json::string(body);
  } else if (!body.empty()) {
    boost::system::error_code ec;
    auto v = json::parse(body, ec);
    if (ec || !v.is_object()) return bind_error{"InvalidRequestException", 400, "the request body is not a JSON object"};
    out.input = std::move(v.as_object());
  }
  std::vector<std::pair<std::string, std::string>> params;
  while (!query.empty()) {
    auto amp = query.find('&');
    auto pair = query.substr(0, amp);
    auto eq = pair.find('=');
    params.emplace_back(auth::uri_decode(pair.substr(0, eq)),
                        eq == std::string_view::npos ? std::string() : auth::uri_decode(pair.substr(eq + 1)));
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
  }
  for (const auto& p : best->params) {
    std::optional<std::string> raw;
    switch (p.location) {
      case param_location::uri:
        for (const auto& [name, value] : best_captures)
          if (name == p.wire_name) raw = value;
        break;
      case param_location::querystring:
        for (const auto& [name, value] : params)
          if (name == p.wire_name) raw = value;
        break;
      case param_location::header: {
        std::string lower(p.wire_name);
        for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        raw = header(lower);
        break;
      }
    }
    if (!raw) continue;
    auto v = convert(*raw, p.type);
    if (!v) return bind_error{"InvalidRequestException", 400, std::string(p.wire_name) + " has an invalid value"};
    out.input[p.member] = std::move(*v);
  }
  return out;
}

}  // namespace fleetcore::api
