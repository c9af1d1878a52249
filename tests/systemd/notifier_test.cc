#include "systemd/notifier.h"

#include <gtest/gtest.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include "tests/systemd/notify_listener.h"

namespace edgeinfer::systemd {
namespace {

using std::chrono::milliseconds;
using testing::NotifyListener;
using testing::NotifyMessage;
using testing::ScopedEnv;

constexpr milliseconds kWait(5000);

uint64_t MonotonicUsecNow() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000u + static_cast<uint64_t>(ts.tv_nsec) / 1000u;
}

class NotifierTest : public ::testing::TestWithParam<NotifyListener::Kind> {
 protected:
  void SetUp() override {
    auto l = NotifyListener::Create(GetParam());
    ASSERT_TRUE(l.ok()) << l.status().ToString();
    listener_ = std::move(*l);
    env_ = std::make_unique<ScopedEnv>("NOTIFY_SOCKET", listener_->address());
  }

  NotifyMessage Next() {
    std::optional<NotifyMessage> m = listener_->Receive(kWait);
    EXPECT_TRUE(m.has_value()) << "no datagram within " << kWait.count() << " ms";
    return m.value_or(NotifyMessage{});
  }

  std::unique_ptr<NotifyListener> listener_;
  std::unique_ptr<ScopedEnv> env_;
};

TEST_P(NotifierTest, SendsEveryMessageWithOurPid) {
  Notifier n;
  ASSERT_TRUE(n.enabled());

  ASSERT_TRUE(n.Ready("running 2 pipelines").ok());
  NotifyMessage ready = Next();
  EXPECT_EQ(ready.Get("READY"), "1");
  EXPECT_EQ(ready.Get("STATUS"), "running 2 pipelines");
  EXPECT_EQ(ready.sender_pid, ::getpid());

  ASSERT_TRUE(n.SetStatus("140 msg/s").ok());
  NotifyMessage status = Next();
  EXPECT_EQ(status.text, "STATUS=140 msg/s");

  uint64_t before = MonotonicUsecNow();
  ASSERT_TRUE(n.Reloading().ok());
  uint64_t after = MonotonicUsecNow();
  NotifyMessage reloading = Next();
  EXPECT_EQ(reloading.Get("RELOADING"), "1");
  ASSERT_TRUE(reloading.Has("MONOTONIC_USEC")) << reloading.text;
  uint64_t stamp = std::stoull(reloading.Get("MONOTONIC_USEC"));
  EXPECT_GE(stamp, before);
  EXPECT_LE(stamp, after);

  ASSERT_TRUE(n.Stopping().ok());
  EXPECT_EQ(Next().text, "STOPPING=1");

  ASSERT_TRUE(n.Watchdog().ok());
  EXPECT_EQ(Next().text, "WATCHDOG=1");

  ASSERT_TRUE(n.ExtendTimeout(std::chrono::seconds(90)).ok());
  EXPECT_EQ(Next().text, "EXTEND_TIMEOUT_USEC=90000000");
}

TEST_P(NotifierTest, StatusCannotInjectAssignments) {
  Notifier n;
  ASSERT_TRUE(n.SetStatus("bad topic\nWATCHDOG=1\r\nREADY=1").ok());
  NotifyMessage m = Next();
  EXPECT_EQ(m.fields.size(), 1u) << m.text;
  EXPECT_EQ(m.Get("STATUS"), "bad topic WATCHDOG=1  READY=1");
}

INSTANTIATE_TEST_SUITE_P(PathAndAbstract, NotifierTest,
                         ::testing::Values(NotifyListener::Kind::kPath,
                                           NotifyListener::Kind::kAbstract),
                         [](const auto& info) {
                           return info.param == NotifyListener::Kind::kPath ? "Path" : "Abstract";
                         });

TEST(NotifierNoSocketTest, EverythingIsAQuietNoOp) {
  ScopedEnv env("NOTIFY_SOCKET", std::nullopt);
  Notifier n;
  EXPECT_FALSE(n.enabled());
  EXPECT_TRUE(n.Ready("x").ok());
  EXPECT_TRUE(n.SetStatus("x").ok());
  EXPECT_TRUE(n.Reloading().ok());
  EXPECT_TRUE(n.Stopping().ok());
  EXPECT_TRUE(n.Watchdog().ok());
}

TEST(NotifierNoSocketTest, NoOpIsCheap) {
  // Not a speed assertion: prints the cost so a regression to a syscall per call shows.
  ScopedEnv env("NOTIFY_SOCKET", std::nullopt);
  Notifier n;
  constexpr int kCalls = 1000000;
  auto start = std::chrono::steady_clock::now();
  int failures = 0;
  for (int i = 0; i < kCalls; ++i) failures += n.Watchdog().ok() ? 0 : 1;
  auto ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start)
          .count();
  EXPECT_EQ(failures, 0);
  std::printf("disabled Notifier::Watchdog(): %.1f ns per call\n",
              static_cast<double>(ns) / kCalls);
}

TEST(NotifierNoSocketTest, UnreachableSocketIsAnError) {
  ScopedEnv env("NOTIFY_SOCKET", std::string("/nonexistent-edgeinfer-dir/notify.sock"));
  Notifier n;
  ASSERT_TRUE(n.enabled());
  Status s = n.Ready();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("NOTIFY_SOCKET"), std::string::npos) << s.ToString();
}

TEST(NotifierWatchdogTest, IntervalFromEnvironment) {
  {
    ScopedEnv usec("WATCHDOG_USEC", std::string("30000000"));
    ScopedEnv pid("WATCHDOG_PID", std::nullopt);
    Notifier n;
    ASSERT_TRUE(n.watchdog_interval().has_value());
    EXPECT_EQ(n.watchdog_interval()->count(), 30000000);
  }
  {
    ScopedEnv usec("WATCHDOG_USEC", std::string("30000000"));
    ScopedEnv pid("WATCHDOG_PID", std::to_string(::getpid()));
    EXPECT_TRUE(Notifier().watchdog_interval().has_value());
  }
  {
    // Meant for another process (e.g. inherited by a child): not ours to ping.
    ScopedEnv usec("WATCHDOG_USEC", std::string("30000000"));
    ScopedEnv pid("WATCHDOG_PID", std::to_string(::getpid() + 1));
    EXPECT_FALSE(Notifier().watchdog_interval().has_value());
  }
  {
    ScopedEnv usec("WATCHDOG_USEC", std::nullopt);
    EXPECT_FALSE(Notifier().watchdog_interval().has_value());
  }
  {
    ScopedEnv usec("WATCHDOG_USEC", std::string("soon"));
    ScopedEnv pid("WATCHDOG_PID", std::nullopt);
    EXPECT_FALSE(Notifier().watchdog_interval().has_value());
  }
}

}  // namespace
}  // namespace edgeinfer::systemd
