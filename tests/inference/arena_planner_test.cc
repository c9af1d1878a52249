#include "inference/arena_planner.h"

#include <gtest/gtest.h>

#include <random>

namespace edgeinfer {
namespace {

// No two buffers that are alive at the same step may share a byte.
void ExpectNoLiveOverlap(const std::vector<BufferRequest>& r, const ArenaPlan& p) {
  for (size_t i = 0; i < r.size(); ++i) {
    EXPECT_EQ(p.offsets[i] % 64, 0u);
    EXPECT_LE(p.offsets[i] + r[i].size, p.total_bytes);
    for (size_t j = i + 1; j < r.size(); ++j) {
      bool live_together = r[i].first_use <= r[j].last_use && r[j].first_use <= r[i].last_use;
      bool bytes_overlap = p.offsets[i] < p.offsets[j] + r[j].size &&
                           p.offsets[j] < p.offsets[i] + r[i].size;
      if (r[i].size && r[j].size) {
        EXPECT_FALSE(live_together && bytes_overlap) << "buffers " << i << " and " << j;
      }
    }
  }
}

TEST(ArenaPlannerTest, ChainReusesMemory) {
  // a -> b -> c -> d: each buffer lives two steps; only two are ever alive together.
  std::vector<BufferRequest> r = {{1000, 0, 1}, {1000, 1, 2}, {1000, 2, 3}, {1000, 3, 4}};
  ArenaPlan p = PlanArena(r);
  ExpectNoLiveOverlap(r, p);
  EXPECT_EQ(p.total_bytes, 2 * AlignUp(1000, 64));
  EXPECT_EQ(NaiveArenaBytes(r), 4 * AlignUp(1000, 64));
}

TEST(ArenaPlannerTest, AllLiveTogetherNeedsTheSum) {
  std::vector<BufferRequest> r = {{100, 0, 5}, {200, 0, 5}, {300, 0, 5}};
  ArenaPlan p = PlanArena(r);
  ExpectNoLiveOverlap(r, p);
  EXPECT_EQ(p.total_bytes, NaiveArenaBytes(r));
}

TEST(ArenaPlannerTest, SmallBufferFillsGapBetweenLargeOnes) {
  // Two large long-lived buffers and a small one that lives only while the first is dead.
  std::vector<BufferRequest> r = {{4096, 0, 1}, {4096, 0, 9}, {1024, 2, 9}};
  ArenaPlan p = PlanArena(r);
  ExpectNoLiveOverlap(r, p);
  EXPECT_EQ(p.total_bytes, 8192u);  // the small one reuses the first one's bytes
}

TEST(ArenaPlannerTest, EmptyAndZeroSized) {
  EXPECT_EQ(PlanArena({}).total_bytes, 0u);
  std::vector<BufferRequest> r = {{0, 0, 1}, {64, 0, 1}};
  ArenaPlan p = PlanArena(r);
  ExpectNoLiveOverlap(r, p);
  EXPECT_EQ(p.total_bytes, 64u);
}

TEST(ArenaPlannerTest, RandomLifetimesNeverOverlapAndNeverExceedNaive) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<BufferRequest> r(1 + rng() % 40);
    for (auto& b : r) {
      b.size = 1 + rng() % 5000;
      b.first_use = rng() % 30;
      b.last_use = b.first_use + rng() % 8;
    }
    ArenaPlan p = PlanArena(r);
    ExpectNoLiveOverlap(r, p);
    EXPECT_LE(p.total_bytes, NaiveArenaBytes(r));
  }
}

}  // namespace
}  // namespace edgeinfer
