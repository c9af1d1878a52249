// A real memory squeeze: the edgeinfer-agent binary in a memory cgroup of its own (v1 under the
// test's own memory cgroup; v2 under the test's cgroup when a child with the memory controller
// can be made there, else the test is skipped with the reason). The limit is set a little above
// what the agent uses at a small load; then a burst arrives that would fill batches of
// batch.max_size = 1024, whose arena (the vibration model, ~49 KB per sample) needs far more than
// the limit leaves. With the memory watchdog the agent caps and then halves its batches, stays
// alive and publishes every result, and logs and reports the step down; with [memory]
// watchdog = false the same run is killed by the kernel's OOM killer (SIGKILL, the cgroup's
// oom_kill counter moves). Every wait is bounded; the cgroup is removed (its processes killed
// first) even when the test fails.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "agent/memory_responder.h"
#include "inference/batcher.h"
#include "inference/model.h"
#include "tests/agent/agent_process.h"
#include "tests/agent/mosquitto_fixture.h"

namespace edgeinfer::agent {
namespace {

using Json = nlohmann::json;
using testing_agent::AgentProcess;
using testing_agent::InputMessage;
using testing_agent::kModel;
using testing_mqtt::Millis;
using testing_mqtt::MosquittoSubscriber;
using testing_mqtt::ReadFile;
using testing_mqtt::WaitFor;
using testing_mqtt::WriteFile;

constexpr char kDevice[] = "squeeze-1";
constexpr int kMaxBatch = 1024;  // the config's largest batch.max_size
constexpr int kBurst = 3 * kMaxBatch;
constexpr int64_t kMiB = int64_t{1} << 20;

std::optional<int64_t> ReadInt(const std::filesystem::path& file) {
  const std::string s = ReadFile(file);
  if (s.empty()) return std::nullopt;
  try {
    return std::stoll(s);
  } catch (...) {
    return std::nullopt;
  }
}

// "key value" lines (memory.stat, memory.events, v1 memory.oom_control).
std::optional<int64_t> Keyed(const std::string& text, const std::string& key) {
  size_t at = 0;
  while ((at = text.find(key + " ", at)) != std::string::npos) {
    if (at == 0 || text[at - 1] == '\n') return std::stoll(text.substr(at + key.size() + 1));
    at += key.size();
  }
  return std::nullopt;
}

// ---- The growth guard on its own (scripted readings) and the batcher's hook ----

TEST(GrowthBudget, GrantsWhatFitsBelowTheCeilingAndCountsRecentGrants) {
  ScriptedMemorySource source;
  source.Set(MakeCgroupReading(50 * kMiB, 100 * kMiB));
  GrowthBudget budget(source, 0.75);  // room: 75 - 50 = 25 MiB
  EXPECT_EQ(budget.Allow(2, 100, kMiB), 2 + 25);
  EXPECT_EQ(budget.capped(), 1u);
  // The 25 MiB just granted may not be resident yet: no more room in the same moment.
  EXPECT_EQ(budget.Allow(27, 100, kMiB), 27);
  EXPECT_EQ(budget.Allow(0, 100, kMiB), 1);  // a fresh arena may always run one sample
  EXPECT_EQ(budget.capped(), 3u);
  GrowthBudget fresh(source, 0.75);
  EXPECT_EQ(fresh.Allow(0, 10, 1024), 10);  // small growth fits: not capped
  EXPECT_EQ(fresh.capped(), 0u);
  source.Set(MemoryReading{});  // no limit known: the guard does not stand in the way
  EXPECT_EQ(budget.Allow(0, 500, kMiB), 500);
}

TEST(GrowthBudget, UsageAboveTheCeilingAllowsNoGrowth) {
  ScriptedMemorySource source;
  source.Set(MakeCgroupReading(90 * kMiB, 100 * kMiB));
  GrowthBudget budget(source, 0.75);
  EXPECT_EQ(budget.Allow(40, 64, kMiB), 40);  // the pages of 40 are resident already
}

// Records each Allow and grants `step` more than ran.
class StepGuard : public ArenaGrowthGuard {
 public:
  explicit StepGuard(int step) : step_(step) {}
  int Allow(int ran, int wanted, size_t bytes_per_sample) override {
    std::lock_guard<std::mutex> lock(mu);
    calls.push_back({ran, wanted});
    per_sample = bytes_per_sample;
    return ran + step_;
  }
  std::mutex mu;
  std::vector<std::pair<int, int>> calls;
  size_t per_sample = 0;

