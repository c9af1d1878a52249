#include "telemetry/memory_watchdog.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

namespace edgeinfer {
namespace {

constexpr int64_t kSecond = 1000;

MemoryReading At(double fraction, std::optional<double> psi_full = std::nullopt) {
  MemoryReading r = MakeCgroupReading(static_cast<int64_t>(fraction * 1e6), 1000000);
  r.psi_full_avg10 = psi_full;
  return r;
}

// Feeds `fraction` once per second from `from_s` up to `to_s` inclusive; returns the changes.
std::vector<MemoryTransition> Feed(MemoryLevelMachine& m, double fraction, int from_s, int to_s) {
  std::vector<MemoryTransition> out;
  for (int s = from_s; s <= to_s; ++s) {
    if (auto t = m.Evaluate(At(fraction), s * kSecond)) out.push_back(*t);
  }
  return out;
}

TEST(MemoryLevelMachineTest, EachLevelAtItsThreshold) {
  MemoryLevelMachine m;
  EXPECT_FALSE(m.Evaluate(At(0.699), 0));
  EXPECT_EQ(m.level(), MemoryLevel::kNormal);
  auto t = m.Evaluate(At(0.70), 1);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->from, MemoryLevel::kNormal);
  EXPECT_EQ(t->to, MemoryLevel::kStepDown);
  EXPECT_NE(t->reason.find("step_down"), std::string::npos);
  EXPECT_FALSE(m.Evaluate(At(0.849), 2));
  t = m.Evaluate(At(0.85), 3);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->to, MemoryLevel::kCritical);
  EXPECT_FALSE(m.Evaluate(At(0.99), 4));  // already critical
  EXPECT_FALSE(m.Evaluate(At(0.61), 5));  // between recover and critical: stays
  EXPECT_EQ(m.level(), MemoryLevel::kCritical);
}

TEST(MemoryLevelMachineTest, StraightToCriticalFromNormal) {
  MemoryLevelMachine m;
  auto t = m.Evaluate(At(0.95), 0);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->from, MemoryLevel::kNormal);
  EXPECT_EQ(t->to, MemoryLevel::kCritical);
}

TEST(MemoryLevelMachineTest, RecoverNeedsThirtySecondsBelowSixty) {
  MemoryLevelMachine m;
  ASSERT_TRUE(m.Evaluate(At(0.75), 0));
  EXPECT_TRUE(Feed(m, 0.60, 1, 100).empty());    // 60% is not below 60%
  EXPECT_TRUE(Feed(m, 0.59, 101, 130).empty());  // held 29 s (first calm reading at 101)
  auto changes = Feed(m, 0.59, 131, 131);        // held 30 s
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].to, MemoryLevel::kNormal);
}

TEST(MemoryLevelMachineTest, OneHighReadingRestartsTheHold) {
  MemoryLevelMachine m;
  ASSERT_TRUE(m.Evaluate(At(0.75), 0));
  EXPECT_TRUE(Feed(m, 0.5, 1, 29).empty());  // 28 s held
  EXPECT_TRUE(Feed(m, 0.65, 30, 30).empty());
  EXPECT_TRUE(Feed(m, 0.5, 31, 60).empty());  // 29 s held again
  EXPECT_EQ(Feed(m, 0.5, 61, 61).size(), 1u);
}

TEST(MemoryLevelMachineTest, GrowsBackOneStepPerHold) {
  MemoryLevelMachine m;
  ASSERT_TRUE(m.Evaluate(At(0.9), 0));
  auto changes = Feed(m, 0.3, 1, 100);
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(changes[0].from, MemoryLevel::kCritical);
  EXPECT_EQ(changes[0].to, MemoryLevel::kStepDown);
  EXPECT_EQ(changes[1].to, MemoryLevel::kNormal);
  // First hold: calm from 1 s, step at 31 s; second hold from 31 s, step at 61 s.
  EXPECT_NE(changes[0].reason.find("30000 ms"), std::string::npos) << changes[0].reason;
  EXPECT_NE(changes[1].reason.find("30000 ms"), std::string::npos) << changes[1].reason;
}

TEST(MemoryLevelMachineTest, FlappingStepsOnceAndNeverRecovers) {
  MemoryLevelMachine m;
  int changes = 0;
  for (int s = 0; s < 200; ++s) {
    changes += m.Evaluate(At(s % 2 ? 0.71 : 0.69), s * kSecond).has_value();
  }
  EXPECT_EQ(changes, 1);
  for (int s = 200; s < 400; ++s) {
    changes += m.Evaluate(At(s % 2 ? 0.61 : 0.59), s * kSecond).has_value();
  }
  EXPECT_EQ(changes, 1);
  EXPECT_EQ(m.level(), MemoryLevel::kStepDown);
}

