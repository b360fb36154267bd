#pragma once
#include <cstddef>
#include <string>

namespace fleetcore::rules {

/// The rules engine's limits (`[rules]` in the configuration file).
struct settings {
  /// Inbox entries (matched, not yet run) held at most; a match beyond it is dropped and counted
  /// (fleetcore_rule_messages_dropped_total{reason="inbox_full"}).
  std::size_t max_inbox = 100'000;
  /// Messages one rule holds at most (waiting for or running its actions, an http sink retried): beyond
  /// it that rule drops its new matches (fleetcore_rule_dropped_total{rule}), so a sink that is down
  /// fills its own rule's queue and not the others'.
  std::size_t max_rule_queue = 20'000;
  /// A chain of republishes stops at this many messages (the original and depth - 1 republishes): a
  /// rule republishing onto its own FROM would loop forever. The refused republish is counted
  /// (`{reason="republish_loop"}`) and fails its rule (errorAction).
  unsigned max_republish_depth = 8;
  /// An http action that gets no answer, a 429 or a 5xx is retried (backoff with jitter, 0.5 s doubling
  /// to 30 s) for this long before the errorAction runs (AWS tries 3 times; a longer window rides out
  /// a sink's outage without losing a message).
  unsigned http_retry_for_s = 300;
  /// Each http request, connect to response.
  unsigned http_timeout_ms = 3000;
  /// Connections to one sink (scheme, host, port) at most, kept alive between requests; more
  /// requests wait for one of them.
  std::size_t http_connections = 16;
  /// Extra CA certificates (PEM file) trusted for https actions, beside the system's.
  std::string http_ca_file;
  /// Allows http:// action and destination URLs (development; AWS allows https only).
  bool allow_plain_http = false;
};

}  // namespace fleetcore::rules