 private:
  const int step_;
};

// Removes the process-wide guard at the end of a test, pass or fail.
struct GuardInstalled {
  explicit GuardInstalled(std::shared_ptr<ArenaGrowthGuard> g) { SetArenaGrowthGuard(g); }
  ~GuardInstalled() { SetArenaGrowthGuard(nullptr); }
};

// x[B,64] -> Gemm(W[32,64]) -> y[B,32]
std::shared_ptr<const Model> TinyModel() {
  static const std::vector<float> w(32 * 64, 0.01f);
  Graph g;
  const int x = g.AddTensor({"x", DType::kFloat32, Dims{kBatchDim, 64}});
  g.inputs.push_back(x);
  const int wi = g.AddConstant("w", DType::kFloat32, {32, 64}, w.data(), w.size() * 4);
  const int y = g.AddTensor({"y", DType::kFloat32, {}});
  Node gemm{"fc", "Gemm", {x, wi}, {y}, {}};
  gemm.attrs.Set("transB", int64_t{1});
  g.nodes = {gemm};
  g.outputs.push_back(y);
  auto m = Model::FromGraph(std::move(g));
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  return m.ok() ? *m : nullptr;
}

// Counts results and records batch sizes.
class CountingSink : public ResultSink {
 public:
  void OnResult(const Completion& c) override {
    std::lock_guard<std::mutex> lock(mu);
    ++results;
    ok += c.status.ok();
    if (c.index_in_batch == 0) sizes.push_back(c.batch_size);
  }
  size_t Results() {
    std::lock_guard<std::mutex> lock(mu);
    return results;
  }
  std::mutex mu;
  size_t results = 0, ok = 0;
  std::vector<int> sizes;
};

TEST(ArenaGrowthGuardHook, BatchesGrowOnlyAsTheGuardAllowsAndReplanStartsOver) {
  auto guard = std::make_shared<StepGuard>(4);
  GuardInstalled installed(guard);
  BatcherOptions o;
  o.max_batch = 32;
  o.timeout = std::chrono::milliseconds(500);  // batches leave full: the worker wants 32
  auto b = Batcher::Create(TinyModel(), o);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  CountingSink sink;
  const std::vector<float> sample(64, 1.0f);
  for (int i = 0; i < 64; ++i)
    ASSERT_NE((*b)->Submit(sample.data(), 64, &sink, i), SubmitResult::kRejectedStopped);
  ASSERT_TRUE(WaitFor([&] { return sink.Results() == 64; }, Millis(20000)));
  {
    std::lock_guard<std::mutex> lock(sink.mu);
    EXPECT_EQ(sink.ok, 64u);
    ASSERT_GE(sink.sizes.size(), 2u);
    EXPECT_EQ(sink.sizes[0], 4);  // 0 + 4: the guard's grant, not the 32 queued
    for (size_t i = 1; i < sink.sizes.size(); ++i) EXPECT_LE(sink.sizes[i], sink.sizes[i - 1] + 4);
  }
  {
    std::lock_guard<std::mutex> lock(guard->mu);
    ASSERT_FALSE(guard->calls.empty());
    EXPECT_EQ(guard->calls[0], std::make_pair(0, 32));
    EXPECT_EQ(guard->per_sample, (*b)->stats().workers[0].arena_bytes / 32);
    guard->calls.clear();
  }
  // A re-plan maps a fresh arena: growth is asked for again from 0.
  ASSERT_TRUE((*b)->SetMaxBatch(16).ok());
  for (int i = 0; i < 16; ++i) (*b)->Submit(sample.data(), 64, &sink, 100 + i);
  ASSERT_TRUE(WaitFor([&] { return sink.Results() == 80; }, Millis(20000)));
  std::lock_guard<std::mutex> lock(guard->mu);
  ASSERT_FALSE(guard->calls.empty());
  EXPECT_EQ(guard->calls[0], std::make_pair(0, 16));
}

TEST(ArenaGrowthGuardHook, WithoutAGuardAFullBatchRunsAtOnce) {
  SetArenaGrowthGuard(nullptr);
  BatcherOptions o;
  o.max_batch = 32;
  o.timeout = std::chrono::milliseconds(500);
  auto b = Batcher::Create(TinyModel(), o);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  CountingSink sink;
  const std::vector<float> sample(64, 1.0f);
  for (int i = 0; i < 32; ++i) (*b)->Submit(sample.data(), 64, &sink, i);
  ASSERT_TRUE(WaitFor([&] { return sink.Results() == 32; }, Millis(20000)));
  std::lock_guard<std::mutex> lock(sink.mu);
  EXPECT_EQ(sink.sizes, std::vector<int>{32});
}

// A memory cgroup made for the test; the destructor kills what is left in it and removes it.
class MemoryCgroup {
 public:
  // A new child of the process's own memory cgroup, or null with the reason in `why`.
  static std::unique_ptr<MemoryCgroup> Create(std::string* why) {
    const std::string self = ReadFile("/proc/self/cgroup");
    std::string v1_path, v2_path;
    for (size_t pos = 0; pos < self.size();) {
      size_t eol = self.find('\n', pos);
      if (eol == std::string::npos) eol = self.size();
      const std::string line = self.substr(pos, eol - pos);
      pos = eol + 1;
      const size_t a = line.find(':'), b = line.find(':', a + 1);
      if (a == std::string::npos || b == std::string::npos) continue;
      const std::string controllers = "," + line.substr(a + 1, b - a - 1) + ",";
      if (controllers.find(",memory,") != std::string::npos) v1_path = line.substr(b + 1);
      if (line.rfind("0::", 0) == 0) v2_path = line.substr(b + 1);
    }
    const std::string name = "edgeinfer-squeeze-" + std::to_string(::getpid());
    std::unique_ptr<MemoryCgroup> owned(new MemoryCgroup());
    MemoryCgroup& cg = *owned;
    if (!v1_path.empty()) {
      cg.v2_ = false;
      cg.dir_ = std::filesystem::path("/sys/fs/cgroup/memory" + v1_path) / name;
    } else if (!v2_path.empty() && std::filesystem::exists("/sys/fs/cgroup/cgroup.controllers")) {
      const std::filesystem::path parent = "/sys/fs/cgroup" + v2_path;
      if (ReadFile(parent / "cgroup.controllers").find("memory") == std::string::npos) {
        *why = "cgroup v2: no memory controller in " + parent.string();
        return nullptr;
      }
      // Fails (EBUSY) when the parent holds processes: v2's "no internal processes" rule.
      WriteFile(parent / "cgroup.subtree_control", "+memory");
      cg.v2_ = true;
      cg.dir_ = parent / name;
    } else {
      *why = "no memory cgroup (neither v1 nor v2) in /proc/self/cgroup";
      return nullptr;
    }
    if (::mkdir(cg.dir_.c_str(), 0755) != 0 && errno != EEXIST) {
      *why = "mkdir " + cg.dir_.string() + ": " + std::strerror(errno);
      cg.dir_.clear();
      return nullptr;
    }
    if (!std::filesystem::exists(cg.dir_ / cg.File("limit"))) {
      *why = cg.dir_.string() + " has no " + cg.File("limit") +
             " (the memory controller is not enabled for the test's cgroup)";
      return nullptr;  // the destructor removes the folder
    }
    return owned;
  }

