#include "mqtt/topic.hpp"

#include "mqtt/utf8.hpp"

namespace fleetcore::mqtt {

topic_name_error check_topic_name(std::string_view topic, std::size_t max_bytes, std::size_t max_levels) noexcept {
  if (topic.size() > max_bytes) return topic_name_error::too_long;
  if (topic.empty()) return topic_name_error::invalid;
  // One pass over the bytes: wildcards, ASCII control characters and levels. Topics are nearly always
  // ASCII; only one that is not is decoded as UTF-8 (and checked for C1 controls, C2 80..C2 9F).
  std::size_t levels = 1;
  bool ascii = true;
  for (unsigned char c : topic) {
    if (c == '/') {
      ++levels;
    } else if (c == '+' || c == '#' || c < 0x20 || c == 0x7F) {
      return topic_name_error::invalid;
    } else if (c >= 0x80) {
      ascii = false;
    }
  }
  if (!ascii) {
    if (!valid_mqtt_utf8(topic)) return topic_name_error::invalid;
    for (std::size_t at = topic.find('\xC2'); at != std::string_view::npos; at = topic.find('\xC2', at + 1))
      if (at + 1 < topic.size() && static_cast<unsigned char>(topic[at + 1]) <= 0x9F) return topic_name_error::invalid;
  }
  if (levels > max_levels) return topic_name_error::too_deep;
  return topic_name_error::none;
}

bool valid_topic_name(std::string_view topic) noexcept {
  return !topic.empty() && topic.find_first_of("+#") == std::string_view::npos;
}

bool valid_topic_filter(std::string_view filter) noexcept {
  if (filter.empty()) return false;
  std::size_t start = 0;
  while (true) {
    std::size_t end = filter.find('/', start);
    std::string_view level =
        filter.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    if (level.find_first_of("+#") != std::string_view::npos) {
      if (level.size() != 1) return false;
      if (level == "#" && end != std::string_view::npos) return false;
    }
    if (end == std::string_view::npos) return true;
    start = end + 1;
  }
}

std::size_t topic_levels(std::string_view topic) noexcept {
  std::size_t n = 1;
  for (char c : topic)
    if (c == '/') ++n;
  return n;
}

std::optional<shared_filter> parse_shared(std::string_view filter) noexcept {
  constexpr std::string_view prefix = "$share/";
  if (!filter.starts_with(prefix)) return std::nullopt;
  std::string_view rest = filter.substr(prefix.size());
  std::size_t slash = rest.find('/');
  if (slash == std::string_view::npos || slash == 0) return shared_filter{};
  std::string_view group = rest.substr(0, slash);
  if (group.find_first_of("+#") != std::string_view::npos) return shared_filter{};
  return shared_filter{group, rest.substr(slash + 1)};
}

bool topic_matches(std::string_view filter, std::string_view topic) noexcept {
  if (!topic.empty() && topic[0] == '$' && !filter.empty() && (filter[0] == '+' || filter[0] == '#'))
    return false;
  std::size_t f = 0, t = 0;
  while (true) {
    std::size_t fe = filter.find('/', f);
    std::string_view flevel = filter.substr(f, fe == std::string_view::npos ? std::string_view::npos : fe - f);
    if (flevel == "#") return true;
    if (t > topic.size()) return false;  // topic exhausted, filter has more levels
    std::size_t te = topic.find('/', t);
    std::string_view tlevel = topic.substr(t, te == std::string_view::npos ? std::string_view::npos : te - t);
    if (flevel != "+" && flevel != tlevel) return false;
    bool flast = fe == std::string_view::npos;
    bool tlast = te == std::string_view::npos;
    if (flast && tlast) return true;
    if (flast) return false;
    if (tlast) {
      // "a/#" matches "a": the remaining filter must be exactly "#".
      return filter.substr(fe + 1) == "#";
    }
    f = fe + 1;
    t = te + 1;
  }
}

}  // namespace fleetcore::mqtt
