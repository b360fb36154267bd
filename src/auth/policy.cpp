#include "auth/policy.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>

namespace fleetcore::auth {

namespace json = boost::json;

namespace {

char fold(char c, bool ignore_case) {
  return ignore_case ? static_cast<char>(std::tolower(static_cast<unsigned char>(c))) : c;
}

constexpr std::array<std::string_view, 12> operators = {
    "StringEquals", "StringNotEquals", "StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase",
    "StringLike",   "StringNotLike",   "Bool",                   "ArnEquals",
    "ArnNotEquals", "ArnLike",         "ArnNotLike",             "Null"};
constexpr std::array<std::string_view, 6> numeric_operators = {
    "NumericEquals",     "NumericNotEquals",        "NumericLessThan",
    "NumericLessThanEquals", "NumericGreaterThan", "NumericGreaterThanEquals"};

bool known_operator(std::string_view op) {
  return std::find(operators.begin(), operators.end(), op) != operators.end() ||
         std::find(numeric_operators.begin(), numeric_operators.end(), op) != numeric_operators.end();
}

bool negated(std::string_view op) { return op.find("Not") != std::string_view::npos; }

/// A string or an array of strings; anything else is malformed.
bool string_list(const json::value& v, std::vector<std::string>& out, bool allow_scalars = false) {
  auto add = [&](const json::value& x) {
    if (x.is_string()) {
      out.emplace_back(x.get_string());
      return true;
    }
    if (allow_scalars && x.is_bool()) {
      out.emplace_back(x.get_bool() ? "true" : "false");
      return true;
    }
    if (allow_scalars && (x.is_int64() || x.is_uint64() || x.is_double())) {
      out.emplace_back(json::serialize(x));
      return true;
    }
    return false;
  };
  if (v.is_array()) {
    if (v.get_array().empty()) return false;
    for (const auto& x : v.get_array())
      if (!add(x)) return false;
    return true;
  }
  return add(v);
}

bool parse_statement(const json::object& o, statement& st, std::string& error) {
  for (const auto& [k, v] : o) {
    if (k != "Sid" && k != "Effect" && k != "Action" && k != "NotAction" && k != "Resource" && k != "NotResource" &&
        k != "Condition") {
      error = "Policy statement contains an unsupported element: " + std::string(k);
      return false;
    }
  }
  const json::value* eff = o.if_contains("Effect");
  if (!eff || !eff->is_string() || (eff->get_string() != "Allow" && eff->get_string() != "Deny")) {
    error = "Policy statement Effect must be Allow or Deny";
    return false;
  }
  st.eff = eff->get_string() == "Allow" ? effect::allow : effect::deny;
  const json::value* action = o.if_contains("Action");
  const json::value* not_action = o.if_contains("NotAction");
  if ((action != nullptr) == (not_action != nullptr)) {
    error = "Policy statement must contain exactly one of Action or NotAction";
    return false;
  }
  st.not_action = not_action != nullptr;
  if (!string_list(action ? *action : *not_action, st.actions)) {
    error = "Policy statement Action must be a string or a non-empty list of strings";
    return false;
  }
  for (const auto& a : st.actions) {
    if (a != "*" && !(a.size() > 4 && std::equal(a.begin(), a.begin() + 4, "iot:", [](char x, char y) {
                        return std::tolower(static_cast<unsigned char>(x)) == y;
                      }))) {
      error = "Policy statement Action is not an iot action: " + a;
      return false;
    }
  }
  const json::value* resource = o.if_contains("Resource");
  const json::value* not_resource = o.if_contains("NotResource");
  if ((resource != nullptr) == (not_resource != nullptr)) {
    error = "Policy statement must contain exactly one of Resource or NotResource";
    return false;
  }
  st.not_resource = not_resource != nullptr;
  if (!string_list(resource ? *resource : *not_resource, st.resources)) {
    error = "Policy statement Resource must be a string or a non-empty list of strings";
    return false;
  }
  if (const json::value* cond = o.if_contains("Condition")) {
    if (!cond->is_object()) {
      error = "Policy statement Condition must be an object";
      return false;
    }
    for (const auto& [op_name, keys] : cond->get_object()) {
      std::string op(op_name);
      bool if_exists = op.size() > 8 && op.ends_with("IfExists");
      if (if_exists) op.resize(op.size() - 8);
      if (!known_operator(op) || (if_exists && op == "Null")) {
        error = "Policy statement Condition has an unknown operator: " + std::string(op_name);
        return false;
      }
      if (!keys.is_object() || keys.get_object().empty()) {
        error = "Policy statement Condition operator " + std::string(op_name) + " must map keys to values";
        return false;
      }
      for (const auto& [key, values] : keys.get_object()) {
        condition_clause c{op, if_exists, std::string(key), {}};
        if (!string_list(values, c.values, true)) {
          error = "Policy statement Condition values for " + std::string(key) + " must be strings";
          return false;
        }
        st.conditions.push_back(std::move(c));
      }
    }
  }
  return true;
}

bool condition_holds(const condition_clause& c, const variable_resolver& vars) {
  std::optional<std::string> actual = vars ? vars(c.key) : std::nullopt;
  if (c.op == "Null") {
    // "true": the key must be absent; "false": it must be present.
    bool want_absent = !c.values.empty() && c.values.front() == "true";
    return want_absent == !actual.has_value();
  }
  if (!actual) return c.if_exists || negated(c.op);
  const bool neg = negated(c.op);
  const bool like = c.op.find("Like") != std::string::npos;
  const bool icase = c.op.ends_with("IgnoreCase");
  const bool numeric = c.op.starts_with("Numeric");
  bool any = false;
  for (const auto& raw : c.values) {
    auto value = substitute(raw, vars, like);
    if (!value) continue;
    bool match;
    if (numeric) {
      double a = 0, b = 0;
      auto ra = std::from_chars(actual->data(), actual->data() + actual->size(), a);
      auto rb = std::from_chars(value->data(), value->data() + value->size(), b);
      if (ra.ec != std::errc() || rb.ec != std::errc()) continue;
      if (c.op == "NumericEquals" || c.op == "NumericNotEquals") match = a == b;
      else if (c.op == "NumericLessThan") match = a < b;
      else if (c.op == "NumericLessThanEquals") match = a <= b;
      else if (c.op == "NumericGreaterThan") match = a > b;
      else match = a >= b;
    } else if (c.op == "Bool") {
      match = (*actual == "true") == (*value == "true");
    } else if (like) {
      match = wildcard_match(*value, *actual, false);
    } else {
      match = value->size() == actual->size() &&
              std::equal(value->begin(), value->end(), actual->begin(),
                         [icase](char x, char y) { return fold(x, icase) == fold(y, icase); });
    }
    if (match) {
      any = true;
      break;
    }
  }
  return neg ? !any : any;
}

bool statement_applies(const statement& st, std::string_view action, std::string_view resource,
                       const variable_resolver& vars) {
  bool action_listed = std::any_of(st.actions.begin(), st.actions.end(),
                                   [&](const std::string& a) { return wildcard_match(a, action, true); });
  if (action_listed == st.not_action) return false;
  bool resource_listed = std::any_of(st.resources.begin(), st.resources.end(), [&](const std::string& r) {
    auto pattern = substitute(r, vars, true);
    return pattern && wildcard_match(*pattern, resource);
  });
  if (resource_listed == st.not_resource) return false;
  return std::all_of(st.conditions.begin(), st.conditions.end(),
                     [&](const condition_clause& c) { return condition_holds(c, vars); });
}

}  // namespace

std::optional<policy_document> policy_document::parse(std::string_view text, std::string& error) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) {
    error = "Policy document is not a JSON object";
    return std::nullopt;
  }
  const auto& o = v.get_object();
  for (const auto& [k, _] : o) {
    if (k != "Version" && k != "Statement" && k != "Id") {
      error = "Policy document contains an unsupported element: " + std::string(k);
      return std::nullopt;
    }
  }
  policy_document doc;
  if (const json::value* ver = o.if_contains("Version")) {
    if (!ver->is_string() || (ver->get_string() != "2012-10-17" && ver->get_string() != "2008-10-17")) {
      error = "Policy document Version must be 2012-10-17 or 2008-10-17";
      return std::nullopt;
    }
    doc.version_ = std::string(ver->get_string());
  }
  const json::value* stmts = o.if_contains("Statement");
  if (!stmts || !(stmts->is_object() || (stmts->is_array() && !stmts->get_array().empty()))) {
    error = "Policy document must contain a Statement object or a non-empty list of them";
    return std::nullopt;
  }
  auto one = [&](const json::value& s) {
    if (!s.is_object()) {
      error = "Policy statement must be an object";
      return false;
    }
    statement st;
    if (!parse_statement(s.get_object(), st, error)) return false;
    doc.statements_.push_back(std::move(st));
    return true;
  };
  if (stmts->is_object()) {
    if (!one(*stmts)) return std::nullopt;
  } else {
    for (const auto& s : stmts->get_array())
      if (!one(s)) return std::nullopt;
  }
  return doc;
}

