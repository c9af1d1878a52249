#include "agent/log.h"

#include <chrono>
#include <cstdio>

namespace edgeinfer::agent {

void Log(const char* level, const std::string& message) {
  std::string line = std::string("edgeinfer-agent: ") + level + ": " + message + "\n";
  std::fputs(line.c_str(), stderr);
}

int64_t UnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace edgeinfer::agent
