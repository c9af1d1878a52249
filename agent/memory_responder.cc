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
// Pages granted this recently may not be resident yet: they count as in use on top of a reading.
constexpr auto kGrantWindow = std::chrono::milliseconds(100);
constexpr auto kCapLogEvery = std::chrono::seconds(10);

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

MemoryResponder::~MemoryResponder() {
  if (guard_) SetArenaGrowthGuard(nullptr);
}

void MemoryResponder::GuardArenaGrowth(MemorySource& source, double ceiling) {
  guard_ = std::make_shared<GrowthBudget>(source, ceiling);
  SetArenaGrowthGuard(guard_);
}

uint64_t MemoryResponder::capped() const { return guard_ ? guard_->capped() : 0; }

int GrowthBudget::Allow(int ran, int wanted, size_t bytes_per_sample) {
  const MemoryReading r = source_.Read();
  if (!r.fraction || r.limit_bytes <= 0 || bytes_per_sample == 0) return wanted;
  std::lock_guard<std::mutex> lock(mu_);
  const auto now = std::chrono::steady_clock::now();
  if (now - recent_since_ > kGrantWindow) recent_grant_bytes_ = 0, recent_since_ = now;
  const int64_t room = static_cast<int64_t>(ceiling_ * static_cast<double>(r.limit_bytes)) -
                       r.usage_bytes - recent_grant_bytes_;
  const int64_t more = std::max<int64_t>(room, 0) / static_cast<int64_t>(bytes_per_sample);
  const int allowed = static_cast<int>(std::clamp<int64_t>(ran + more, 1, wanted));
  recent_grant_bytes_ +=
      static_cast<int64_t>(std::max(allowed - ran, 0)) * static_cast<int64_t>(bytes_per_sample);
  if (allowed < wanted) {
    capped_.fetch_add(1, std::memory_order_relaxed);
    if (now - last_log_ >= kCapLogEvery) {
      last_log_ = now;
      Log("warning", "memory: batch of " + std::to_string(wanted) + " capped at " +
                         std::to_string(allowed) + " (arena growth would pass " +
                         std::to_string(static_cast<int>(ceiling_ * 100)) + "% of the " +
                         std::to_string(r.limit_bytes >> 20) + " MiB limit; usage " +
                         std::to_string(r.usage_bytes >> 20) + " MiB)");
    }
  }
  return allowed;
}

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
