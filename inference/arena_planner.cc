#include "inference/arena_planner.h"

#include <algorithm>
#include <numeric>

namespace edgeinfer {

namespace {

bool LifetimesOverlap(const BufferRequest& a, const BufferRequest& b) {
  return a.first_use <= b.last_use && b.first_use <= a.last_use;
}

struct Placed {
  size_t offset;
  size_t end;
};

// Lowest aligned offset at which [offset, offset + size) misses every interval in `busy`
// (sorted by offset).
size_t FirstFit(const std::vector<Placed>& busy, size_t size, size_t alignment) {
  size_t candidate = 0;
  for (const Placed& p : busy) {
    if (candidate + size <= p.offset) break;
    candidate = std::max(candidate, AlignUp(p.end, alignment));
  }
  return candidate;
}

}  // namespace

ArenaPlan PlanArena(std::span<const BufferRequest> requests, size_t alignment) {
  const size_t n = requests.size();
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  // Largest first; ties by earlier first use so the plan is deterministic.
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (requests[a].size != requests[b].size) return requests[a].size > requests[b].size;
    return requests[a].first_use < requests[b].first_use;
  });

  ArenaPlan plan;
  plan.offsets.assign(n, 0);
  std::vector<size_t> placed;
  std::vector<Placed> busy;
  for (size_t idx : order) {
    const BufferRequest& r = requests[idx];
    busy.clear();
    for (size_t other : placed)
      if (LifetimesOverlap(r, requests[other]))
        busy.push_back({plan.offsets[other], plan.offsets[other] + requests[other].size});
    std::sort(busy.begin(), busy.end(),
              [](const Placed& a, const Placed& b) { return a.offset < b.offset; });
    size_t offset = FirstFit(busy, r.size, alignment);
    plan.offsets[idx] = offset;
    plan.total_bytes = std::max(plan.total_bytes, AlignUp(offset + r.size, alignment));
    placed.push_back(idx);
  }
  return plan;
}

size_t NaiveArenaBytes(std::span<const BufferRequest> requests, size_t alignment) {
  size_t total = 0;
  for (const BufferRequest& r : requests) total += AlignUp(r.size, alignment);
  return total;
}

}  // namespace edgeinfer
