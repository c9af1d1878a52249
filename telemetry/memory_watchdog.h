// Memory watchdog: acts on memory pressure before the kernel's OOM killer does.
//
// Levels: kNormal -> kStepDown -> kCritical, judged on MemoryReading::fraction (usage / the
// tightest limit, see memory_probe.h):
//   - fraction >= critical (0.85)            -> kCritical, from any level, at once;
//   - fraction >= step_down (0.70) in kNormal -> kStepDown, at once;
//   - fraction <  recover (0.60) held for recover_hold_ms (30 s) -> one level down (kCritical ->
//     kStepDown -> kNormal); the hold restarts after each step, so growing back from critical to
//     normal takes two full holds. Any reading at or above `recover` restarts the hold, so
//     flapping around a threshold never recovers and never steps twice.
//   - PSI early signal: in kNormal, psi_full_avg10 >= psi_full_step_down (10 %: for a tenth of the
//     last 10 s every runnable task was stalled on memory, i.e. the kernel is reclaiming hard)
//     steps down even below `step_down`; and while psi_full_avg10 >= psi_full_step_down / 2 the
//     recover hold does not advance. PSI is system-wide, so this also reacts to other processes
//     squeezing the device, which is what a good neighbour on an edge box should do. 0 = off.
//   - A reading without a fraction (no limit known) changes nothing and restarts the hold.
//
// What the agent does on each change (MemoryActions::OnLevel): to kStepDown halve the maximum
// batch, re-plan the arena (munmap returns the pages), trim SQLite's and malloc's caches
// (TrimMallocCache); to kCritical batch 1 and shed the oldest queued inputs (counted); on the
// way back grow one step per change.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>

#include "common/status.h"
#include "telemetry/memory_probe.h"
#include "telemetry/metrics.h"

namespace edgeinfer {

enum class MemoryLevel { kNormal = 0, kStepDown = 1, kCritical = 2 };
const char* MemoryLevelName(MemoryLevel level);  // "normal", "step_down", "critical"

struct MemoryWatchdogOptions {
  double step_down =
      0.70;  // fractions of the effective limit; need recover < step_down <= critical
  double critical = 0.85;
  double recover = 0.60;
  int64_t recover_hold_ms = 30000;
  double psi_full_step_down = 10.0;  // percent (PSI full avg10); 0 = PSI ignored
  int64_t period_ms = 1000;          // poll period of the watchdog thread
};

// Checks the thresholds' order and ranges; InvalidArgument names the bad field.
Status ValidateWatchdogOptions(const MemoryWatchdogOptions& options);

struct MemoryTransition {
  MemoryLevel from = MemoryLevel::kNormal;
  MemoryLevel to = MemoryLevel::kNormal;
  std::string reason;  // e.g. "fraction 0.72 >= step_down 0.70"
  MemoryReading reading;
};

// One line for the log: "memory: normal -> step_down (fraction 0.72 >= step_down 0.70);
// usage 368 MiB of 512 MiB cgroup limit, MemAvailable 20 GiB, PSI full 0.00".
std::string DescribeTransition(const MemoryTransition& t);

// The pure state machine: feed readings with a clock, get level changes. Thread-compatible.
class MemoryLevelMachine {
 public:
  explicit MemoryLevelMachine(MemoryWatchdogOptions options = {}) : options_(options) {}
  // Judges one reading taken at now_ms (any monotonic clock). Returns the change, if any.
  std::optional<MemoryTransition> Evaluate(const MemoryReading& reading, int64_t now_ms);
  MemoryLevel level() const { return level_; }

 private:
  MemoryWatchdogOptions options_;
  MemoryLevel level_ = MemoryLevel::kNormal;
  std::optional<int64_t> below_recover_since_ms_;
};

// What the agent does on a level change. Called on the watchdog thread (or PollOnce's caller), in
// order, one at a time, with no watchdog lock held (it may call Stats(), not PollOnce or Stop);
// the watchdog measures how long it takes (the issue's "time from pressure crossing the threshold
// to the arena shrunk"), so it should return when the memory has been given back.
class MemoryActions {
 public:
  virtual ~MemoryActions() = default;
  virtual void OnLevel(MemoryLevel from, MemoryLevel to, const MemoryReading& reading) = 0;
};

// Counters of a watchdog. Plain value.
struct MemoryWatchdogStats {
  MemoryLevel level = MemoryLevel::kNormal;
  uint64_t polls = 0;
  uint64_t polls_without_limit = 0;  // readings with no fraction
  uint64_t transitions = 0;
  uint64_t to_step_down = 0;  // entries into each level
  uint64_t to_critical = 0;
  uint64_t to_normal = 0;
  // Reaction: from the reading that crossed a threshold to OnLevel returning, in ms. The true
  // crossing happened at most one period before that reading.
  double last_reaction_ms = 0;
  HistogramSnapshot reaction_ms;
  std::optional<MemoryReading> last_reading;

  nlohmann::json ToJson() const;  // level, counts, reaction p50/p99/max
};

// Polls a MemorySource every period on its own thread, runs the level machine and calls the
// actions and the transition hook (which logs; default: DescribeTransition to stderr).
// Thread-safe. The source, actions and hook must outlive the watchdog (or Stop()).
class MemoryWatchdog {
 public:
  MemoryWatchdog(MemorySource& source, MemoryActions& actions, MemoryWatchdogOptions options = {},
                 std::function<void(const MemoryTransition&)> on_transition = nullptr);
  ~MemoryWatchdog();
  MemoryWatchdog(const MemoryWatchdog&) = delete;
  MemoryWatchdog& operator=(const MemoryWatchdog&) = delete;

  // Starts the thread (first poll at once). Fails on bad options or a second Start.
  Status Start();
  // Stops and joins the thread; waits at most for an OnLevel in progress. Idempotent.
  void Stop();
  // One poll on the calling thread (tests, or an agent that drives its own loop). `now_ms`
  // overrides the clock for the level machine (fake time in tests); default: the steady clock.
  void PollOnce(std::optional<int64_t> now_ms = std::nullopt);

  MemoryLevel level() const;
  MemoryWatchdogStats Stats() const;

 private:
  void Run();

  MemorySource& source_;
  MemoryActions& actions_;
  const MemoryWatchdogOptions options_;
  std::function<void(const MemoryTransition&)> on_transition_;

  std::mutex poll_mu_;  // one poll at a time (thread and PollOnce)
  mutable std::mutex mu_;
  MemoryLevelMachine machine_;
  MemoryWatchdogStats stats_;  // guarded by mu_, except reaction_ms (from reaction_)
  Histogram reaction_{HistogramOptions{0.001, 1e6}};

  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  std::thread thread_;
};

// Returns freed heap to the kernel (glibc malloc_trim(0)). True when memory was released.
bool TrimMallocCache();

}  // namespace edgeinfer
