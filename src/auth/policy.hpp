#pragma once
// The AWS IoT policy language: parsing and evaluation. A request is (action, resource, variables);
// an explicit Deny in any statement wins, otherwise any Allow allows, otherwise it is denied
// (implicit deny). Policy variables (${iot:ClientId}, ${iot:Connection.Thing.ThingName}, ...) are
// substituted in Resource and Condition values; a statement whose variable cannot be resolved does
// not match, nor does one whose certificate variable (iot:Certificate.*) holds `*`, `$`, `+`, `?` or
// `#` or more than 1024 characters (AWS leaves such a variable unreplaced). `*` and `?` are wildcards; MQTT's `+` and `#` are literal characters.
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace fleetcore::auth {

/// Resolves a variable or condition key name (e.g. "iot:ClientId",
/// "iot:Connection.Thing.Attributes[color]") for the request being evaluated; nullopt if unknown.
using variable_resolver = std::function<std::optional<std::string>(std::string_view name)>;

enum class effect { allow, deny };

struct condition_clause {
  std::string op;  // e.g. "StringEquals", without "IfExists"
  bool if_exists = false;
  std::string key;
  std::vector<std::string> values;
};

struct statement {
  effect eff = effect::allow;
  bool not_action = false;
  std::vector<std::string> actions;
  bool not_resource = false;
  std::vector<std::string> resources;
  std::vector<condition_clause> conditions;
};

class policy_document {
 public:
  /// Parses and validates a policy document. On failure returns nullopt and sets `error` to a
  /// message for MalformedPolicyException.
  static std::optional<policy_document> parse(std::string_view json, std::string& error);

  const std::vector<statement>& statements() const noexcept { return statements_; }
  const std::string& version() const noexcept { return version_; }

 private:
  std::string version_;
  std::vector<statement> statements_;
};

enum class decision { allow, explicit_deny, implicit_deny };

/// Evaluates `action` (e.g. "iot:Publish") on `resource` (an ARN) against all statements of all
/// `policies`.
decision evaluate(std::span<const policy_document* const> policies, std::string_view action,
                  std::string_view resource, const variable_resolver& vars);

/// `*` matches any run of characters, `?` exactly one, `\c` the character c literally.
bool wildcard_match(std::string_view pattern, std::string_view value, bool ignore_case = false);

/// Replaces every ${name} in `text`; ${*}, ${?} and ${$} stand for those characters literally.
/// Returns nullopt if a variable cannot be resolved or is a certificate variable AWS would leave
/// unreplaced (a wildcard character in its value, or over 1024 characters). With `as_pattern`, the result is a pattern for
/// wildcard_match in which only the `*` and `?` written in `text` are wildcards: substituted values
/// can never widen a match.
std::optional<std::string> substitute(std::string_view text, const variable_resolver& vars, bool as_pattern);

}  // namespace fleetcore::auth
