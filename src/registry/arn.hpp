#pragma once
// An AWS IoT resource ARN, `arn:<partition>:iot:<region>:<account>:<type>/<name>` (thing/dev-1,
// thinggroup/g, thingtype/t, cert/<id>, cacert/<id>, policy/p): parsed once where an ARN comes in,
// formatted once where one goes out, instead of searching for ":cert/" at magic offsets.
#include <optional>
#include <string>
#include <string_view>

namespace fleetcore::registry {

struct aws_arn {
  std::string partition = "aws";
  std::string region, account;
  std::string type;  // the resource type: "thing", "thinggroup", "cert"...
  std::string name;  // the rest of the resource, after the first '/'

  /// Parses an `iot` resource ARN; nullopt if `text` is not one (another service, no resource type,
  /// an empty name). Region and account are taken as written.
  static std::optional<aws_arn> parse(std::string_view text);
  /// The name if `text` is an ARN of resource type `type`, else nullopt.
  static std::optional<std::string> name_of(std::string_view text, std::string_view type);
  std::string format() const;
  friend bool operator==(const aws_arn&, const aws_arn&) = default;
};

}  // namespace fleetcore::registry
