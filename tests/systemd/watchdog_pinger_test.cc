#include "systemd/watchdog_pinger.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "tests/systemd/notify_listener.h"

namespace edgeinfer::systemd {
namespace {

using std::chrono::milliseconds;
using testing::NotifyListener;
using testing::NotifyMessage;
using testing::ScopedEnv;
using Clock = std::chrono::steady_clock;

// A logger writing into a pipe the test reads, so "logged once" can be checked.
class CapturedLog {
 public:
  CapturedLog() {
    EXPECT_EQ(::pipe2(fds_, O_CLOEXEC | O_NONBLOCK), 0);
    JournalLogger::Options o;
    o.fd = fds_[1];
    o.format = JournalLogger::Format::kJournal;
    logger_ = std::make_unique<JournalLogger>(o);
  }
  ~CapturedLog() {
    ::close(fds_[0]);
    ::close(fds_[1]);
  }
  JournalLogger* logger() { return logger_.get(); }
  std::string Drain() {
    char buf[4096];
    ssize_t n = 0;
    while ((n = ::read(fds_[0], buf, sizeof buf)) > 0) text_.append(buf, static_cast<size_t>(n));
    return text_;
  }

 private:
  int fds_[2] = {-1, -1};
  std::unique_ptr<JournalLogger> logger_;
  std::string text_;
};

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

class WatchdogPingerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto l = NotifyListener::Create(NotifyListener::Kind::kPath);
    ASSERT_TRUE(l.ok()) << l.status().ToString();
    listener_ = std::move(*l);
    socket_env_ = std::make_unique<ScopedEnv>("NOTIFY_SOCKET", listener_->address());
  }

  std::unique_ptr<NotifyListener> listener_;
  std::unique_ptr<ScopedEnv> socket_env_;
  CapturedLog log_;
};

TEST_F(WatchdogPingerTest, PingsAtHalfTheIntervalWhileAliveAndStopsWhenStuck) {
  // systemd's side: WatchdogSec=400ms.
  constexpr milliseconds kInterval(400);
  ScopedEnv usec("WATCHDOG_USEC", std::to_string(kInterval.count() * 1000));
  ScopedEnv pid("WATCHDOG_PID", std::to_string(::getpid()));
  Notifier notifier;
  std::atomic<bool> alive{true};
  WatchdogPinger pinger(
      notifier,
      {.liveness =
           [&] { return alive ? Status::Ok() : Status::Internal("pipeline 'vib': worker stuck"); },
       .logger = log_.logger()});
  EXPECT_EQ(pinger.period(), std::chrono::microseconds(kInterval) / 2);
  ASSERT_TRUE(pinger.Start().ok());
  ASSERT_TRUE(pinger.running());

  // Six pings; systemd would kill us if any gap reached the interval.
  std::vector<Clock::time_point> times;
  for (int i = 0; i < 6; ++i) {
    std::optional<NotifyMessage> m = listener_->WaitFor("WATCHDOG", milliseconds(5000));
    ASSERT_TRUE(m.has_value()) << "ping " << i << " missing";
    EXPECT_EQ(m->text, "WATCHDOG=1");
    EXPECT_EQ(m->sender_pid, ::getpid());
    times.push_back(m->received);
  }
  for (size_t i = 1; i < times.size(); ++i) {
    EXPECT_LT(times[i] - times[i - 1], kInterval) << "gap before ping " << i;
  }

  // A worker gets stuck: no ping in two whole intervals, and the reason is logged once.
  alive = false;
  auto stuck_at = Clock::now();
  // At most one ping may already be on its way (checked before the flag flipped).
  std::vector<NotifyMessage> late = listener_->Collect(kInterval * 2);
  size_t pings_after = 0;
  for (const NotifyMessage& m : late) {
    if (m.Has("WATCHDOG") && m.received - stuck_at > pinger.period() + milliseconds(50)) {
      ++pings_after;
    }
  }
  EXPECT_EQ(pings_after, 0u);
  EXPECT_LE(late.size(), 1u);
  EXPECT_TRUE(pinger.stalled());
  EXPECT_GE(pinger.withheld(), 3u);
  std::string logged = log_.Drain();
  EXPECT_EQ(Count(logged, "worker stuck"), 1u) << logged;
  EXPECT_EQ(Count(logged, "<3>watchdog: not pinging systemd"), 1u) << logged;

  // It recovers: pings resume, and that is logged once.
  alive = true;
  ASSERT_TRUE(listener_->WaitFor("WATCHDOG", milliseconds(5000)).has_value());
  EXPECT_FALSE(pinger.stalled());
  logged = log_.Drain();
  EXPECT_EQ(Count(logged, "passes again"), 1u) << logged;

  pinger.Stop();
  EXPECT_FALSE(pinger.running());
  listener_->Collect(milliseconds(10));  // anything in flight
  EXPECT_FALSE(listener_->Receive(milliseconds(500)).has_value()) << "pinged after Stop()";
}

TEST_F(WatchdogPingerTest, StopIsPromptWithALongPeriod) {
  Notifier notifier;
  WatchdogPinger pinger(notifier, {.period = std::chrono::seconds(60),
                                   .liveness = [] { return Status::Ok(); },
                                   .logger = log_.logger()});
  ASSERT_TRUE(pinger.Start().ok());
  ASSERT_TRUE(listener_->WaitFor("WATCHDOG", milliseconds(5000)).has_value());
  auto start = Clock::now();
  pinger.Stop();
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(2));
  EXPECT_EQ(pinger.pings(), 1u);
  pinger.Stop();  // idempotent
}

TEST_F(WatchdogPingerTest, StuckFromTheStartNeverPings) {
  Notifier notifier;
  WatchdogPinger pinger(notifier, {.period = milliseconds(20),
                                   .liveness = [] { return Status::Internal("not started"); },
                                   .logger = log_.logger()});
  ASSERT_TRUE(pinger.Start().ok());
  EXPECT_FALSE(listener_->Receive(milliseconds(300)).has_value());
  pinger.Stop();
  EXPECT_EQ(pinger.pings(), 0u);
  EXPECT_GE(pinger.withheld(), 2u);
  EXPECT_EQ(Count(log_.Drain(), "not started"), 1u);
}

TEST_F(WatchdogPingerTest, NothingToDoWithoutWatchdog) {
  ScopedEnv usec("WATCHDOG_USEC", std::nullopt);
  Notifier notifier;
  WatchdogPinger pinger(notifier, {.liveness = [] { return Status::Ok(); }});
  EXPECT_TRUE(pinger.Start().ok());
  EXPECT_FALSE(pinger.running());
  EXPECT_EQ(pinger.period().count(), 0);
}

TEST_F(WatchdogPingerTest, MissingLivenessIsAnError) {
  Notifier notifier;
  WatchdogPinger pinger(notifier, {.period = milliseconds(10)});
  Status s = pinger.Start();
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_FALSE(pinger.running());
}

TEST_F(WatchdogPingerTest, StartTwiceIsAnError) {
  Notifier notifier;
  WatchdogPinger pinger(notifier, {.period = milliseconds(50),
                                   .liveness = [] { return Status::Ok(); },
                                   .logger = log_.logger()});
  ASSERT_TRUE(pinger.Start().ok());
  EXPECT_FALSE(pinger.Start().ok());
  pinger.Stop();
  // And it can start again after a stop.
  ASSERT_TRUE(pinger.Start().ok());
  pinger.Stop();
}

}  // namespace
}  // namespace edgeinfer::systemd