  MemoryCgroup(const MemoryCgroup&) = delete;
  MemoryCgroup& operator=(const MemoryCgroup&) = delete;
  ~MemoryCgroup() { Remove(); }

  const char* version() const { return v2_ ? "v2" : "v1"; }
  const std::filesystem::path& dir() const { return dir_; }

  bool SetLimit(int64_t bytes) {
    WriteFile(dir_ / File("limit"), std::to_string(bytes));
    // No swap to escape to, where the machine has swap.
    if (std::filesystem::exists(dir_ / File("swap")))
      WriteFile(dir_ / File("swap"), v2_ ? "0" : std::to_string(bytes));
    return ReadInt(dir_ / File("limit")) == bytes;
  }
  // Usage minus inactive page cache (what the kernel cannot just drop), as the agent's probe.
  int64_t WorkingSet() const {
    const int64_t usage = ReadInt(dir_ / File("usage")).value_or(0);
    const std::string stat = ReadFile(dir_ / "memory.stat");
    const auto inactive = Keyed(stat, v2_ ? "inactive_file" : "total_inactive_file");
    return usage - inactive.value_or(0);
  }
  // OOM kills in this cgroup; -1 when the kernel does not count them.
  int64_t OomKills() const {
    const std::string text = ReadFile(dir_ / (v2_ ? "memory.events" : "memory.oom_control"));
    return Keyed(text, "oom_kill").value_or(-1);
  }
  // argv prefix that moves the command into this cgroup before exec (so it never allocates
  // outside it).
  std::vector<std::string> Wrap(const std::vector<std::string>& command) const {
    std::vector<std::string> a = {
        "/bin/sh", "-c", "echo $$ > '" + (dir_ / "cgroup.procs").string() + "' && exec \"$@\"",
        "sh"};
    a.insert(a.end(), command.begin(), command.end());
    return a;
  }