decision evaluate(std::span<const policy_document* const> policies, std::string_view action,
                  std::string_view resource, const variable_resolver& vars) {
  bool allowed = false;
  for (const auto* p : policies) {
    for (const auto& st : p->statements()) {
      if (!statement_applies(st, action, resource, vars)) continue;
      if (st.eff == effect::deny) return decision::explicit_deny;
      allowed = true;
    }
  }
  return allowed ? decision::allow : decision::implicit_deny;
}

bool wildcard_match(std::string_view pattern, std::string_view value, bool ignore_case) {
  // Iterative glob matching with backtracking to the last `*`.
  std::size_t p = 0, v = 0, star = std::string_view::npos, star_v = 0;
  while (v < value.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = ++p;
      star_v = v;
      continue;
    }
    if (p < pattern.size()) {
      bool escaped = pattern[p] == '\\' && p + 1 < pattern.size();
      char pc = escaped ? pattern[p + 1] : pattern[p];
      if ((!escaped && pc == '?') || fold(pc, ignore_case) == fold(value[v], ignore_case)) {
        p += escaped ? 2 : 1;
        ++v;
        continue;
      }
    }
    if (star == std::string_view::npos) return false;
    p = star;
    v = ++star_v;
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

namespace {

/// cert-policy-variables.md, "Wildcards" and "String length": AWS leaves a certificate policy variable
/// unreplaced when the attribute holds `*`, `$`, `+`, `?` or `#`, or is longer than 1024 characters.
/// Left in place, the variable text matches no real resource; here the statement does not match.
/// The client id is chosen by the device too: one holding an MQTT wildcard (`+`, `#`) would widen a
/// `topicfilter/.../${iot:ClientId}/...` grant to other devices' topics, so it is not substituted
/// either (no topic name can hold those characters, so no topic grant is lost).
bool substitutable(std::string_view name, std::string_view value) {
  constexpr std::size_t max_certificate_value = 1024;
  if (name == "iot:ClientId") return value.find_first_of("+#") == std::string_view::npos;
  if (!name.starts_with("iot:Certificate.")) return true;
  return value.size() <= max_certificate_value && value.find_first_of("*$+?#") == std::string_view::npos;
}

}  // namespace

std::optional<std::string> substitute(std::string_view text, const variable_resolver& vars, bool as_pattern) {
  std::string out;
  out.reserve(text.size());
  auto literal = [&](char c) {
    if (as_pattern && (c == '*' || c == '?' || c == '\\')) out += '\\';
    out += c;
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '$' && i + 1 < text.size() && text[i + 1] == '{') {
      std::size_t end = text.find('}', i + 2);
      if (end == std::string_view::npos) return std::nullopt;
      std::string_view name = text.substr(i + 2, end - i - 2);
      if (name == "*" || name == "?" || name == "$") {
        literal(name[0]);
      } else {
        auto value = vars ? vars(name) : std::nullopt;
        if (!value || !substitutable(name, *value)) return std::nullopt;
        for (char c : *value) literal(c);
      }
      i = end;
      continue;
    }
    char c = text[i];
    if (as_pattern && c == '\\') {
      out += "\\\\";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace fleetcore::auth
