#include "registry/arn.hpp"

namespace fleetcore::registry {

std::optional<aws_arn> aws_arn::parse(std::string_view text) {
  // Five ':' separate arn, partition, service, region, account and the resource.
  std::string_view part[6];
  for (int i = 0; i < 5; ++i) {
    auto colon = text.find(':');
    if (colon == std::string_view::npos) return std::nullopt;
    part[i] = text.substr(0, colon);
    text.remove_prefix(colon + 1);
  }
  part[5] = text;
  if (part[0] != "arn" || part[1].empty() || part[2] != "iot") return std::nullopt;
  auto slash = part[5].find('/');
  if (slash == 0 || slash == std::string_view::npos || slash + 1 == part[5].size()) return std::nullopt;
  return aws_arn{std::string(part[1]), std::string(part[3]), std::string(part[4]), std::string(part[5].substr(0, slash)),
                 std::string(part[5].substr(slash + 1))};
}

std::optional<std::string> aws_arn::name_of(std::string_view text, std::string_view type) {
  auto a = parse(text);
  if (!a || a->type != type) return std::nullopt;
  return std::move(a->name);
}

std::string aws_arn::format() const {
  return "arn:" + partition + ":iot:" + region + ":" + account + ":" + type + "/" + name;
}

}  // namespace fleetcore::registry
