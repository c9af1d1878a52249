#include "systemd/journal_log.h"

#include <errno.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cctype>
#include <charconv>
#include <cstdio>
#include <cstdlib>

namespace edgeinfer::systemd {
namespace {

struct NamedPriority {
  const char* name;
  Priority priority;
};

// Canonical names first (PriorityName reads the first match), then the aliases.
constexpr NamedPriority kNames[] = {
    {"emergency", Priority::kEmergency}, {"alert", Priority::kAlert},
    {"critical", Priority::kCritical},   {"error", Priority::kError},
    {"warning", Priority::kWarning},     {"notice", Priority::kNotice},
    {"info", Priority::kInfo},           {"debug", Priority::kDebug},
    {"emerg", Priority::kEmergency},     {"crit", Priority::kCritical},
    {"err", Priority::kError},           {"warn", Priority::kWarning},
};

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != b[i]) return false;
  }
  return true;
}

template <class T>
bool ParseDecimal(std::string_view text, T& value) {
  if (text.empty()) return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  return ec == std::errc() && end == text.data() + text.size();
}

int Index(Priority p) { return static_cast<int>(p) & 7; }

// "2026-11-25T04:16:23.123Z": UTC, so lines from devices in different zones compare directly.
void AppendTimestamp(std::string& out) {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  tm t{};
  gmtime_r(&ts.tv_sec, &t);
  char buf[40];
  int n = std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", t.tm_year + 1900,
                        t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec,
                        static_cast<int>(ts.tv_nsec / 1000000));
  if (n > 0) out.append(buf, static_cast<size_t>(n));
}

}  // namespace

Result<Priority> ParsePriority(std::string_view name) {
  for (const NamedPriority& n : kNames) {
    if (EqualsIgnoreCase(name, n.name)) return n.priority;
  }
  return Status::InvalidArgument("log level '" + std::string(name) +
                                 "': expected error, warning, notice, info or debug");
}

const char* PriorityName(Priority priority) {
  for (const NamedPriority& n : kNames) {
    if (n.priority == priority) return n.name;
  }
  return "unknown";
}

bool IsJournalStream(const char* journal_stream, int fd) {
  if (journal_stream == nullptr) return false;
  std::string_view text(journal_stream);
  size_t colon = text.find(':');
  if (colon == std::string_view::npos) return false;
  unsigned long long dev = 0, ino = 0;
  if (!ParseDecimal(text.substr(0, colon), dev) || !ParseDecimal(text.substr(colon + 1), ino)) {
    return false;
  }
  struct stat st {};
  if (fstat(fd, &st) != 0) return false;
  return static_cast<unsigned long long>(st.st_dev) == dev &&
         static_cast<unsigned long long>(st.st_ino) == ino;
}

void AppendEscaped(std::string_view message, std::string& out) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (char c : message) {
    auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u != 0x7f) {
      out.push_back(c);
    } else if (c == '\n') {
      out.append("\\n");
    } else if (c == '\r') {
      out.append("\\r");
    } else if (c == '\t') {
      out.push_back(c);
    } else {
      out.append("\\x");
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 15]);
    }
  }
}

JournalLogger::JournalLogger() : JournalLogger(Options()) {}

JournalLogger::JournalLogger(Options options)
    : options_(std::move(options)), min_priority_(static_cast<int>(options_.min_priority)) {
  switch (options_.format) {
    case Format::kAuto:
      journal_ = IsJournalStream(std::getenv("JOURNAL_STREAM"), options_.fd);
      break;
    case Format::kJournal:
      journal_ = true;
      break;
    case Format::kReadable:
      journal_ = false;
      break;
  }
}

void JournalLogger::set_min_priority(Priority priority) {
  min_priority_.store(static_cast<int>(priority), std::memory_order_relaxed);
}

Priority JournalLogger::min_priority() const {
  return static_cast<Priority>(min_priority_.load(std::memory_order_relaxed));
}

bool JournalLogger::enabled(Priority priority) const {
  return static_cast<int>(priority) <= min_priority_.load(std::memory_order_relaxed);
}

uint64_t JournalLogger::count(Priority priority) const {
  return counts_[Index(priority)].load(std::memory_order_relaxed);
}

void JournalLogger::Log(std::string_view level, std::string_view message) {
  Result<Priority> parsed = ParsePriority(level);
  if (parsed.ok()) {
    Write(*parsed, std::string_view(), message);
  } else {
    Write(Priority::kWarning, level, message);
  }
}

void JournalLogger::Log(Priority priority, std::string_view message) {
  Write(priority, std::string_view(), message);
}

void JournalLogger::Write(Priority priority, std::string_view unknown_level,
                          std::string_view message) {
  if (!enabled(priority)) return;
  // One buffer per thread, reused: logging allocates only while a thread's longest line grows.
  thread_local std::string line;
  line.clear();
  AppendPrefix(priority, unknown_level, line);
  size_t limit = options_.max_message_bytes;
  if (message.size() > limit) {
    AppendEscaped(message.substr(0, limit), line);
    line.append("... (" + std::to_string(message.size() - limit) + " more bytes cut)");
  } else {
    AppendEscaped(message, line);
  }
  line.push_back('\n');
  if (WriteLine(line)) counts_[Index(priority)].fetch_add(1, std::memory_order_relaxed);
}

void JournalLogger::AppendPrefix(Priority priority, std::string_view unknown_level,
                                 std::string& line) const {
  if (journal_) {
    line.push_back('<');
    line.push_back(static_cast<char>('0' + Index(priority)));
    line.push_back('>');
  } else {
    AppendTimestamp(line);
    line.push_back(' ');
    line.append(options_.ident);
    line.append(": ");
    line.append(PriorityName(priority));
    line.append(": ");
  }
  if (!unknown_level.empty()) {
    AppendEscaped(unknown_level, line);
    line.append(": ");
  }
}

bool JournalLogger::WriteLine(const std::string& line) {
  std::lock_guard<std::mutex> lock(write_mu_);
  const char* p = line.data();
  size_t left = line.size();
  while (left > 0) {
    ssize_t n = ::write(options_.fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      write_errors_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  return true;
}

JournalLogger& DefaultLogger() {
  // Never destroyed: threads may still log while static destructors run at exit.
  static JournalLogger* logger = new JournalLogger();
  return *logger;
}

void Log(Priority priority, std::string_view message) { DefaultLogger().Log(priority, message); }

void Log(std::string_view level, std::string_view message) { DefaultLogger().Log(level, message); }

}  // namespace edgeinfer::systemd
