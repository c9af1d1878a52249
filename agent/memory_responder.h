// What the agent does when the memory watchdog (telemetry/memory_watchdog.h) changes level:
//   -> step_down: every pipeline's maximum batch halved (from its ceiling), the workers re-plan
//                 their arenas (the smaller arena is mapped anew and the old one unmapped, so
//                 the pages go back to the kernel at once), SQLite's and malloc's caches trimmed;
//   -> critical:  maximum batch 1, the older half of every queue shed (counted as
//                 queue_overflow rejections), caches trimmed;
//   back up:      one step per change (critical -> half the ceiling -> the ceiling).
// OnLevel returns once every worker's arena is planned at the new size (bounded wait), so the
// watchdog's reaction time is the time to the arena shrunk.
//
// The watchdog polls (every [memory] poll_ms), but one large batch can touch tens of MB of arena
// in a few milliseconds, between two polls, and be killed before the next one. So the responder
// also guards growth (GuardArenaGrowth): before a worker runs a batch larger than its arena has
// run, a fresh reading is taken, and the batch is capped so that the estimated new arena pages
// keep usage below the midpoint of step_down and critical. Usage then crosses step_down (the
// watchdog steps down and re-plans smaller) without reaching the limit in between.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "agent/pipeline.h"
#include "inference/batcher.h"
#include "telemetry/memory_watchdog.h"

namespace edgeinfer::agent {

class GrowthBudget;

class MemoryResponder final : public MemoryActions {
 public:
  using Pipelines = std::function<std::vector<std::shared_ptr<Pipeline>>()>;
  // `pipelines` returns the current ones (thread-safe); `trim_storage` releases the outbox's
  // cache (thread-safe). Both are called on the watchdog's thread.
  MemoryResponder(Pipelines pipelines, std::function<void()> trim_storage);
  ~MemoryResponder() override;  // removes the growth guard it installed
  MemoryResponder(const MemoryResponder&) = delete;
  MemoryResponder& operator=(const MemoryResponder&) = delete;

  // Installs the process-wide arena growth guard (inference/batcher.h): batches may grow while
  // `source`'s usage plus the new arena pages stays below `ceiling` (a fraction of the tightest
  // limit). `source` must outlive the responder.
  void GuardArenaGrowth(MemorySource& source, double ceiling);

  void OnLevel(MemoryLevel from, MemoryLevel to, const MemoryReading& reading) override;

  // Applies the current level to a pipeline made after the change (reload).
  void Apply(Pipeline& p) const;
  uint64_t shed() const { return shed_.load(std::memory_order_relaxed); }
  // Batches the growth guard made smaller than they would have been.
  uint64_t capped() const;

 private:
  static int BatchFor(MemoryLevel level, int ceiling);

  Pipelines pipelines_;
  std::function<void()> trim_storage_;
  std::atomic<MemoryLevel> level_{MemoryLevel::kNormal};
  std::atomic<uint64_t> shed_{0};
  std::shared_ptr<GrowthBudget> guard_;  // installed by GuardArenaGrowth
};

// The growth guard: Allow reads the source and grants the samples that fit below
// ceiling * limit, counting bytes granted in the last moment as in use already (their pages may
// not be resident yet when another worker asks). Thread-safe. Public for tests.
class GrowthBudget final : public ArenaGrowthGuard {
 public:
  GrowthBudget(MemorySource& source, double ceiling) : source_(source), ceiling_(ceiling) {}
  int Allow(int ran, int wanted, size_t bytes_per_sample) override;
  uint64_t capped() const { return capped_.load(std::memory_order_relaxed); }

 private:
  MemorySource& source_;
  const double ceiling_;
  std::mutex mu_;  // one reading and grant at a time
  int64_t recent_grant_bytes_ = 0;
  std::chrono::steady_clock::time_point recent_since_{};
  std::chrono::steady_clock::time_point last_log_{};
  std::atomic<uint64_t> capped_{0};
};

}  // namespace edgeinfer::agent
