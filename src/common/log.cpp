#include "common/log.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <cstdint>

namespace fleetcore::common {

void init_logging(std::string_view level) {
  auto logger = spdlog::stderr_color_mt("fleetcore");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %^%l%$ %v");
  logger->set_level(spdlog::level::from_str(std::string(level)));
  spdlog::set_default_logger(logger);
  spdlog::flush_on(spdlog::level::info);
}

namespace {

/// Length of the well-formed UTF-8 sequence at the start of `s` (RFC 3629: no overlong forms, no
/// surrogates, nothing above U+10FFFF) and its code point; 0 if there is none.
std::size_t utf8_sequence(std::string_view s, char32_t& cp) {
  auto b = [&](std::size_t i) { return static_cast<std::uint8_t>(s[i]); };
  std::uint8_t c = b(0);
  std::size_t n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 0;
  if (n == 0 || c > 0xF4 || s.size() < n) return 0;
  cp = c & (0x7F >> n);
  for (std::size_t i = 1; i < n; ++i) {
    if ((b(i) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b(i) & 0x3F);
  }
  static constexpr char32_t min_of[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < min_of[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

/// Code points that terminals and log viewers treat as line breaks or that reorder what is shown.
bool hidden_control(char32_t cp) {
  return cp <= 0x9F ||                      // C1 controls (NEL U+0085 ends lines)
         cp == 0x2028 || cp == 0x2029 ||    // line and paragraph separators
         (cp >= 0x200E && cp <= 0x200F) || (cp >= 0x202A && cp <= 0x202E) ||
         (cp >= 0x2066 && cp <= 0x2069) ||  // bidi marks, embeddings, overrides, isolates
         cp == 0xFEFF;
}

void hex_byte(std::string& out, std::uint8_t c) {
  static constexpr char digits[] = "0123456789abcdef";
  out += "\\x";
  out += digits[c >> 4];
  out += digits[c & 15];
}

}  // namespace

std::string escape_untrusted(std::string_view text, bool quoted) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    auto c = static_cast<std::uint8_t>(text[i]);
    if (c < 0x80) {
      if (c == '\\')
        out += "\\\\";
      else if (c < 0x20 || c == 0x7F || c == '"' || (!quoted && (c == ' ' || c == '=')))
        hex_byte(out, c);
      else
        out += static_cast<char>(c);
      ++i;
      continue;
    }
    char32_t cp = 0;
    std::size_t n = utf8_sequence(text.substr(i), cp);
    if (n == 0) {
      hex_byte(out, c);
      ++i;
    } else if (hidden_control(cp)) {
      for (std::size_t k = 0; k < n; ++k) hex_byte(out, static_cast<std::uint8_t>(text[i + k]));
      i += n;
    } else {
      out.append(text.substr(i, n));
      i += n;
    }
  }
  return out;
}

}  // namespace fleetcore::common
