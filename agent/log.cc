#include "agent/log.h"

#include <chrono>

#include "systemd/journal_log.h"

namespace edgeinfer::agent {

// Through systemd/'s logger: one write(2) per line, journald priority prefixes ("<4>") when
// stderr is the journal, a timestamped readable line otherwise.
void Log(const char* level, const std::string& message) { systemd::Log(level, message); }

int64_t UnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace edgeinfer::agent
