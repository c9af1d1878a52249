// Process statistics for the telemetry report: CPU time, resident and private memory.
//
// CPU comes from getrusage(RUSAGE_SELF) (microsecond resolution, no file read). Memory comes from
// /proc/self/statm (RSS) and /proc/self/smaps_rollup (private = Private_Clean + Private_Dirty);
// where smaps_rollup is missing (kernels before 4.14, restricted /proc) private memory falls back
// to statm's resident - shared. Reading smaps_rollup walks the page tables; it costs tens of
// microseconds for a process of a few hundred MiB, fine once per telemetry interval.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "common/status.h"

namespace edgeinfer {

struct ProcessStats {
  double cpu_user_s = 0;  // CPU seconds since the process started
  double cpu_system_s = 0;
  int64_t rss_bytes = 0;
  int64_t private_bytes = 0;
  bool private_from_smaps = false;  // false: the statm fallback (resident - shared)
  int64_t steady_ns = 0;            // CLOCK_MONOTONIC when read

  double cpu_total_s() const { return cpu_user_s + cpu_system_s; }
  // {"cpu_user_s", "cpu_system_s", "rss_bytes", "private_bytes"}.
  nlohmann::json ToJson() const;
};

// Reads the statistics of the calling process. `proc_self` is the /proc/self folder (tests point
// it at a folder of their own files; CPU always comes from getrusage). Fails only when statm
// cannot be read or parsed. Thread-safe.
Result<ProcessStats> ReadProcessStats(const std::string& proc_self = "/proc/self");

// CPU use between consecutive readings, in percent of one core (200 = two cores busy).
// Thread-compatible.
class CpuMeter {
 public:
  // Percent since the previous call; 0 on the first call or when no time passed.
  double Update(const ProcessStats& now);

 private:
  bool has_previous_ = false;
  double previous_cpu_s_ = 0;
  int64_t previous_ns_ = 0;
};

}  // namespace edgeinfer
