// The agent's log lines and wall clock. Log goes to stderr, one line per call.
#pragma once

#include <cstdint>
#include <string>

namespace edgeinfer::agent {

// `level`: "error", "warning", "info" or "debug".
void Log(const char* level, const std::string& message);

// Milliseconds since the Unix epoch (result and status timestamps).
int64_t UnixMs();

}  // namespace edgeinfer::agent