TEST(MemoryLevelMachineTest, NoLimitChangesNothingAndRestartsTheHold) {
  MemoryLevelMachine m;
  ASSERT_TRUE(m.Evaluate(At(0.75), 0));
  EXPECT_TRUE(Feed(m, 0.5, 1, 20).empty());
  EXPECT_FALSE(m.Evaluate(MemoryReading{}, 21 * kSecond));
  EXPECT_TRUE(Feed(m, 0.5, 22, 51).empty());  // 29 s since the hold restarted
  EXPECT_EQ(Feed(m, 0.5, 52, 52).size(), 1u);
}

TEST(MemoryLevelMachineTest, PsiStepsDownEarlyAndDelaysRecovery) {
  MemoryLevelMachine m;
  EXPECT_FALSE(m.Evaluate(At(0.3, 9.9), 0));
  auto t = m.Evaluate(At(0.3, 10.0), kSecond);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->to, MemoryLevel::kStepDown);
  EXPECT_NE(t->reason.find("PSI"), std::string::npos);
  // Fraction is calm but PSI still at half the threshold: the hold does not start.
  for (int s = 2; s < 100; ++s) EXPECT_FALSE(m.Evaluate(At(0.3, 5.0), s * kSecond));
  for (int s = 100; s < 130; ++s) EXPECT_FALSE(m.Evaluate(At(0.3, 4.9), s * kSecond));
  EXPECT_TRUE(m.Evaluate(At(0.3, 4.9), 130 * kSecond));
}

TEST(MemoryLevelMachineTest, PsiCanBeTurnedOff) {
  MemoryWatchdogOptions o;
  o.psi_full_step_down = 0;
  MemoryLevelMachine m(o);
  EXPECT_FALSE(m.Evaluate(At(0.3, 90.0), 0));
}

TEST(MemoryLevelMachineTest, ConfiguredThresholds) {
  MemoryWatchdogOptions o;
  o.step_down = 0.5;
  o.critical = 0.6;
  o.recover = 0.4;
  o.recover_hold_ms = 5000;
  ASSERT_TRUE(ValidateWatchdogOptions(o).ok());
  MemoryLevelMachine m(o);
  EXPECT_EQ(m.Evaluate(At(0.5), 0)->to, MemoryLevel::kStepDown);
  EXPECT_EQ(m.Evaluate(At(0.6), kSecond)->to, MemoryLevel::kCritical);
  EXPECT_TRUE(Feed(m, 0.39, 2, 6).empty());
  EXPECT_EQ(Feed(m, 0.39, 7, 7).size(), 1u);
}

TEST(MemoryWatchdogOptionsTest, BadOrderIsRefused) {
  MemoryWatchdogOptions o;
  o.recover = 0.8;
  EXPECT_EQ(ValidateWatchdogOptions(o).code(), Status::Code::kInvalidArgument);
  o = {};
  o.critical = 0.5;
  EXPECT_FALSE(ValidateWatchdogOptions(o).ok());
  o = {};
  o.period_ms = 0;
  EXPECT_FALSE(ValidateWatchdogOptions(o).ok());
  o = {};
  o.psi_full_step_down = -1;
  EXPECT_FALSE(ValidateWatchdogOptions(o).ok());
}

TEST(DescribeTransitionTest, NamesLevelsAndFigures) {
  MemoryTransition t{MemoryLevel::kNormal, MemoryLevel::kStepDown, "why",
                     MakeCgroupReading(384 << 20, 512 << 20)};
  std::string line = DescribeTransition(t);
  EXPECT_NE(line.find("normal -> step_down (why)"), std::string::npos) << line;
  EXPECT_NE(line.find("384.0 MiB of 512.0 MiB (cgroup)"), std::string::npos) << line;
}

