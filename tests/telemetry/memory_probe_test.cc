#include "telemetry/memory_probe.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <iostream>
#include <random>

#include "tests/telemetry/temp_dir.h"

namespace edgeinfer {
namespace {

constexpr int64_t kMiB = 1 << 20;

const char* kMeminfo =
    "MemTotal:        4096000 kB\n"
    "MemFree:          100000 kB\n"
    "MemAvailable:    3072000 kB\n"
    "Buffers:            1000 kB\n";

const char* kPsi =
    "some avg10=12.50 avg60=3.00 avg300=1.00 total=123456\n"
    "full avg10=4.25 avg60=1.00 avg300=0.50 total=6543\n";

SystemMemorySource SourceAt(const TempDir& dir) {
  SystemMemoryPaths paths;
  paths.proc_root = dir.path() + "/proc";
  paths.cgroup_root = dir.path() + "/cgroup";
  return SystemMemorySource(paths);
}

TEST(ParseTest, LimitValues) {
  EXPECT_EQ(ParseLimitValue("536870912\n"), 536870912);
  EXPECT_EQ(ParseLimitValue("max\n"), std::nullopt);
  EXPECT_EQ(ParseLimitValue("9223372036854771712\n"), std::nullopt);  // v1 "no limit"
  EXPECT_EQ(ParseLimitValue(""), std::nullopt);
  EXPECT_EQ(ParseLimitValue("12abc"), std::nullopt);
  EXPECT_EQ(ParseLimitValue("-1"), std::nullopt);
  EXPECT_EQ(ParseLimitValue("99999999999999999999999"), std::nullopt);
}

TEST(ParseTest, MeminfoFields) {
  EXPECT_EQ(ParseMeminfoField(kMeminfo, "MemTotal"), int64_t{4096000} * 1024);
  EXPECT_EQ(ParseMeminfoField(kMeminfo, "MemAvailable"), int64_t{3072000} * 1024);
  EXPECT_EQ(ParseMeminfoField(kMeminfo, "Mem"), std::nullopt);  // not a prefix match
  EXPECT_EQ(ParseMeminfoField(kMeminfo, "SwapTotal"), std::nullopt);
  EXPECT_EQ(ParseMeminfoField("MemTotal: lots kB\n", "MemTotal"), std::nullopt);
  EXPECT_EQ(ParseMeminfoField("MemTotal: 99999999999999999 kB\n", "MemTotal"), std::nullopt);
}

TEST(ParseTest, KeyedValuesAndPsi) {
  std::string events = "low 0\nhigh 17\nmax 3\noom 2\noom_kill 1\noom_group_kill 0\n";
  EXPECT_EQ(ParseKeyedValue(events, "high"), 17);
  EXPECT_EQ(ParseKeyedValue(events, "oom"), 2);
  EXPECT_EQ(ParseKeyedValue(events, "oom_kill"), 1);
  EXPECT_EQ(ParseKeyedValue(events, "absent"), std::nullopt);
  EXPECT_EQ(ParsePsiAvg10(kPsi, "some"), 12.5);
  EXPECT_EQ(ParsePsiAvg10(kPsi, "full"), 4.25);
  EXPECT_EQ(ParsePsiAvg10("some avg10=abc avg60=1\n", "some"), std::nullopt);
  EXPECT_EQ(ParsePsiAvg10("some avg10=1000.0\n", "some"), std::nullopt);
  EXPECT_EQ(ParsePsiAvg10("some total=1\n", "some"), std::nullopt);
}

TEST(SystemMemorySourceTest, CgroupV1WithLimit) {
  TempDir dir;
  dir.Write("proc/meminfo", kMeminfo);
  dir.Write("proc/pressure/memory", kPsi);
  dir.Write("proc/self/cgroup", "5:devices:/\n4:memory:/process_api/abc\n0::/\n");
  const std::string cg = "cgroup/memory/process_api/abc/";
  dir.Write(cg + "memory.usage_in_bytes", std::to_string(300 * kMiB) + "\n");
  dir.Write(cg + "memory.limit_in_bytes", std::to_string(512 * kMiB) + "\n");
  dir.Write(cg + "memory.stat",
            "cache 1000\ninactive_file 1\ntotal_inactive_file " + std::to_string(20 * kMiB) + "\n");
  dir.Write(cg + "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n");
  dir.Write("cgroup/memory/process_api/memory.limit_in_bytes", "9223372036854771712\n");
  dir.Write("cgroup/memory/process_api/memory.usage_in_bytes", "1000\n");

  MemoryReading r = SourceAt(dir).Read();
  EXPECT_EQ(r.cgroup_version, CgroupVersion::kV1);
  EXPECT_EQ(r.cgroup_path, "/process_api/abc");
  EXPECT_EQ(r.cgroup_usage, 300 * kMiB);
  EXPECT_EQ(r.cgroup_max, 512 * kMiB);
  EXPECT_EQ(r.cgroup_high, std::nullopt);
  EXPECT_EQ(r.cgroup_inactive_file, 20 * kMiB);
  EXPECT_EQ(r.events_oom_kill, 3);
  EXPECT_EQ(r.psi_some_avg10, 12.5);
  EXPECT_EQ(r.psi_full_avg10, 4.25);
  // cgroup: 280/512 = 0.547 is tighter than MemTotal's 1000/4000 = 0.25.
  EXPECT_EQ(r.limit_source, LimitSource::kCgroup);
  EXPECT_EQ(r.limit_bytes, 512 * kMiB);
  EXPECT_EQ(r.usage_bytes, 280 * kMiB);
  ASSERT_TRUE(r.fraction.has_value());
  EXPECT_NEAR(*r.fraction, 280.0 / 512.0, 1e-9);
}

TEST(SystemMemorySourceTest, CgroupV1NoLimitFallsBackToMemTotal) {
  TempDir dir;
  dir.Write("proc/meminfo", kMeminfo);
  dir.Write("proc/self/cgroup", "4:memory,cpu:/a\n");
  dir.Write("cgroup/memory/a/memory.usage_in_bytes", "1000\n");
  dir.Write("cgroup/memory/a/memory.limit_in_bytes", "9223372036854771712\n");
  MemoryReading r = SourceAt(dir).Read();
  EXPECT_EQ(r.cgroup_version, CgroupVersion::kV1);
  EXPECT_EQ(r.cgroup_max, std::nullopt);
  EXPECT_EQ(r.limit_source, LimitSource::kMemTotal);
  EXPECT_EQ(r.limit_bytes, int64_t{4096000} * 1024);
  EXPECT_EQ(r.usage_bytes, int64_t{1024000} * 1024);
  EXPECT_NEAR(*r.fraction, 0.25, 1e-9);
}

TEST(SystemMemorySourceTest, CgroupV2HighIsTighterThanMax) {
  TempDir dir;
  dir.Write("proc/meminfo", kMeminfo);
  dir.Write("proc/self/cgroup", "0::/system.slice/edgeinfer.service\n");
  const std::string cg = "cgroup/system.slice/edgeinfer.service/";
  dir.Write(cg + "memory.current", std::to_string(200 * kMiB) + "\n");
  dir.Write(cg + "memory.max", std::to_string(512 * kMiB) + "\n");
  dir.Write(cg + "memory.high", std::to_string(256 * kMiB) + "\n");
  dir.Write(cg + "memory.stat", "anon 1\nfile 2\ninactive_file 0\n");
  dir.Write(cg + "memory.events", "low 0\nhigh 9\nmax 1\noom 2\noom_kill 1\n");
  MemoryReading r = SourceAt(dir).Read();
  EXPECT_EQ(r.cgroup_version, CgroupVersion::kV2);
  EXPECT_EQ(r.cgroup_path, "/system.slice/edgeinfer.service");
  EXPECT_EQ(r.cgroup_high, 256 * kMiB);
  EXPECT_EQ(r.events_high, 9);
  EXPECT_EQ(r.events_oom, 2);
  EXPECT_EQ(r.events_oom_kill, 1);
  EXPECT_EQ(r.limit_source, LimitSource::kCgroup);
  EXPECT_EQ(r.limit_bytes, 256 * kMiB);
  EXPECT_NEAR(*r.fraction, 200.0 / 256.0, 1e-9);
}

TEST(SystemMemorySourceTest, CgroupV2MaxUnlimitedButParentLimited) {
  TempDir dir;
  dir.Write("proc/meminfo", kMeminfo);
  dir.Write("proc/self/cgroup", "0::/parent/child\n");
  dir.Write("cgroup/parent/child/memory.current", std::to_string(100 * kMiB));
  dir.Write("cgroup/parent/child/memory.max", "max\n");
  dir.Write("cgroup/parent/child/memory.high", "max\n");
  dir.Write("cgroup/parent/memory.current", std::to_string(180 * kMiB));
  dir.Write("cgroup/parent/memory.max", std::to_string(200 * kMiB));
  MemoryReading r = SourceAt(dir).Read();
  EXPECT_EQ(r.cgroup_max, std::nullopt);
  EXPECT_EQ(r.cgroup_high, std::nullopt);
  EXPECT_EQ(r.limit_source, LimitSource::kCgroup);
  EXPECT_EQ(r.limit_bytes, 200 * kMiB);
  EXPECT_NEAR(*r.fraction, 0.9, 1e-9);
}

TEST(SystemMemorySourceTest, CgroupV1ParentLimitApplies) {
  TempDir dir;
  dir.Write("proc/self/cgroup", "4:memory:/a/b\n");
  dir.Write("cgroup/memory/a/b/memory.usage_in_bytes", std::to_string(50 * kMiB));
  dir.Write("cgroup/memory/a/b/memory.limit_in_bytes", "9223372036854771712");
  dir.Write("cgroup/memory/a/memory.usage_in_bytes", std::to_string(90 * kMiB));
  dir.Write("cgroup/memory/a/memory.limit_in_bytes", std::to_string(100 * kMiB));
  dir.Write("cgroup/memory/a/memory.stat", "total_inactive_file " + std::to_string(10 * kMiB));
  MemoryReading r = SourceAt(dir).Read();
  EXPECT_EQ(r.cgroup_usage, 50 * kMiB);
  EXPECT_EQ(r.limit_source, LimitSource::kCgroup);
  EXPECT_EQ(r.limit_bytes, 100 * kMiB);
  EXPECT_EQ(r.usage_bytes, 80 * kMiB);
}

TEST(SystemMemorySourceTest, MemTotalTighterThanGenerousCgroup) {
  TempDir dir;
  // The machine is nearly full although the cgroup has room.
  dir.Write("proc/meminfo", "MemTotal: 1000 kB\nMemAvailable: 50 kB\n");
  dir.Write("proc/self/cgroup", "0::/a\n");
  dir.Write("cgroup/a/memory.current", "1000\n");
  dir.Write("cgroup/a/memory.max", "1000000\n");
  MemoryReading r = SourceAt(dir).Read();
  EXPECT_EQ(r.limit_source, LimitSource::kMemTotal);
  EXPECT_NEAR(*r.fraction, 0.95, 1e-9);
}

TEST(SystemMemorySourceTest, GarbageAndMissingFilesAreAbsent) {
  TempDir dir;
  dir.Write("proc/meminfo", "MemTotal: twelve\nMemAvailable:\n");
  dir.Write("proc/pressure/memory", "some avg10=zz\n\x01\x02garbage");
  dir.Write("proc/self/cgroup", "garbage\n::\n4:memory:relative\n0::/../../etc\n0::/a\n");
  dir.Write("cgroup/a/memory.current", "not a number\n");
  dir.Write("cgroup/a/memory.max", "\xff\xfe");
  dir.Write("cgroup/a/memory.events", "oom\noom_kill x\n");
  MemoryReading r = SourceAt(dir).Read();
  EXPECT_EQ(r.mem_total, std::nullopt);
  EXPECT_EQ(r.mem_available, std::nullopt);
  EXPECT_EQ(r.psi_some_avg10, std::nullopt);
  EXPECT_EQ(r.psi_full_avg10, std::nullopt);
  EXPECT_EQ(r.cgroup_version, CgroupVersion::kV2);  // only the "0::/a" line was usable
  EXPECT_EQ(r.cgroup_path, "/a");
  EXPECT_EQ(r.cgroup_usage, std::nullopt);
  EXPECT_EQ(r.cgroup_max, std::nullopt);
  EXPECT_EQ(r.events_oom, std::nullopt);
  EXPECT_EQ(r.events_oom_kill, std::nullopt);
  EXPECT_EQ(r.limit_source, LimitSource::kNone);
  EXPECT_FALSE(r.fraction.has_value());
  EXPECT_EQ(r.ToJson()["fraction"], nullptr);
}

TEST(SystemMemorySourceTest, NothingThereAtAll) {
  TempDir dir;
  MemoryReading r = SourceAt(dir).Read();
  EXPECT_EQ(r.cgroup_version, CgroupVersion::kNone);
  EXPECT_FALSE(r.mem_total.has_value());
  EXPECT_FALSE(r.fraction.has_value());
}

TEST(SystemMemorySourceTest, RealMachineGivesAFraction) {
  SystemMemorySource source;
  MemoryReading r = source.Read();
  ASSERT_TRUE(r.mem_total.has_value());
  ASSERT_TRUE(r.fraction.has_value());
  EXPECT_GT(*r.fraction, 0.0);
  EXPECT_LT(*r.fraction, 1.0);
  std::cout << "this machine: " << r.ToJson().dump() << "\n";
}

TEST(ParseTest, RandomBytesNeverCrash) {
  std::mt19937 rng(1);
  const std::string alphabet = "0123456789 :\nkBmaxMemTotalsomefullavg10=.-\xff";
  for (int i = 0; i < 5000; ++i) {
    std::string text(rng() % 64, ' ');
    for (char& c : text) c = alphabet[rng() % alphabet.size()];
    (void)ParseLimitValue(text);
    (void)ParseMeminfoField(text, "MemTotal");
    (void)ParseKeyedValue(text, "max");
    auto psi = ParsePsiAvg10(text, "some");
    if (psi) {
      EXPECT_TRUE(*psi >= 0 && *psi <= 100);
    }
  }
}

// Not a test of speed: prints what one poll of the real files costs (the watchdog reads once a
// period, 1 s by default).
TEST(SystemMemorySourceTest, PrintsTheCostOfOneRead) {
  SystemMemorySource source;
  constexpr int kReads = 200;
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kReads; ++i) ASSERT_TRUE(source.Read().mem_total.has_value());
  double us =
      std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count() /
      kReads;
  std::cout << "SystemMemorySource::Read: " << us << " us per reading\n";
}

// A real v1 memory cgroup with a 64 MiB limit, a child process in it holding 40 MiB: the probe,
// pointed at that cgroup, sees the limit and the usage. Skipped where cgroup v1 memory is not
// writable (not root, or a v2-only machine).
TEST(SystemMemorySourceTest, RealCgroupV1WithALimit) {
  std::string own;
  {
    std::ifstream in("/proc/self/cgroup");
    for (std::string line; std::getline(in, line);) {
      size_t a = line.find(':'), b = line.find(':', a + 1);
      if (b != std::string::npos && line.substr(a + 1, b - a - 1) == "memory")
        own = line.substr(b + 1);
    }
  }
  if (own.empty()) GTEST_SKIP() << "no cgroup v1 memory controller";
  if (own == "/") own.clear();
  const std::string rel = own + "/telemetry_test_" + std::to_string(getpid());
  const std::string dir = "/sys/fs/cgroup/memory" + rel;
  if (::mkdir(dir.c_str(), 0755) != 0) GTEST_SKIP() << "cannot create " << dir;
  { std::ofstream(dir + "/memory.limit_in_bytes") << (64 * kMiB); }

  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  pid_t child = fork();
  if (child == 0) {
    // Only async-signal-safe calls here: join the cgroup, touch 40 MiB, say so, wait.
    int fd = ::open((dir + "/cgroup.procs").c_str(), O_WRONLY);
    if (fd < 0 || ::write(fd, "0", 1) != 1) _exit(1);
    ::close(fd);
    size_t size = 40 * kMiB;
    void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) _exit(2);
    std::memset(p, 1, size);
    (void)!::write(ready[1], "x", 1);
    pause();
    _exit(0);
  }
  ::close(ready[1]);
  char c = 0;
  pollfd pfd{ready[0], POLLIN, 0};
  bool child_ready = poll(&pfd, 1, 10000) == 1 && ::read(ready[0], &c, 1) == 1;
  ::close(ready[0]);

