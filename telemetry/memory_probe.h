// Memory probe: how much memory the agent may use and how much is in use, from /proc/meminfo,
// the process's memory cgroup (v1 or v2) and PSI, read through a seam (MemorySource) so that
// tests can point it at files of their own or script readings outright.
//
// "The tightest limit that applies". Several limits may bound the process: physical memory
// (MemTotal; in use = MemTotal - MemAvailable), and each memory cgroup from the process's own up
// to the root of the hierarchy (limit = memory.max or memory.high, whichever is lower, on v2;
// memory.limit_in_bytes on v1; in use = the cgroup's usage minus its inactive file cache, the
// "working set", because inactive page cache is reclaimed before anything is killed). For each
// bound the probe computes usage / limit; the bound with the highest fraction is the effective
// one: it is the closest to running out. Every field that could not be read (missing file,
// "max", garbage) is absent, never a crash; a reading with no usable bound has no fraction.
#pragma once

#include <cstdint>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace edgeinfer {

enum class CgroupVersion { kNone, kV1, kV2 };

// Which bound is the effective one.
enum class LimitSource { kNone, kMemTotal, kCgroup };

const char* CgroupVersionName(CgroupVersion v);  // "none", "v1", "v2"
const char* LimitSourceName(LimitSource s);      // "none", "memtotal", "cgroup"

// One reading. Plain value. Bytes unless said otherwise.
struct MemoryReading {
  int64_t steady_ms = 0;  // when read (the source's clock)

  // /proc/meminfo
  std::optional<int64_t> mem_total;
  std::optional<int64_t> mem_available;

  // The process's own memory cgroup.
  CgroupVersion cgroup_version = CgroupVersion::kNone;
  std::string cgroup_path;              // e.g. "/process_api/db71…" (relative to the mount)
  std::optional<int64_t> cgroup_usage;  // v2 memory.current, v1 memory.usage_in_bytes
  std::optional<int64_t> cgroup_max;    // v2 memory.max, v1 memory.limit_in_bytes; absent = none
  std::optional<int64_t> cgroup_high;   // v2 memory.high; absent = none (and always on v1)
  std::optional<int64_t> cgroup_inactive_file;  // memory.stat inactive_file / total_inactive_file
  std::optional<int64_t> events_high;           // v2 memory.events
  std::optional<int64_t> events_oom;
  std::optional<int64_t> events_oom_kill;

  // /proc/pressure/memory, percent of wall time over the last 10 s.
  std::optional<double> psi_some_avg10;
  std::optional<double> psi_full_avg10;

  // Derived by ComputeEffectiveLimit (the tightest bound).
  LimitSource limit_source = LimitSource::kNone;
  int64_t limit_bytes = 0;  // 0 when no bound is known
  int64_t usage_bytes = 0;
  std::optional<double> fraction;  // usage / limit, absent when no bound is known

  nlohmann::json ToJson() const;
};

// A bound found by the source besides the own cgroup's (an ancestor cgroup's limit).
struct MemoryBound {
  int64_t limit = 0;
  int64_t usage = 0;
};

// Sets limit_source, limit_bytes, usage_bytes and fraction from MemTotal/MemAvailable, the own
// cgroup's fields and `extra` (a tighter ancestor, if any). Pure.
void ComputeEffectiveLimit(MemoryReading& reading,
                           const std::optional<MemoryBound>& extra = std::nullopt);

// Where readings come from. Implementations are thread-safe.
class MemorySource {
 public:
  virtual ~MemorySource() = default;
  // Never fails: what cannot be read is absent in the reading.
  virtual MemoryReading Read() = 0;
};

struct SystemMemoryPaths {
  std::string proc_root = "/proc";             // meminfo, pressure/memory
  std::string cgroup_root = "/sys/fs/cgroup";  // v2 mount, or the parent of v1's "memory"
  // The file that names the process's cgroups; empty = proc_root + "/self/cgroup".
  std::string self_cgroup_file;
};

// The real source. The own cgroup is looked up in self_cgroup_file on every Read (a process can be
// moved between cgroups): a v1 line "N:...memory...:/path" means cgroup_root/memory/path; else a v2
// line "0::/path" means cgroup_root/path when that folder has memory.current. Ancestors up to the
// mount are read too (at most 32 levels) for a tighter limit.
class SystemMemorySource : public MemorySource {
 public:
  explicit SystemMemorySource(SystemMemoryPaths paths = {});
  MemoryReading Read() override;

 private:
  SystemMemoryPaths paths_;
};

// A source for tests: Read() returns the reading last Set (a default one before any), as is.
class ScriptedMemorySource : public MemorySource {
 public:
  void Set(const MemoryReading& reading);
  MemoryReading Read() override;
  int64_t reads() const;

 private:
  mutable std::mutex mu_;
  MemoryReading reading_;
  int64_t reads_ = 0;
};

// A reading with only a limit and a usage (a cgroup bound), derived fields computed. For tests
// and scripted sources.
MemoryReading MakeCgroupReading(int64_t usage, int64_t limit);

// Parsers, public for tests. Each returns nullopt on anything unexpected.
// A byte count as in memory.max / memory.limit_in_bytes: "max" and v1's "no limit" values
// (>= 2^62) give nullopt, as does garbage.
std::optional<int64_t> ParseLimitValue(const std::string& text);
// "Key:   123 kB" lines of /proc/meminfo; returns bytes.
std::optional<int64_t> ParseMeminfoField(const std::string& meminfo, const std::string& key);
// "key value" lines (memory.stat, memory.events).
std::optional<int64_t> ParseKeyedValue(const std::string& text, const std::string& key);
// avg10 of the "some" or "full" line of a PSI file.
std::optional<double> ParsePsiAvg10(const std::string& psi, const std::string& kind);

}  // namespace edgeinfer
