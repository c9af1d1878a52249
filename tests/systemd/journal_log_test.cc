#include "systemd/journal_log.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/systemd/notify_listener.h"

namespace edgeinfer::systemd {
namespace {

using testing::ScopedEnv;

// "DEV:INO" of what `fd` is open on, as systemd puts it in JOURNAL_STREAM.
std::string StreamId(int fd) {
  struct stat st {};
  EXPECT_EQ(fstat(fd, &st), 0);
  return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
}

// A pipe whose read end the test drains after logging.
struct Pipe {
  Pipe() { EXPECT_EQ(::pipe2(fd, O_CLOEXEC | O_NONBLOCK), 0); }
  ~Pipe() {
    if (fd[0] >= 0) ::close(fd[0]);
    if (fd[1] >= 0) ::close(fd[1]);
  }
  std::string Read() {
    std::string out;
    char buf[4096];
    ssize_t n = 0;
    while ((n = ::read(fd[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
    return out;
  }
  int fd[2] = {-1, -1};
};

JournalLogger::Options To(int fd) {
  JournalLogger::Options o;
  o.fd = fd;
  return o;
}

TEST(PriorityTest, ParsesNamesAndAliases) {
  EXPECT_EQ(*ParsePriority("error"), Priority::kError);
  EXPECT_EQ(*ParsePriority("err"), Priority::kError);
  EXPECT_EQ(*ParsePriority("warning"), Priority::kWarning);
  EXPECT_EQ(*ParsePriority("WARN"), Priority::kWarning);
  EXPECT_EQ(*ParsePriority("info"), Priority::kInfo);
  EXPECT_EQ(*ParsePriority("Debug"), Priority::kDebug);
  EXPECT_EQ(*ParsePriority("notice"), Priority::kNotice);
  EXPECT_EQ(*ParsePriority("crit"), Priority::kCritical);
  Result<Priority> bad = ParsePriority("loud");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("'loud'"), std::string::npos);
  EXPECT_FALSE(ParsePriority("").ok());
  EXPECT_STREQ(PriorityName(Priority::kWarning), "warning");
  EXPECT_STREQ(PriorityName(Priority::kError), "error");
}

TEST(IsJournalStreamTest, MatchesOnlyTheRightFile) {
  Pipe a, b;
  EXPECT_TRUE(IsJournalStream(StreamId(a.fd[1]).c_str(), a.fd[1]));
  EXPECT_FALSE(IsJournalStream(StreamId(b.fd[1]).c_str(), a.fd[1]));
  EXPECT_FALSE(IsJournalStream(nullptr, a.fd[1]));
  EXPECT_FALSE(IsJournalStream("", a.fd[1]));
  EXPECT_FALSE(IsJournalStream("12", a.fd[1]));
  EXPECT_FALSE(IsJournalStream("x:y", a.fd[1]));
  EXPECT_FALSE(IsJournalStream((StreamId(a.fd[1]) + "9").c_str(), a.fd[1]));
  EXPECT_FALSE(IsJournalStream(StreamId(a.fd[1]).c_str(), -1));
}

TEST(JournalLoggerTest, JournalPrefixWhenTheStreamMatches) {
  Pipe p;
  ScopedEnv env("JOURNAL_STREAM", StreamId(p.fd[1]));
  JournalLogger log(To(p.fd[1]));
  ASSERT_TRUE(log.journal());
  log.Log(Priority::kError, "outbox: disk full");
  log.Log("warning", "rejected: bad payload");
  log.Log("info", "running");
  log.Log(Priority::kNotice, "notice");
  EXPECT_EQ(p.Read(), "<3>outbox: disk full\n<4>rejected: bad payload\n<6>running\n<5>notice\n");
  EXPECT_EQ(log.count(Priority::kError), 1u);
  EXPECT_EQ(log.count(Priority::kWarning), 1u);
}

TEST(JournalLoggerTest, ReadablePrefixWhenTheStreamDiffers) {
  Pipe p, other;
  ScopedEnv env("JOURNAL_STREAM", StreamId(other.fd[1]));
  JournalLogger log(To(p.fd[1]));
  ASSERT_FALSE(log.journal());
  log.Log("warning", "rejected: bad payload");
  std::string out = p.Read();
  std::regex line(
      R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z edgeinfer-agent: warning: rejected: bad payload\n)");
  EXPECT_TRUE(std::regex_match(out, line)) << out;
}

TEST(JournalLoggerTest, ReadablePrefixWithoutJournalStream) {
  Pipe p;
  ScopedEnv env("JOURNAL_STREAM", std::nullopt);
  JournalLogger::Options o = To(p.fd[1]);
  o.ident = "edgeinfer-simulate";
  JournalLogger log(o);
  EXPECT_FALSE(log.journal());
  log.Log(Priority::kError, "x");
  EXPECT_NE(p.Read().find(" edgeinfer-simulate: error: x\n"), std::string::npos);
}

TEST(JournalLoggerTest, OneMessageIsOneLine) {
  Pipe p;
  JournalLogger::Options o = To(p.fd[1]);
  o.format = JournalLogger::Format::kJournal;
  JournalLogger log(o);
  log.Log(Priority::kWarning, "rejected: {\"a\":\n1}\r\n<3>forged line\x1b[31m\ttab\x7f");
  EXPECT_EQ(p.Read(), "<4>rejected: {\"a\":\\n1}\\r\\n<3>forged line\\x1b[31m\ttab\\x7f\n");
  // UTF-8 passes through untouched.
  log.Log(Priority::kInfo, "température 21 °C");
  EXPECT_EQ(p.Read(), "<6>température 21 °C\n");
}

TEST(JournalLoggerTest, LongMessagesAreCut) {
  Pipe p;
  JournalLogger::Options o = To(p.fd[1]);
  o.format = JournalLogger::Format::kJournal;
  o.max_message_bytes = 10;
  JournalLogger log(o);
  log.Log(Priority::kInfo, std::string(25, 'a'));
  EXPECT_EQ(p.Read(), "<6>aaaaaaaaaa... (15 more bytes cut)\n");
}

TEST(JournalLoggerTest, MinimumPriority) {
  Pipe p;
  JournalLogger::Options o = To(p.fd[1]);
  o.format = JournalLogger::Format::kJournal;
  o.min_priority = Priority::kWarning;
  JournalLogger log(o);
  log.Log("debug", "d");
  log.Log("info", "i");
  log.Log("warning", "w");
  log.Log("error", "e");
  EXPECT_EQ(p.Read(), "<4>w\n<3>e\n");
  EXPECT_EQ(log.count(Priority::kInfo), 0u);
  log.set_min_priority(Priority::kDebug);
  EXPECT_TRUE(log.enabled(Priority::kDebug));
  log.Log("debug", "d");
  EXPECT_EQ(p.Read(), "<7>d\n");
}

TEST(JournalLoggerTest, UnknownLevelIsKeptAsWarning) {
  Pipe p;
  JournalLogger::Options o = To(p.fd[1]);
  o.format = JournalLogger::Format::kJournal;
  JournalLogger log(o);
  log.Log("loud", "hello");
  EXPECT_EQ(p.Read(), "<4>loud: hello\n");
}

TEST(JournalLoggerTest, FailedWritesAreCounted) {
  Pipe p;
  ::close(p.fd[0]);
  p.fd[0] = -1;
  JournalLogger::Options o = To(p.fd[1]);
  JournalLogger log(o);
  // Writing to a pipe without a reader raises SIGPIPE; a service under systemd ignores it
  // (IgnoreSIGPIPE=yes), and so does this test.
  struct sigaction ignore {
  }, old{};
  ignore.sa_handler = SIG_IGN;
  ::sigaction(SIGPIPE, &ignore, &old);
  log.Log(Priority::kError, "lost");
  ::sigaction(SIGPIPE, &old, nullptr);
  EXPECT_EQ(log.write_errors(), 1u);
  EXPECT_EQ(log.count(Priority::kError), 0u);
}

TEST(JournalLoggerTest, ThreadsNeverInterleave) {
  // A file, not a pipe: the writers must not block on a full pipe while nobody reads.
  std::string path = ::testing::TempDir() + "/journal_log_threads_" + std::to_string(::getpid());
  int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0);
  JournalLogger::Options o = To(fd);
  o.format = JournalLogger::Format::kReadable;
  JournalLogger log(o);
  constexpr int kThreads = 4, kLines = 2000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&log, t] {
      std::string body(200 + 100 * t, static_cast<char>('a' + t));
      for (int i = 0; i < kLines; ++i) log.Log(Priority::kInfo, body + "\n" + std::to_string(i));
    });
  }
  for (std::thread& th : threads) th.join();
  ::close(fd);
  std::ifstream in(path);
  std::string line;
  int lines = 0;
  while (std::getline(in, line)) {
    ++lines;
    // "TIME edgeinfer-agent: info: " + one thread's letter repeated + "\n" + a number.
    size_t body = line.find(" edgeinfer-agent: info: ");
    ASSERT_NE(body, std::string::npos) << "line " << lines << ": " << line.substr(0, 80);
    body += 24;
    size_t escape = line.find("\\n", body);
    ASSERT_NE(escape, std::string::npos) << "line " << lines;
    char letter = line[body];
    ASSERT_TRUE(letter >= 'a' && letter < 'a' + kThreads) << "line " << lines;
    EXPECT_EQ(escape - body, static_cast<size_t>(200 + 100 * (letter - 'a'))) << "line " << lines;
    EXPECT_EQ(line.find_first_not_of(letter, body), escape) << "line " << lines;
    EXPECT_EQ(line.find_first_not_of("0123456789", escape + 2), std::string::npos)
        << "line " << lines;
  }
  EXPECT_EQ(lines, kThreads * kLines);
  EXPECT_EQ(log.count(Priority::kInfo), static_cast<uint64_t>(kThreads * kLines));
  ::unlink(path.c_str());
}

// A logger with the default options (the real fd 2, format decided from JOURNAL_STREAM), made in
// a child whose stderr is a pipe: with JOURNAL_STREAM naming that pipe the child's lines carry the
// journal prefix, without it not. (DefaultLogger() is made once per process, maybe already by an
// earlier test, so the child makes its own with the same defaults.)
std::string RunChildLogging(bool journal_stream) {
  Pipe p;
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(p.fd[1], 2);
    if (journal_stream) {
      ::setenv("JOURNAL_STREAM", StreamId(2).c_str(), 1);
    } else {
      ::unsetenv("JOURNAL_STREAM");
    }
    JournalLogger logger;
    logger.Log("warning", "from the child\nsecond line");
    logger.Log(Priority::kDebug, "dropped at the default minimum");
    ::_exit(0);
  }
  EXPECT_GT(pid, 0);
  int status = 0;
  EXPECT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  return p.Read();
}