  TempDir tmp;
  tmp.Write("self_cgroup", "4:memory:" + rel + "\n");
  SystemMemoryPaths paths;
  paths.self_cgroup_file = tmp.path() + "/self_cgroup";
  MemoryReading r = SystemMemorySource(paths).Read();

  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  for (int i = 0; i < 100 && ::rmdir(dir.c_str()) != 0; ++i) usleep(10000);

  ASSERT_TRUE(child_ready);
  EXPECT_EQ(r.cgroup_version, CgroupVersion::kV1);
  EXPECT_EQ(r.cgroup_max, 64 * kMiB);
  EXPECT_EQ(r.limit_source, LimitSource::kCgroup);
  EXPECT_EQ(r.limit_bytes, 64 * kMiB);
  EXPECT_GE(r.usage_bytes, 40 * kMiB);
  EXPECT_LE(r.usage_bytes, 64 * kMiB);
  std::cout << "real cgroup: " << r.ToJson().dump() << "\n";
}

TEST(ComputeEffectiveLimitTest, WorkingSetNeverNegative) {
  MemoryReading r;
  r.cgroup_usage = 100;
  r.cgroup_max = 1000;
  r.cgroup_inactive_file = 500;
  ComputeEffectiveLimit(r);
  EXPECT_EQ(r.usage_bytes, 0);
  EXPECT_EQ(*r.fraction, 0.0);
}

}  // namespace
}  // namespace edgeinfer
