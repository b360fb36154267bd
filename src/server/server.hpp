#pragma once
// Wiring: the only module that knows every other one. Builds storage, broker, listeners and the
// metrics endpoint from a server_config, runs until a signal, and shuts down cleanly.
#include "server/config.hpp"

namespace fleetcore::server {

/// Runs the server in the calling thread until SIGINT or SIGTERM. Returns the process exit code.
int serve(const server_config& cfg);

}  // namespace fleetcore::server
