#include "agent/memory_responder.h"

#include <algorithm>
#include <chrono>
#include <thread>

#include "agent/log.h"

namespace edgeinfer::agent {
namespace {

// Waiting longer than this for the workers to re-plan means one is busy on a long batch; the
// re-plan still happens when it finishes.
constexpr auto kReplanWait = std::chrono::seconds(2);

bool ArenasAtMost(const std::vector<std::shared_ptr<Pipeline>>& pipelines) {
  for (const auto& p : pipelines) {
    const PipelineStats s = p->stats();
    if (s.planned_max_batch > s.max_batch) return false;
  }
  return true;
}

}  // namespace

MemoryResponder::MemoryResponder(Pipelines pipelines, std::function<void()> trim_storage)
    : pipelines_(std::move(pipelines)), trim_storage_(std::move(trim_storage)) {}

int MemoryResponder::BatchFor(MemoryLevel level, int ceiling) {
  switch (level) {
    case MemoryLevel::kNormal:
      return ceiling;
    case MemoryLevel::kStepDown:
      return std::max(1, ceiling / 2);
    case MemoryLevel::kCritical:
      return 1;
  }
  return 1;
}

void MemoryResponder::Apply(Pipeline& p) const {
  p.SetMaxBatch(BatchFor(level_.load(), p.stats().max_batch_ceiling));
}

void MemoryResponder::OnLevel(MemoryLevel from, MemoryLevel to, const MemoryReading&) {
  level_.store(to);
  const auto pipelines = pipelines_();
  for (const auto& p : pipelines) {
    Apply(*p);
    if (to == MemoryLevel::kCritical) {
      const size_t n = p->ShedOldest(p->stats().queue_depth / 2);
      shed_.fetch_add(n, std::memory_order_relaxed);
      if (n)
        Log("warning", "memory critical: shed the " + std::to_string(n) +
                           " oldest queued inputs of pipeline '" + p->name() + "'");
    }
  }
  if (to > from) {  // shrinking: wait for the arenas, then give the caches back
    const auto deadline = std::chrono::steady_clock::now() + kReplanWait;
    while (!ArenasAtMost(pipelines) && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    if (trim_storage_) trim_storage_();
    TrimMallocCache();
  }
}

}  // namespace edgeinfer::agent
