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

#include "tests/agent/mosquitto_fixture.h"
#include "tests/systemd/notify_listener.h"

namespace edgeinfer::agent {
namespace {

using systemd::testing::NotifyListener;
using systemd::testing::NotifyMessage;
using testing_mqtt::Millis;
using testing_mqtt::MosquittoBroker;

constexpr char kAgent[] = EDGEINFER_BINARY_DIR "/agent/edgeinfer-agent";
constexpr char kModel[] = EDGEINFER_SOURCE_DIR "/examples/vibration.onnx";
constexpr auto kWatchdog = Millis(2000);  // WATCHDOG_USEC: pings every 1 s

// One vibration model input (3 x 256 values) as one message.
std::string InputMessage() {
  std::string s = "{\"values\":[";
  for (int i = 0; i < 3 * 256; ++i) s += i ? ",0.5" : "0.5";
  return s + "]}";
}

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

class AgentNotify : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!MosquittoBroker::Available()) GTEST_SKIP() << "/usr/sbin/mosquitto is not installed";
    ASSERT_TRUE(testing_mqtt::HaveProgram(kAgent)) << kAgent << ": build edgeinfer-agent first";
    ASSERT_TRUE(broker_.Start()) << broker_.error();
    auto l = NotifyListener::Create(NotifyListener::Kind::kPath);
    ASSERT_TRUE(l.ok()) << l.status().ToString();
    listener_ = std::move(*l);
    std::string tmpl = std::filesystem::temp_directory_path().string() + "/edgeinfer-sd-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    testing_mqtt::WriteFile(dir_ / "agent.toml",
                            "[device]\nid = \"sd-1\"\nstate_dir = \"" + (dir_ / "state").string() +
                                "\"\n[source]\nuri = \"" + broker_.uri() +
                                "\"\n[[pipeline]]\nname = \"vib\"\nmodel = \"" + kModel +
                                "\"\ntopics = [\"sensors/+/vibration\"]\n"
                                "[pipeline.input]\nwindow = 0\n");
  }
  void TearDown() override {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      testing_mqtt::WaitExit(pid_, Millis(5000));
    }
    std::error_code ec;
    if (!HasFailure()) std::filesystem::remove_all(dir_, ec);
  }

  void StartAgent() {
    const int err = ::open((dir_ / "agent.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    testing_mqtt::SpawnOptions o;
    o.stderr_fd = err;
    o.extra_env = {"NOTIFY_SOCKET=" + listener_->address(),
                   "WATCHDOG_USEC=" + std::to_string(kWatchdog.count() * 1000)};
    pid_ = testing_mqtt::Spawn({kAgent, "--config", (dir_ / "agent.toml").string()}, o);
    ::close(err);
    ASSERT_GT(pid_, 0);
  }
  std::string Log() const { return testing_mqtt::ReadFile(dir_ / "agent.log"); }

  // The WATCHDOG=1 arrival times among the datagrams of the next `d`.
  std::vector<std::chrono::steady_clock::time_point> Pings(Millis d) {
    std::vector<std::chrono::steady_clock::time_point> at;
    for (const NotifyMessage& m : listener_->Collect(d))
      if (m.Get("WATCHDOG") == "1") at.push_back(m.received);
    return at;
  }

  MosquittoBroker broker_;
  std::unique_ptr<NotifyListener> listener_;
  std::filesystem::path dir_;
  pid_t pid_ = -1;
};

TEST_F(AgentNotify, ReadyWatchdogReloadAndStopping) {
  StartAgent();
  auto ready = listener_->WaitFor("READY", Millis(30000));
  ASSERT_TRUE(ready.has_value()) << Log();
  EXPECT_EQ(ready->Get("READY"), "1");
  EXPECT_EQ(ready->sender_pid, pid_);  // what NotifyAccess=main checks
  EXPECT_NE(ready->Get("STATUS").find("source up, sink up"), std::string::npos)
      << ready->Get("STATUS");

  // Pings at no more than half the interval (1 s), with 400 ms for a loaded machine.
  const auto pings = Pings(Millis(3500));
  ASSERT_GE(pings.size(), 3u) << Log();
  for (size_t i = 1; i < pings.size(); ++i)
    EXPECT_LE(pings[i] - pings[i - 1], kWatchdog / 2 + Millis(400)) << "gap before ping " << i;

  ::kill(pid_, SIGHUP);
  auto reloading = listener_->WaitFor("RELOADING", Millis(10000));
  ASSERT_TRUE(reloading.has_value()) << Log();
  EXPECT_FALSE(reloading->Get("MONOTONIC_USEC").empty());
  EXPECT_TRUE(listener_->WaitFor("READY", Millis(10000)).has_value()) << Log();

  ::kill(pid_, SIGTERM);
  auto stopping = listener_->WaitFor("STOPPING", Millis(10000));
  ASSERT_TRUE(stopping.has_value()) << Log();
  EXPECT_EQ(testing_mqtt::WaitExit(pid_, Millis(30000)), 0) << Log();
  pid_ = -1;
}

TEST_F(AgentNotify, PingsStopWhileTheWorkersAreStalledAndResumeAfter) {
  StartAgent();
  ASSERT_TRUE(listener_->WaitFor("READY", Millis(30000)).has_value()) << Log();
  ASSERT_GE(Pings(Millis(1500)).size(), 1u) << Log();

  const std::vector<pid_t> workers = ThreadsNamed(pid_, "ei-worker");
  ASSERT_FALSE(workers.empty()) << "no ei-worker thread in the agent";
  ThreadFreezer freezer;
  for (pid_t tid : workers) ASSERT_TRUE(freezer.Freeze(tid)) << "ptrace " << tid << ": " << errno;
  // Inputs arrive and wait: the queue stops moving. The agent's stall limit is max(5 s, half
  // the watchdog interval): after it, no ping.
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(broker_.Publish("sensors/m1/vibration", InputMessage()));
  (void)Pings(Millis(5000 + 1500));
  EXPECT_TRUE(Pings(Millis(2500)).empty()) << "pings went on with every worker stopped";

  freezer.ThawAll();
  EXPECT_FALSE(Pings(Millis(3000)).empty()) << "pings did not resume\n" << Log();
  EXPECT_NE(Log().find("worker made no progress"), std::string::npos) << Log();
}

}  // namespace
}  // namespace edgeinfer::agent
