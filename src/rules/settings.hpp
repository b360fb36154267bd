#pragma once
#include <cstddef>

namespace fleetcore::rules {

/// The rules engine's limits (`[rules]` in the configuration file).
struct settings {
  /// Inbox entries (matched, not yet run) held at most; a match beyond it is dropped and counted
  /// (fleetcore_rule_messages_dropped_total{reason="inbox_full"}).
  std::size_t max_inbox = 100'000;
  /// A republished message that is this many republishes deep triggers no rule (loop protection).
  unsigned max_republish_depth = 8;
};

}  // namespace fleetcore::rules