TEST(DefaultLoggerTest, IsOneObject) { EXPECT_EQ(&DefaultLogger(), &DefaultLogger()); }

TEST(DefaultLoggerTest, StderrToJournal) {
  EXPECT_EQ(RunChildLogging(true), "<4>from the child\\nsecond line\n");
}

TEST(DefaultLoggerTest, StderrToTerminalOrFile) {
  std::string out = RunChildLogging(false);
  EXPECT_NE(out.find(" edgeinfer-agent: warning: from the child\\nsecond line\n"),
            std::string::npos)
      << out;
  EXPECT_EQ(out.find("dropped"), std::string::npos);
}

}  // namespace
}  // namespace edgeinfer::systemd

namespace edgeinfer::systemd {
namespace {

// Not a speed assertion: prints the cost of a line in each format, and of a dropped one, side by
// side in one run (to /dev/null, so the write is a real syscall but no I/O).
TEST(JournalLoggerCost, PerLineFigures) {
  int fd = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  constexpr int kLines = 200000;
  const std::string message = "rejected: payload is not JSON: {\"ts\":1,\"values\":[1,2,3";
  double ns[3] = {};
  for (int mode = 0; mode < 3; ++mode) {
    JournalLogger::Options o = To(fd);
    o.format = mode == 0 ? JournalLogger::Format::kJournal : JournalLogger::Format::kReadable;
    JournalLogger log(o);
    Priority p = mode == 2 ? Priority::kDebug : Priority::kWarning;  // debug: below the minimum
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < kLines; ++i) log.Log(p, message);
    ns[mode] = static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                       std::chrono::steady_clock::now() - start)
                                       .count()) /
               kLines;
    EXPECT_EQ(log.count(p), mode == 2 ? 0u : static_cast<uint64_t>(kLines));
  }
  ::close(fd);
  std::printf("JournalLogger ns/line: journal %.0f, readable %.0f, dropped (debug) %.1f\n", ns[0],
              ns[1], ns[2]);
}

}  // namespace
}  // namespace edgeinfer::systemd
