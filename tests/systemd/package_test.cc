// The Debian package: cpack builds it from this build directory's CPackConfig.cmake (into a
// temporary directory) and it holds the binaries, the unit and the configuration as a conffile.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace edgeinfer::systemd {
namespace {

namespace fs = std::filesystem;

const fs::path kBinary(EDGEINFER_BINARY_DIR);
const fs::path kSource(EDGEINFER_SOURCE_DIR);

struct Output {
  int exit_code = -1;
  std::string text;
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

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class PackageTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // cpack installs what is built; it does not build (see cmake/Packaging.cmake).
    for (const char* target :
         {"agent/edgeinfer-agent", "agent/edgeinfer-simulate", "inference/edgeinfer"}) {
      if (!fs::exists(kBinary / target)) {
        missing_ += std::string(" ") + target;
      }
    }
    if (!missing_.empty()) return;
    std::string tmpl = ::testing::TempDir() + "/package_XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) return;
    dir_ = new fs::path(tmpl);
    cpack_ =
        new Output(RunCommand("cd " + dir_->string() + " && cpack -G DEB --config " +
                              (kBinary / "CPackConfig.cmake").string() + " -B " + dir_->string()));
    for (const auto& entry : fs::directory_iterator(*dir_)) {
      if (entry.path().extension() == ".deb") deb_ = new fs::path(entry.path());
    }
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    if (dir_ != nullptr) fs::remove_all(*dir_, ec);
    delete dir_;
    delete deb_;
    delete cpack_;
    dir_ = deb_ = nullptr;
    cpack_ = nullptr;
  }
  void SetUp() override {
    ASSERT_TRUE(missing_.empty()) << "build the packaged targets first (scripts/package.sh does):"
                                  << missing_ << " missing under " << kBinary;
    ASSERT_NE(cpack_, nullptr) << "no temporary directory";
    ASSERT_EQ(cpack_->exit_code, 0) << cpack_->text;
    ASSERT_NE(deb_, nullptr) << "cpack made no .deb:\n" << cpack_->text;
  }

  static inline std::string missing_;
  static inline fs::path* dir_ = nullptr;
  static inline fs::path* deb_ = nullptr;
  static inline Output* cpack_ = nullptr;
};

TEST_F(PackageTest, HoldsTheBinariesTheUnitAndTheConfig) {
  Output list = RunCommand("dpkg-deb -c " + deb_->string());
  ASSERT_EQ(list.exit_code, 0) << list.text;
  for (const char* path :
       {"./usr/bin/edgeinfer-agent", "./usr/bin/edgeinfer-simulate", "./usr/bin/edgeinfer",
        "./lib/systemd/system/edgeinfer-agent.service", "./etc/edgeinfer/edgeinfer-agent.toml"}) {
    EXPECT_NE(list.text.find(std::string(path) + "\n"), std::string::npos)
        << path << " missing from:\n"
        << list.text;
  }
  // Nothing from a developer's /usr/local prefix.
  EXPECT_EQ(list.text.find("/usr/local"), std::string::npos) << list.text;
}

TEST_F(PackageTest, ControlFields) {
  Output info = RunCommand("dpkg-deb -f " + deb_->string() + " Package Version Depends Maintainer");
  ASSERT_EQ(info.exit_code, 0) << info.text;
  EXPECT_NE(info.text.find("Package: edgeinfer\n"), std::string::npos) << info.text;
  EXPECT_NE(info.text.find("Version: 0."), std::string::npos) << info.text;
  // From dpkg-shlibdeps: the C library and the MQTT client library at least, and systemd.
  EXPECT_NE(info.text.find("libc6"), std::string::npos) << info.text;
  EXPECT_NE(info.text.find("libpaho-mqtt"), std::string::npos) << info.text;
  EXPECT_NE(info.text.find("systemd"), std::string::npos) << info.text;
}

TEST_F(PackageTest, ConfigIsAConffileAndTheExample) {
  fs::path control = *dir_ / "control";
  fs::path root = *dir_ / "root";
  ASSERT_EQ(RunCommand("dpkg-deb -e " + deb_->string() + " " + control.string()).exit_code, 0);
  ASSERT_EQ(RunCommand("dpkg-deb -x " + deb_->string() + " " + root.string()).exit_code, 0);
  EXPECT_EQ(ReadFile(control / "conffiles"), "/etc/edgeinfer/edgeinfer-agent.toml\n");
  for (const char* script : {"postinst", "prerm", "postrm"}) {
    fs::perms p = fs::status(control / script).permissions();
    EXPECT_NE(p & fs::perms::owner_exec, fs::perms::none) << script << " not executable";
  }
  EXPECT_EQ(ReadFile(root / "etc/edgeinfer/edgeinfer-agent.toml"),
            ReadFile(kSource / "agent/edgeinfer-agent.example.toml"));
  EXPECT_EQ(ReadFile(root / "lib/systemd/system/edgeinfer-agent.service"),
            ReadFile(kSource / "systemd/edgeinfer-agent.service"));
  fs::perms exe = fs::status(root / "usr/bin/edgeinfer-agent").permissions();
  EXPECT_NE(exe & fs::perms::others_exec, fs::perms::none);
}

}  // namespace
}  // namespace edgeinfer::systemd
