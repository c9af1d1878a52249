// Test utility: the edgeinfer-agent binary as a child process, for the agent's end-to-end tests,
// and what those tests share (a fixture that starts a broker, sensor input messages).
//
// Each test writes its own config text; AgentProcess owns the temp dir that holds it, the state
// dir and agent.log (the agent's stderr), and starts, signals, stops and kills the agent. Every
// wait is bounded; a crashed test leaves no agent behind (Spawn sets PR_SET_PDEATHSIG). Not
// thread-safe: use one AgentProcess from the test's thread.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "tests/agent/mosquitto_fixture.h"

namespace edgeinfer::testing_agent {

using testing_mqtt::Millis;

// EDGEINFER_BINARY_DIR and EDGEINFER_SOURCE_DIR come from tests/CMakeLists.txt.
inline constexpr char kAgent[] = EDGEINFER_BINARY_DIR "/agent/edgeinfer-agent";
inline constexpr char kModel[] = EDGEINFER_SOURCE_DIR "/examples/vibration.onnx";

class AgentProcess {
 public:
  // Makes the temp dir /tmp/edgeinfer-TAG-XXXXXX (dir() stays empty when that fails, and then
  // Start() fails too).
  explicit AgentProcess(const std::string& tag)
      : dir_(testing_mqtt::MakeTempDir(tag)), state_dir_(dir_ / "state") {}
  // SIGKILLs an agent still running. The dir goes unless the test has failed: its log and config
  // are kept to look at.
  ~AgentProcess() {
    Kill();
    if (dir_.empty()) return;
    std::error_code ec;
    ::chmod(state_dir_.c_str(), 0700);  // a test may have made it unwritable
    if (!::testing::Test::HasFailure()) std::filesystem::remove_all(dir_, ec);
  }
  AgentProcess(const AgentProcess&) = delete;
  AgentProcess& operator=(const AgentProcess&) = delete;

  const std::filesystem::path& dir() const { return dir_; }
  // Where the test's config should put state_dir: dir()/state unless set_state_dir moved it.
  const std::filesystem::path& state_dir() const { return state_dir_; }
  void set_state_dir(const std::filesystem::path& dir) { state_dir_ = dir; }

  std::string config_path() const { return (dir_ / "agent.toml").string(); }
  const std::string& config() const { return config_; }
  // Replaces the config file (also while the agent runs: SIGHUP makes it read it again).
  void WriteConfig(const std::string& text) {
    config_ = text;
    if (!dir_.empty()) testing_mqtt::WriteFile(config_path(), config_);
  }

  // The command line that runs the agent on config_path().
  std::vector<std::string> Command() const { return {kAgent, "--config", config_path()}; }
  // Spawns Command() with its stderr appended to agent.log and `extra_env` ("NAME=value") added
  // to the environment; false when it could not.
  bool Start(const std::vector<std::string>& extra_env = {}) {
    return StartCommand(Command(), extra_env);
  }
  // The same for a command of the test's making, e.g. Command() wrapped to run in a cgroup.
  bool StartCommand(const std::vector<std::string>& argv,
                    const std::vector<std::string>& extra_env = {}) {
    if (dir_.empty()) return false;
    const std::string log_path = (dir_ / "agent.log").string();
    const int err = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    testing_mqtt::SpawnOptions o;
    o.stderr_fd = err;
    o.extra_env = extra_env;
    pid_ = testing_mqtt::Spawn(argv, o);
    ::close(err);
    wait_status_ = -1;
    return pid_ > 0;
  }

  void Signal(int sig) const {
    if (pid_ > 0) ::kill(pid_, sig);
  }
  // Waits for the agent to exit, SIGKILLs it at the deadline; returns the exit status, or 128 +
  // the signal number (see WaitExit), or -1 when it was not running.
  int Wait(Millis timeout) {
    if (pid_ <= 0) return -1;
    const int rc = testing_mqtt::WaitExit(pid_, timeout);
    pid_ = -1;
    return rc;
  }
  // Sends `sig` (0: none, just wait) and waits for the exit as Wait does.
  int Stop(int sig = SIGTERM, Millis timeout = Millis(30000)) {
    Signal(sig);
    return Wait(timeout);
  }
  void Kill() { Stop(SIGKILL, Millis(5000)); }

  // Does not block. The first call that finds the agent exited reaps it: pid() becomes -1 and
  // wait_status() holds waitpid's status.
  bool running() {
    if (pid_ > 0 && ::waitpid(pid_, &wait_status_, WNOHANG) == pid_) pid_ = -1;
    return pid_ > 0;
  }
  // waitpid's status from the exit running() saw; -1 when it has seen none since Start.
  int wait_status() const { return wait_status_; }
  pid_t pid() const { return pid_; }
  std::string log() const { return testing_mqtt::ReadFile(dir_ / "agent.log"); }

  // VmRSS from /proc/PID/status, in bytes; -1 if unreadable.
  int64_t RssBytes() const {
    const std::string status = testing_mqtt::ReadFile("/proc/" + std::to_string(pid_) + "/status");
    const size_t at = status.find("VmRSS:");
    return at == std::string::npos ? -1 : std::stoll(status.substr(at + 6)) * 1024;
  }

 private:
  std::filesystem::path dir_;
  std::filesystem::path state_dir_;
  std::string config_;
  pid_t pid_ = -1;
  int wait_status_ = -1;
};

// The fixture of the end-to-end tests: SetUp skips the test where Mosquitto is not installed,
// fails it where edgeinfer-agent is not built, and starts broker_. A fixture that extends SetUp
// calls this one first and returns when IsSkipped() or HasFatalFailure().
class AgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing_mqtt::MosquittoBroker::Available()) {
      GTEST_SKIP() << "/usr/sbin/mosquitto is not installed";
    }
    ASSERT_TRUE(testing_mqtt::HaveProgram(kAgent)) << kAgent << ": build edgeinfer-agent first";
    ASSERT_TRUE(broker_.Start()) << broker_.error();
  }

  testing_mqtt::MosquittoBroker broker_;
};

// One vibration model input (3 x 256 values in the model's layout, for input.window = 0) as one
// JSON message. The values vary with `i` so that nothing is suspiciously uniform; with `ts` the
// message also carries "ts": i (for timestamp = "/ts").
inline std::string InputMessage(int64_t i, bool ts = false) {
  std::string s = ts ? "{\"ts\":" + std::to_string(i) + ",\"values\":[" : "{\"values\":[";
  char buf[24];
  for (int k = 0; k < 3 * 256; ++k) {
    std::snprintf(buf, sizeof(buf), "%s%.3f", k ? "," : "", 0.01 * ((i * 7 + k) % 200) - 1.0);
    s += buf;
  }
  return s + "]}";
}

}  // namespace edgeinfer::testing_agent
