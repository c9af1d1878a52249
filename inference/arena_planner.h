// Arena planner: places buffers with known lifetimes in one block so that buffers whose
// lifetimes do not overlap share bytes.
//
// Greedy by size, as TensorFlow Lite Micro's GreedyMemoryPlanner: the largest buffer is placed
// first, each at the lowest aligned offset that does not collide with any already placed buffer
// that is alive at the same time. Pure function of its input; thread-safe.
#pragma once

#include <cstddef>
#include <span>
#include <vector>

namespace edgeinfer {

struct BufferRequest {
  size_t size = 0;    // bytes
  int first_use = 0;  // first step that writes or reads it
  int last_use = 0;   // last step that reads it (inclusive)
};

struct ArenaPlan {
  std::vector<size_t> offsets;  // one per request, multiples of the alignment
  size_t total_bytes = 0;       // the arena size the plan needs
};

ArenaPlan PlanArena(std::span<const BufferRequest> requests, size_t alignment = 64);

// Sum of the aligned sizes: what the arena would need if nothing shared bytes.
size_t NaiveArenaBytes(std::span<const BufferRequest> requests, size_t alignment = 64);

inline size_t AlignUp(size_t n, size_t alignment) {
  return (n + alignment - 1) / alignment * alignment;
}

}  // namespace edgeinfer