 private:
  MemoryCgroup() = default;
  std::string File(const std::string& what) const {
    if (what == "limit") return v2_ ? "memory.max" : "memory.limit_in_bytes";
    if (what == "swap") return v2_ ? "memory.swap.max" : "memory.memsw.limit_in_bytes";
    return v2_ ? "memory.current" : "memory.usage_in_bytes";
  }
  std::vector<pid_t> Procs() const {
    std::vector<pid_t> pids;
    const std::string text = ReadFile(dir_ / "cgroup.procs");
    size_t pos = 0;
    while (pos < text.size()) {
      const size_t eol = std::min(text.find('\n', pos), text.size());
      if (eol > pos) pids.push_back(std::stoi(text.substr(pos, eol - pos)));
      pos = eol + 1;
    }
    return pids;
  }
  void Remove() {
    if (dir_.empty()) return;
    WaitFor(
        [&] {
          const auto pids = Procs();
          for (pid_t p : pids) ::kill(p, SIGKILL);
          return pids.empty();
        },
        Millis(10000));
    // rmdir fails while the last killed process is still being torn down: retry briefly.
    WaitFor([&] { return ::rmdir(dir_.c_str()) == 0 || errno == ENOENT; }, Millis(5000));
    dir_.clear();
  }

  std::filesystem::path dir_;
  bool v2_ = false;
};

class MemorySqueeze : public testing_agent::AgentTest {
 protected:
  void SetUp() override {
    AgentTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    std::string why;
    cgroup_ = MemoryCgroup::Create(&why);
    if (!cgroup_) GTEST_SKIP() << "no memory cgroup for the test: " << why;
    ASSERT_FALSE(agent_.dir().empty());
  }
  void TearDown() override {
    agent_.Kill();
    cgroup_.reset();  // kills leftovers, rmdir
  }

  void StartAgent(bool watchdog) {
    agent_.WriteConfig(
        std::string("[device]\nid = \"") + kDevice + "\"\nstate_dir = \"" +
        agent_.state_dir().string() + "\"\n[source]\nuri = \"" + broker_.uri() +
        "\"\n[telemetry]\ninterval_s = 1\n[memory]\nwatchdog = " + (watchdog ? "true" : "false") +
        "\npoll_ms = 50\n[[pipeline]]\nname = \"vib\"\nmodel = \"" + kModel +
        "\"\ntopics = [\"sensors/+/vibration\"]\n[pipeline.input]\nwindow = 0\n"
        "[pipeline.batch]\nmax_size = " +
        std::to_string(kMaxBatch) +
        "\ntimeout_ms = 500\nqueue_capacity = " + std::to_string(2 * kBurst) + "\n");
    ASSERT_TRUE(agent_.StartCommand(cgroup_->Wrap(agent_.Command())));
  }
  std::string Where() const {
    return std::string("cgroup ") + cgroup_->version() + " " + cgroup_->dir().string() +
           ", agent log:\n" + agent_.log();
  }