class RecordingActions : public MemoryActions {
 public:
  void OnLevel(MemoryLevel from, MemoryLevel to, const MemoryReading&) override {
    if (delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    std::lock_guard lock(mu);
    calls.emplace_back(from, to);
  }
  size_t Count() {
    std::lock_guard lock(mu);
    return calls.size();
  }
  std::mutex mu;
  std::vector<std::pair<MemoryLevel, MemoryLevel>> calls;
  int delay_ms = 0;
};

// Waits (bounded) until `actions` has seen `n` calls.
bool WaitForCalls(RecordingActions& actions, size_t n) {
  for (int i = 0; i < 500 && actions.Count() < n; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return actions.Count() >= n;
}

TEST(MemoryWatchdogTest, ThreadPollsAndActsThroughEveryLevel) {
  ScriptedMemorySource source;
  RecordingActions actions;
  std::vector<std::string> log;
  std::mutex log_mu;
  MemoryWatchdogOptions o;
  o.period_ms = 20;
  o.recover_hold_ms = 100;
  MemoryWatchdog dog(source, actions, o, [&](const MemoryTransition& t) {
    std::lock_guard lock(log_mu);
    log.push_back(DescribeTransition(t));
  });
  source.Set(At(0.5));
  ASSERT_TRUE(dog.Start().ok());
  EXPECT_FALSE(dog.Start().ok());
  source.Set(At(0.75));
  ASSERT_TRUE(WaitForCalls(actions, 1));
  source.Set(At(0.9));
  ASSERT_TRUE(WaitForCalls(actions, 2));
  source.Set(At(0.2));
  ASSERT_TRUE(WaitForCalls(actions, 4));
  dog.Stop();
  const int64_t reads_after_stop = source.reads();
  std::this_thread::sleep_for(std::chrono::milliseconds(60));
  EXPECT_EQ(source.reads(), reads_after_stop);

  using L = MemoryLevel;
  std::vector<std::pair<L, L>> expected = {{L::kNormal, L::kStepDown},
                                           {L::kStepDown, L::kCritical},
                                           {L::kCritical, L::kStepDown},
                                           {L::kStepDown, L::kNormal}};
  EXPECT_EQ(actions.calls, expected);
  EXPECT_EQ(log.size(), 4u);
  MemoryWatchdogStats s = dog.Stats();
  EXPECT_EQ(s.level, L::kNormal);
  EXPECT_EQ(s.transitions, 4u);
  EXPECT_EQ(s.to_step_down, 2u);
  EXPECT_EQ(s.to_critical, 1u);
  EXPECT_EQ(s.to_normal, 1u);
  EXPECT_EQ(s.reaction_ms.count, 4u);
  EXPECT_GE(s.polls, 4u);
  nlohmann::json j = s.ToJson();
  EXPECT_EQ(j["level"], "normal");
  EXPECT_EQ(j["transitions"], 4);
}

TEST(MemoryWatchdogTest, PollOnceWithFakeClockAndReactionTime) {
  ScriptedMemorySource source;
  RecordingActions actions;
  actions.delay_ms = 30;  // an arena re-plan that takes a while
  MemoryWatchdog dog(source, actions, {}, [](const MemoryTransition&) {});
  source.Set(At(0.8));
  dog.PollOnce(0);
  EXPECT_EQ(dog.level(), MemoryLevel::kStepDown);
  MemoryWatchdogStats s = dog.Stats();
  EXPECT_GE(s.last_reaction_ms, 30.0);  // the action's time is part of the reaction
  source.Set(At(0.1));
  dog.PollOnce(1000);
  dog.PollOnce(30999);
  EXPECT_EQ(dog.level(), MemoryLevel::kStepDown);
  dog.PollOnce(31000);
  EXPECT_EQ(dog.level(), MemoryLevel::kNormal);
  source.Set(MemoryReading{});
  dog.PollOnce(32000);
  EXPECT_EQ(dog.Stats().polls_without_limit, 1u);
  EXPECT_EQ(dog.Stats().polls, 5u);
}

TEST(MemoryWatchdogTest, StartRefusesBadOptions) {
  ScriptedMemorySource source;
  RecordingActions actions;
  MemoryWatchdogOptions o;
  o.recover = 0.9;
  MemoryWatchdog dog(source, actions, o);
  EXPECT_EQ(dog.Start().code(), Status::Code::kInvalidArgument);
}

TEST(TrimMallocCacheTest, ReturnsFreedHolesToTheKernel) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "sanitizers replace glibc malloc";
#endif
  // 16 MiB of small blocks, then free all but the last: the hole sits below a live block, so
  // free() cannot shrink the heap by itself and only malloc_trim gives the pages back.
  std::vector<char*> blocks;
  for (int i = 0; i < 4096; ++i) {
    blocks.push_back(static_cast<char*>(std::malloc(4000)));
    std::memset(blocks.back(), 1, 4000);
  }
  for (size_t i = 0; i + 1 < blocks.size(); ++i) std::free(blocks[i]);
  EXPECT_TRUE(TrimMallocCache());
  std::free(blocks.back());
}

}  // namespace
}  // namespace edgeinfer
