#pragma once
// Logging: a stable event name first, then key=value fields, e.g.
//   FC_LOG_INFO("listener.ready", "proto={} addr={}", "mqtt", ep);
#include <spdlog/spdlog.h>

#include <string_view>

namespace fleetcore::common {

/// Configures the process-wide logger once, from main(). `level` is one of spdlog's level names
/// (trace, debug, info, warn, error, critical, off). Logs go to stderr.
void init_logging(std::string_view level);

}  // namespace fleetcore::common

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