  size_t Results() {
    const std::string topic = std::string("edgeinfer/") + kDevice + "/results/vib ";
    size_t n = 0;
    for (const std::string& m : results_->Messages()) n += m.rfind(topic, 0) == 0;
    return n;
  }
  // The latest telemetry report, or null.
  Json Telemetry() {
    const std::string topic = std::string("edgeinfer/") + kDevice + "/telemetry ";
    const auto messages = results_->Messages();
    for (auto m = messages.rbegin(); m != messages.rend(); ++m)
      if (m->rfind(topic, 0) == 0)
        return Json::parse(m->substr(topic.size()), nullptr, /*allow_exceptions=*/false);
    return nullptr;
  }

  // Starts the agent in the cgroup with no limit, proves it runs (results for a few inputs),
  // then sets the limit to the working set at that small load plus a margin that a full
  // arena of kMaxBatch cannot fit in. Fatal failures on the way.
  void StartSqueezed(bool watchdog) {
    results_ =
        std::make_unique<MosquittoSubscriber>(broker_, std::string("edgeinfer/") + kDevice + "/#");
    ASSERT_TRUE(results_->WaitReady()) << "mosquitto_sub did not subscribe";
    StartAgent(watchdog);
    // Until the agent is subscribed, inputs are lost: send one at a time until a result comes.
    ASSERT_TRUE(WaitFor(
        [&] {
          broker_.Publish("sensors/probe/vibration", InputMessage(0), 0);
          return WaitFor([&] { return Results() > 0; }, Millis(300));
        },
        Millis(30000)))
        << Where();
    std::vector<std::string> small;
    for (int i = 0; i < 32; ++i) small.push_back(InputMessage(i));
    const size_t before = Results();
    ASSERT_TRUE(broker_.PublishLines("sensors/m1/vibration", small));
    ASSERT_TRUE(WaitFor([&] { return Results() >= before + small.size(); }, Millis(20000)))
        << Where();
    warm_results_ = Results();

    Json t;
    ASSERT_TRUE(WaitFor([&] { return (t = Telemetry()).is_object(); }, Millis(5000))) << Where();
    const Json& vib = t["pipelines"]["vib"];
    const int64_t full_arena = vib.value("arena_bytes", int64_t{0});
    ASSERT_EQ(vib.value("planned_max_batch", 0), kMaxBatch) << t.dump();
    int64_t baseline = 0;
    for (int i = 0; i < 5; ++i) {
      baseline = std::max(baseline, cgroup_->WorkingSet());
      std::this_thread::sleep_for(Millis(100));
    }
    ASSERT_GT(baseline, 0) << Where();
    // The margin keeps the start below the watchdog's recover threshold (baseline / limit <=
    // 4/7 < 0.60) while a full arena still cannot fit: the batches must stay small to survive.
    const int64_t margin = std::max<int64_t>(24 * kMiB, baseline * 3 / 4);
    ASSERT_GT(full_arena, margin + 8 * kMiB)
        << "the test's premise: a full arena (" << full_arena / kMiB
        << " MiB) must exceed the margin (" << margin / kMiB << " MiB) left above the baseline";
    limit_ = baseline + margin;
    ASSERT_TRUE(cgroup_->SetLimit(limit_)) << Where();
    std::printf(
        "[ squeeze  ] cgroup %s: working set %lld MiB at small load, limit %lld MiB, full "
        "arena %lld MiB\n",
        cgroup_->version(), static_cast<long long>(baseline / kMiB),
        static_cast<long long>(limit_ / kMiB), static_cast<long long>(full_arena / kMiB));
    oom_kills_before_ = cgroup_->OomKills();
  }

