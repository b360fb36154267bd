#pragma once
// Logging: a stable event name first, then key=value fields, e.g.
//   FC_LOG_INFO("listener.ready", "proto={} addr={}", "mqtt", ep);
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <string>
#include <string_view>

namespace fleetcore::common {

/// Configures the process-wide logger once, from main(). `level` is one of spdlog's level names
/// (trace, debug, info, warn, error, critical, off). Logs go to stderr.
void init_logging(std::string_view level);

/// Text from outside (client ids, topics, user names, HTTP targets, certificate subjects, access key
/// ids, messages quoting them) as one log field: `FC_LOG_INFO("x", "client={}", untrusted(id))`.
/// `{}` writes one bare token that cannot end the line or forge a field: printable ASCII and
/// well-formed printable UTF-8 pass through; backslash becomes `\\`; space, `"`, `=`, control bytes,
/// C1 controls, Unicode line/paragraph separators, bidi controls and bytes that are not UTF-8 become
/// `\xNN`, one per byte. `{:q}` writes the same inside double quotes, keeping space and `=` (for
/// messages: `reason={:q}`). The text is a view and must outlive the call.
struct untrusted {
  std::string_view text;
  explicit untrusted(std::string_view t) noexcept : text(t) {}
};

/// The escaped form of `text`: a bare token, or the inside of a quoted field when `quoted`.
std::string escape_untrusted(std::string_view text, bool quoted = false);

}  // namespace fleetcore::common

template <>
struct fmt::formatter<fleetcore::common::untrusted> {
  bool quoted = false;
  constexpr auto parse(fmt::format_parse_context& ctx) {
    auto it = ctx.begin();
    if (it != ctx.end() && *it == 'q') {
      quoted = true;
      ++it;
    }
    if (it != ctx.end() && *it != '}') throw fmt::format_error("untrusted: only {} or {:q}");
    return it;
  }
  auto format(const fleetcore::common::untrusted& u, fmt::format_context& ctx) const {
    std::string s = fleetcore::common::escape_untrusted(u.text, quoted);
    if (quoted) return fmt::format_to(ctx.out(), "\"{}\"", s);
    return fmt::format_to(ctx.out(), "{}", s);
  }
};

#define FC_LOG_TRACE(event, ...) SPDLOG_TRACE(event " " __VA_ARGS__)
#define FC_LOG_DEBUG(event, ...) ::spdlog::debug(event " " __VA_ARGS__)
#define FC_LOG_INFO(event, ...) ::spdlog::info(event " " __VA_ARGS__)
#define FC_LOG_WARN(event, ...) ::spdlog::warn(event " " __VA_ARGS__)
#define FC_LOG_ERROR(event, ...) ::spdlog::error(event " " __VA_ARGS__)

/// Always-on invariant check: a broken invariant is a bug, so log and abort. Never use on input.
#define FC_CHECK(cond)                                                           \
  do {                                                                           \
    if (!(cond)) {                                                               \
      ::spdlog::critical("check.failed cond=\"{}\" at={}:{}", #cond, __FILE__, __LINE__); \
      ::spdlog::shutdown();                                                      \
      std::abort();                                                              \
    }                                                                            \
  } while (0)
