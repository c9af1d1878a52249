// The edgeinfer-agent binary as systemd sees it: a NOTIFY_SOCKET datagram listener (what systemd
// binds for a Type=notify service) receives READY=1 once the links are up, WATCHDOG=1 at no more
// than half of WATCHDOG_USEC, RELOADING=1 (with MONOTONIC_USEC) then READY=1 around SIGHUP, and
// STOPPING=1 on SIGTERM. The pings stop while the pipeline's workers are stalled: the test stops
// every "ei-worker" thread of the agent with ptrace (the rest of the process keeps running, as
// with a worker hung in a kernel or a driver) and they resume once the workers run again.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/wait.h>

#include <filesystem>
#include <string>
#include <vector>

#include "tests/agent/agent_process.h"
#include "tests/agent/mosquitto_fixture.h"
#include "tests/systemd/notify_listener.h"

namespace edgeinfer::agent {
namespace {

using systemd::testing::NotifyListener;
using systemd::testing::NotifyMessage;
using testing_agent::AgentProcess;
using testing_agent::InputMessage;
using testing_agent::kModel;
using testing_mqtt::Millis;

constexpr auto kWatchdog = Millis(2000);  // WATCHDOG_USEC: pings every 1 s

// The thread ids of `pid` whose name is `name` (/proc/PID/task/TID/comm).
std::vector<pid_t> ThreadsNamed(pid_t pid, const std::string& name) {
  std::vector<pid_t> tids;
  std::error_code ec;
  for (const auto& t :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    std::string comm = testing_mqtt::ReadFile(t.path() / "comm");
    while (!comm.empty() && comm.back() == '\n') comm.pop_back();
    if (comm == name) tids.push_back(std::stoi(t.path().filename().string()));
  }
  return tids;
}

// Stops single threads of another process (PTRACE_SEIZE + PTRACE_INTERRUPT stop that thread
// only) and lets them go on destruction.
class ThreadFreezer {
 public:
  bool Freeze(pid_t tid) {
    if (::ptrace(PTRACE_SEIZE, tid, nullptr, nullptr) != 0) return false;
    frozen_.push_back(tid);
    if (::ptrace(PTRACE_INTERRUPT, tid, nullptr, nullptr) != 0) return false;
    int status = 0;
    return ::waitpid(tid, &status, __WALL) == tid && WIFSTOPPED(status);
  }
  void ThawAll() {
    for (pid_t tid : frozen_) ::ptrace(PTRACE_DETACH, tid, nullptr, nullptr);
    frozen_.clear();
  }
  ~ThreadFreezer() { ThawAll(); }

 private:
  std::vector<pid_t> frozen_;
};

class AgentNotify : public testing_agent::AgentTest {
 protected:
  void SetUp() override {
    AgentTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    auto l = NotifyListener::Create(NotifyListener::Kind::kPath);
    ASSERT_TRUE(l.ok()) << l.status().ToString();
    listener_ = std::move(*l);
    ASSERT_FALSE(agent_.dir().empty());
    agent_.WriteConfig("[device]\nid = \"sd-1\"\nstate_dir = \"" + agent_.state_dir().string() +
                       "\"\n[source]\nuri = \"" + broker_.uri() +
                       "\"\n[[pipeline]]\nname = \"vib\"\nmodel = \"" + kModel +
                       "\"\ntopics = [\"sensors/+/vibration\"]\n"
                       "[pipeline.input]\nwindow = 0\n");
  }

  void StartAgent() {
    ASSERT_TRUE(agent_.Start({"NOTIFY_SOCKET=" + listener_->address(),
                              "WATCHDOG_USEC=" + std::to_string(kWatchdog.count() * 1000)}));
  }

  // The WATCHDOG=1 arrival times among the datagrams of the next `d`.
  std::vector<std::chrono::steady_clock::time_point> Pings(Millis d) {
    std::vector<std::chrono::steady_clock::time_point> at;
    for (const NotifyMessage& m : listener_->Collect(d))
      if (m.Get("WATCHDOG") == "1") at.push_back(m.received);
    return at;
  }

  std::unique_ptr<NotifyListener> listener_;
  AgentProcess agent_{"sd"};  // last: destroyed (killed) first
};

TEST_F(AgentNotify, ReadyWatchdogReloadAndStopping) {
  StartAgent();
  auto ready = listener_->WaitFor("READY", Millis(30000));
  ASSERT_TRUE(ready.has_value()) << agent_.log();
  EXPECT_EQ(ready->Get("READY"), "1");
  EXPECT_EQ(ready->sender_pid, agent_.pid());  // what NotifyAccess=main checks
  EXPECT_NE(ready->Get("STATUS").find("source up, sink up"), std::string::npos)
      << ready->Get("STATUS");

  // Pings at no more than half the interval (1 s), with 400 ms for a loaded machine.
  const auto pings = Pings(Millis(3500));
  ASSERT_GE(pings.size(), 3u) << agent_.log();
  for (size_t i = 1; i < pings.size(); ++i)
    EXPECT_LE(pings[i] - pings[i - 1], kWatchdog / 2 + Millis(400)) << "gap before ping " << i;

  agent_.Signal(SIGHUP);
  auto reloading = listener_->WaitFor("RELOADING", Millis(10000));
  ASSERT_TRUE(reloading.has_value()) << agent_.log();
  EXPECT_FALSE(reloading->Get("MONOTONIC_USEC").empty());
  EXPECT_TRUE(listener_->WaitFor("READY", Millis(10000)).has_value()) << agent_.log();

  agent_.Signal(SIGTERM);
  auto stopping = listener_->WaitFor("STOPPING", Millis(10000));
  ASSERT_TRUE(stopping.has_value()) << agent_.log();
  EXPECT_EQ(agent_.Wait(Millis(30000)), 0) << agent_.log();
}

TEST_F(AgentNotify, PingsStopWhileTheWorkersAreStalledAndResumeAfter) {
  StartAgent();
  ASSERT_TRUE(listener_->WaitFor("READY", Millis(30000)).has_value()) << agent_.log();
  ASSERT_GE(Pings(Millis(1500)).size(), 1u) << agent_.log();

  const std::vector<pid_t> workers = ThreadsNamed(agent_.pid(), "ei-worker");
  ASSERT_FALSE(workers.empty()) << "no ei-worker thread in the agent";
  ThreadFreezer freezer;
  for (pid_t tid : workers) ASSERT_TRUE(freezer.Freeze(tid)) << "ptrace " << tid << ": " << errno;
  // Inputs arrive and wait: the queue stops moving. The agent's stall limit is max(5 s, half
  // the watchdog interval): after it, no ping.
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(broker_.Publish("sensors/m1/vibration", InputMessage(i)));
  (void)Pings(Millis(5000 + 1500));
  EXPECT_TRUE(Pings(Millis(2500)).empty()) << "pings went on with every worker stopped";

  freezer.ThawAll();
  EXPECT_FALSE(Pings(Millis(3000)).empty()) << "pings did not resume\n" << agent_.log();
  EXPECT_NE(agent_.log().find("worker made no progress"), std::string::npos) << agent_.log();
}

}  // namespace
}  // namespace edgeinfer::agent
