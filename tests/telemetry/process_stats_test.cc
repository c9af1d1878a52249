#include "telemetry/process_stats.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <memory>

#include "tests/telemetry/temp_dir.h"

namespace edgeinfer {
namespace {

constexpr int64_t kMiB = 1 << 20;

TEST(ProcessStatsTest, SaneFiguresForThisProcess) {
  Result<ProcessStats> s = ReadProcessStats();
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_GT(s->rss_bytes, 0);
  EXPECT_GT(s->private_bytes, 0);
  EXPECT_LE(s->private_bytes, s->rss_bytes);
  EXPECT_TRUE(s->private_from_smaps);  // Debian 12's kernel has smaps_rollup
  EXPECT_GE(s->cpu_user_s, 0.0);
  EXPECT_GE(s->cpu_system_s, 0.0);
  nlohmann::json j = s->ToJson();
  EXPECT_EQ(j["rss_bytes"], s->rss_bytes);
}

TEST(ProcessStatsTest, RssAndPrivateGrowAfterTouching32MiB) {
  Result<ProcessStats> before = ReadProcessStats();
  ASSERT_TRUE(before.ok());
  const size_t size = 32 * kMiB;
  std::unique_ptr<char[]> block(new char[size]);
  std::memset(block.get(), 0x5a, size);  // touch every page
  Result<ProcessStats> after = ReadProcessStats();
  ASSERT_TRUE(after.ok());
  EXPECT_GE(after->rss_bytes - before->rss_bytes, 30 * kMiB);
  EXPECT_GE(after->private_bytes - before->private_bytes, 30 * kMiB);
  EXPECT_EQ(block[size - 1], 0x5a);
}

TEST(ProcessStatsTest, CpuMeterSeesBusyWork) {
  CpuMeter meter;
  Result<ProcessStats> first = ReadProcessStats();
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(meter.Update(*first), 0.0);  // no previous reading
  // Burn CPU until getrusage shows at least 50 ms more (bounded by wall time).
  volatile double sink = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  Result<ProcessStats> now = first;
  while (now->cpu_total_s() - first->cpu_total_s() < 0.05 &&
         std::chrono::steady_clock::now() < deadline) {
    for (int i = 0; i < 1000000; ++i) sink = sink + i * 0.5;
    now = ReadProcessStats();
    ASSERT_TRUE(now.ok());
  }
  double percent = meter.Update(*now);
  EXPECT_GT(percent, 0.0);
  EXPECT_LT(percent, 100.0 * 64);  // at most every core of a big machine
}

TEST(ProcessStatsTest, FallsBackToStatmWithoutSmapsRollup) {
  TempDir dir;
  dir.Write("statm", "1000 300 100 10 0 200 0\n");
  Result<ProcessStats> s = ReadProcessStats(dir.path());
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  const int64_t page = sysconf(_SC_PAGESIZE);
  EXPECT_EQ(s->rss_bytes, 300 * page);
  EXPECT_FALSE(s->private_from_smaps);
  EXPECT_EQ(s->private_bytes, 200 * page);
}

TEST(ProcessStatsTest, ReadsSmapsRollupFromTheGivenFolder) {
  TempDir dir;
  dir.Write("statm", "1000 300 100 10 0 200 0\n");
  dir.Write("smaps_rollup",
            "00400000-7fff [rollup]\nRss: 1200 kB\nPrivate_Clean: 100 kB\nPrivate_Dirty: 400 kB\n");
  Result<ProcessStats> s = ReadProcessStats(dir.path());
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s->private_from_smaps);
  EXPECT_EQ(s->private_bytes, 500 * 1024);
}

TEST(ProcessStatsTest, GarbageOrMissingStatmIsAnError) {
  TempDir dir;
  EXPECT_EQ(ReadProcessStats(dir.path()).status().code(), Status::Code::kNotFound);
  dir.Write("statm", "lots of pages\n");
  Result<ProcessStats> s = ReadProcessStats(dir.path());
  EXPECT_EQ(s.status().code(), Status::Code::kCorruption);
  EXPECT_NE(s.status().message().find("statm"), std::string::npos);
}

// Not a test of speed: prints what one reading costs, for the "telemetry's own cost".
TEST(ProcessStatsTest, PrintsTheCostOfOneReading) {
  constexpr int kReads = 200;
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kReads; ++i) ASSERT_TRUE(ReadProcessStats().ok());
  double us =
      std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count() /
      kReads;
  std::cout << "ReadProcessStats: " << us << " us per reading\n";
}

}  // namespace
}  // namespace edgeinfer
