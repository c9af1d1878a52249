// The shipped unit, checked by systemd's own tools: `systemd-analyze verify` and the exposure score
// of `systemd-analyze security --offline=true` (systemd is not PID 1 here, so offline is the way).
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

namespace edgeinfer::systemd {
namespace {

namespace fs = std::filesystem;

const fs::path kUnit = fs::path(EDGEINFER_SOURCE_DIR) / "systemd" / "edgeinfer-agent.service";

struct Output {
  int exit_code = -1;
  std::string text;  // stdout and stderr
};

Output RunCommand(const std::string& command) {
  Output out;
  FILE* p = ::popen((command + " 2>&1").c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.text.append(buf, n);
  int status = ::pclose(p);
  out.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

bool HaveSystemdAnalyze() { return RunCommand("command -v systemd-analyze").exit_code == 0; }

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The unit copied into a fresh directory, with ExecStart pointing at a binary that exists here
// (verify checks that the executable exists): the built agent if there is one, else /bin/true.
class UnitFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!HaveSystemdAnalyze()) {
      GTEST_SKIP() << "systemd-analyze is not installed (scripts/setup.sh installs systemd)";
    }
    std::string tmpl = ::testing::TempDir() + "/unit_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    std::string text = ReadFile(kUnit);
    ASSERT_FALSE(text.empty()) << "cannot read " << kUnit;
    fs::path agent = fs::path(EDGEINFER_BINARY_DIR) / "agent" / "edgeinfer-agent";
    std::string exe = fs::exists(agent) ? agent.string() : "/bin/true";
    const std::string from = "ExecStart=/usr/bin/edgeinfer-agent ";
    size_t at = text.find(from);
    ASSERT_NE(at, std::string::npos) << "the unit has no 'ExecStart=/usr/bin/edgeinfer-agent'";
    text.replace(at, from.size(), "ExecStart=" + exe + " ");
    unit_ = dir_ / "edgeinfer-agent.service";
    std::ofstream(unit_) << text;
  }
  void TearDown() override {
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }

  fs::path dir_;
  fs::path unit_;
};

TEST_F(UnitFileTest, VerifyAcceptsTheUnit) {
  Output out = RunCommand("systemd-analyze verify " + unit_.string());
  EXPECT_EQ(out.exit_code, 0) << out.text;
  // verify also reports unknown keys or bad values, but only as warnings with exit code 0; any
  // line about our unit counts. (Lines about other units on the machine are not ours to judge.)
  std::istringstream lines(out.text);
  std::string line;
  for (int i = 0; i < 10000 && std::getline(lines, line); ++i) {
    EXPECT_EQ(line.find("edgeinfer-agent.service"), std::string::npos) << line;
  }
}

TEST_F(UnitFileTest, VerifyCatchesABrokenCopy) {
  // The check above can fail: a misspelt key in the same unit is reported.
  std::ofstream(unit_, std::ios::app) << "[Service]\nWatchdogSecs=30s\n";
  Output out = RunCommand("systemd-analyze verify " + unit_.string());
  EXPECT_NE(out.text.find("WatchdogSecs"), std::string::npos) << out.text;
}

TEST_F(UnitFileTest, ExposureScoreAtMost2) {
  Output out = RunCommand("systemd-analyze security --offline=true --no-pager " + unit_.string());
  ASSERT_EQ(out.exit_code, 0) << out.text;
  std::smatch m;
  std::regex overall(R"(Overall exposure level for edgeinfer-agent\.service: (\d+\.\d+))");
  ASSERT_TRUE(std::regex_search(out.text, m, overall)) << out.text;
  double score = std::stod(m[1]);
  std::printf("systemd-analyze security --offline=true: exposure %.1f\n", score);
  EXPECT_LE(score, 2.0) << out.text;
}

TEST_F(UnitFileTest, HasTheSettingsTheAgentRelyOn) {
  std::string text = ReadFile(unit_);
  for (const char* line :
       {"Type=notify\n", "NotifyAccess=main\n", "WatchdogSec=", "Restart=on-failure\n",
        "ExecReload=/bin/kill -HUP $MAINPID\n", "StateDirectory=edgeinfer\n",
        "ConfigurationDirectory=edgeinfer\n", "ProtectSystem=strict\n",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6\n", "SystemCallFilter=@system-service\n",
        "MemoryHigh=", "MemoryMax=", "--config /etc/edgeinfer/edgeinfer-agent.toml"}) {
    EXPECT_NE(text.find(line), std::string::npos) << "missing: " << line;
  }
  // The agent reads /proc/meminfo and /proc/pressure/memory: ProcSubset=pid would hide them.
  EXPECT_EQ(text.find("\nProcSubset=pid"), std::string::npos);
}

}  // namespace
}  // namespace edgeinfer::systemd
