// What the agent does when the memory watchdog (telemetry/memory_watchdog.h) changes level:
//   -> step_down: every pipeline's maximum batch halved (from its ceiling), the workers re-plan
//                 their arenas (the smaller arena is mapped anew and the old one unmapped, so
//                 the pages go back to the kernel at once), SQLite's and malloc's caches trimmed;
//   -> critical:  maximum batch 1, the older half of every queue shed (counted as
//                 queue_overflow rejections), caches trimmed;
//   back up:      one step per change (critical -> half the ceiling -> the ceiling).
// OnLevel returns once every worker's arena is planned at the new size (bounded wait), so the
// watchdog's reaction time is the time to the arena shrunk.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <vector>

#include "agent/pipeline.h"
#include "telemetry/memory_watchdog.h"

namespace edgeinfer::agent {

class MemoryResponder final : public MemoryActions {
 public:
  using Pipelines = std::function<std::vector<std::shared_ptr<Pipeline>>()>;
  // `pipelines` returns the current ones (thread-safe); `trim_storage` releases the outbox's
  // cache (thread-safe). Both are called on the watchdog's thread.
  MemoryResponder(Pipelines pipelines, std::function<void()> trim_storage);

  void OnLevel(MemoryLevel from, MemoryLevel to, const MemoryReading& reading) override;

  // Applies the current level to a pipeline made after the change (reload).
  void Apply(Pipeline& p) const;
  uint64_t shed() const { return shed_.load(std::memory_order_relaxed); }

 private:
  static int BatchFor(MemoryLevel level, int ceiling);

  Pipelines pipelines_;
  std::function<void()> trim_storage_;
  std::atomic<MemoryLevel> level_{MemoryLevel::kNormal};
  std::atomic<uint64_t> shed_{0};
};

}  // namespace edgeinfer::agent