  // The burst: kBurst inputs over one connection, as fast as the broker takes them.
  void Burst() {
    std::vector<std::string> lines;
    for (int i = 0; i < kBurst; ++i) lines.push_back(InputMessage(i));
    // The publisher may fail when the agent dies under it (watchdog off): not checked here.
    broker_.PublishLines("sensors/m2/vibration", lines);
  }

  std::unique_ptr<MemoryCgroup> cgroup_;
  std::unique_ptr<MosquittoSubscriber> results_;
  AgentProcess agent_{"sq"};
  size_t warm_results_ = 0;
  int64_t limit_ = 0;
  int64_t oom_kills_before_ = 0;
};

TEST_F(MemorySqueeze, WithTheWatchdogTheAgentStepsDownAndSurvives) {
  ASSERT_NO_FATAL_FAILURE(StartSqueezed(true));
  Burst();
  const size_t want = warm_results_ + kBurst;
  const bool all = WaitFor([&] { return Results() >= want || !agent_.running(); }, Millis(90000));
  const bool alive = agent_.running();
  const int status = agent_.wait_status();
  ASSERT_TRUE(alive) << "the agent exited (" << (WIFSIGNALED(status) ? "signal " : "status ")
                     << (WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status)) << ") after "
                     << Results() - warm_results_ << " of " << kBurst << " burst results; "
                     << Where();
  EXPECT_EQ(cgroup_->OomKills(), oom_kills_before_) << Where();

  // Every input produced a result, or was shed at critical (counted): none lost silently.
  Json t;
  ASSERT_TRUE(WaitFor(
      [&] {
        t = Telemetry();
        return t.is_object() &&
               t["pipelines"]["vib"].value("results_published", 0) + t.value("memory_shed", 0) >=
                   static_cast<int64_t>(want);
      },
      Millis(10000)))
      << "results " << Results() << " of " << want << "; telemetry " << t.dump() << Where();
  if (t.value("memory_shed", 0) == 0) {
    EXPECT_TRUE(all) << Results() << " of " << want;
  }
  EXPECT_GE(t["watchdog"].value("to_step_down", 0) + t["watchdog"].value("to_critical", 0), 1)
      << t["watchdog"].dump();
  EXPECT_GE(t.value("memory_capped_batches", 0), 1) << t.dump();
  EXPECT_NE(agent_.log().find("memory: normal -> "), std::string::npos) << agent_.log();
  std::printf(
      "[ squeeze  ] %zu of %d burst results; watchdog %s; capped batches %lld; mean "
      "batch %.1f; rss %lld MiB of limit %lld MiB\n",
      Results() - warm_results_, kBurst, t["watchdog"].dump().c_str(),
      static_cast<long long>(t.value("memory_capped_batches", 0)),
      t["pipelines"]["vib"].value("mean_batch_size", 0.0),
      static_cast<long long>(t.value("rss_bytes", int64_t{0}) / kMiB),
      static_cast<long long>(limit_ / kMiB));

  EXPECT_EQ(agent_.Stop(), 0) << Where();
}

TEST_F(MemorySqueeze, WithoutTheWatchdogTheOomKillerEndsTheAgent) {
  ASSERT_NO_FATAL_FAILURE(StartSqueezed(false));
  Burst();
  ASSERT_TRUE(WaitFor([&] { return !agent_.running(); }, Millis(60000)))
      << "the agent was not killed; results " << Results() - warm_results_ << " of " << kBurst
      << "; " << Where();
  const int status = agent_.wait_status();
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
      << "exit status " << status << "; " << Where();
  const int64_t kills = cgroup_->OomKills();
  if (kills >= 0) {
    EXPECT_GT(kills, oom_kills_before_) << "no OOM kill counted; " << Where();
  }
  EXPECT_LT(Results(), warm_results_ + kBurst) << "every result came through: no squeeze";
}

}  // namespace
}  // namespace edgeinfer::agent
