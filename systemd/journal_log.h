// A small logger for a service whose stderr may be the systemd journal.
//
// Each message becomes exactly one line, written with one write(2) under a mutex, so lines from
// different threads never interleave. When the output fd is the journal (systemd sets
// JOURNAL_STREAM="DEV:INO" and fstat of the fd matches), each line starts with the sd-daemon
// priority prefix ("<4>message") and journald supplies the time and the unit's name; otherwise the
// line reads "2026-11-25T04:16:23.123Z edgeinfer-agent: warning: message".
//
// Newlines and other control characters inside a message are escaped ("\n", "\x1b"), so one
// message is one journal entry and a hostile payload quoted in a message cannot forge lines.
// Messages longer than Options::max_message_bytes are cut, and the cut is said.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>

#include "common/status.h"

namespace edgeinfer::systemd {

// syslog(3) / sd-daemon(3) priorities: smaller is more severe.
enum class Priority : int {
  kEmergency = 0,
  kAlert = 1,
  kCritical = 2,
  kError = 3,
  kWarning = 4,
  kNotice = 5,
  kInfo = 6,
  kDebug = 7,
};

// "error" (also "err"), "warning" ("warn"), "notice", "info", "debug", "critical" ("crit"),
// "alert", "emergency" ("emerg"); case-insensitive. Anything else is InvalidArgument.
Result<Priority> ParsePriority(std::string_view name);
// The canonical lower-case name: "error", "warning", ...
const char* PriorityName(Priority priority);

// True when `journal_stream` (JOURNAL_STREAM's value, "DEV:INO" in decimal) names the file that
// `fd` is open on. False for a null or malformed value or a failing fstat.
bool IsJournalStream(const char* journal_stream, int fd);

class JournalLogger {
 public:
  enum class Format {
    kAuto,      // kJournal if fd is the stream in JOURNAL_STREAM, else kReadable
    kJournal,   // "<6>message"
    kReadable,  // "TIMESTAMP ident: level: message"
  };
  struct Options {
    int fd = 2;                               // not owned; stays open
    std::string ident = "edgeinfer-agent";    // readable format only
    Priority min_priority = Priority::kInfo;  // less severe messages are dropped
    Format format = Format::kAuto;
    size_t max_message_bytes = 16 * 1024;  // journald splits lines over LineMax (48K)
  };

  JournalLogger();  // default Options
  // Decides the format now (reads JOURNAL_STREAM for kAuto).
  explicit JournalLogger(Options options);
  JournalLogger(const JournalLogger&) = delete;
  JournalLogger& operator=(const JournalLogger&) = delete;

  // Writes one line unless `priority` is less severe than the minimum. Thread-safe. Never fails
  // loudly: a failed write is counted in write_errors() and the message is lost.
  void Log(Priority priority, std::string_view message);
  // As above with a priority name ("warning"); an unknown name logs at kWarning, with the name
  // kept in front of the message, so a typo in a caller never hides a message.
  void Log(std::string_view level, std::string_view message);

  // Thread-safe; takes effect for the next message.
  void set_min_priority(Priority priority);
  Priority min_priority() const;
  bool enabled(Priority priority) const;

  // Whether lines carry the journal prefix (decided at construction).
  bool journal() const { return journal_; }
  // Lines written at `priority` (those below the minimum or failed excluded), for telemetry.
  uint64_t count(Priority priority) const;
  uint64_t write_errors() const { return write_errors_.load(std::memory_order_relaxed); }

 private:
  void AppendPrefix(Priority priority, std::string_view unknown_level, std::string& line) const;
  void Write(Priority priority, std::string_view unknown_level, std::string_view message);
  bool WriteLine(const std::string& line);

  Options options_;
  bool journal_ = false;
  std::atomic<int> min_priority_;
  std::array<std::atomic<uint64_t>, 8> counts_{};
  std::atomic<uint64_t> write_errors_{0};
  std::mutex write_mu_;  // one writer at a time, so a partial write is finished before the next
};

// The process-wide logger on stderr, made on first use (with the environment at that moment).
JournalLogger& DefaultLogger();
// Shorthands for DefaultLogger().Log(...).
void Log(Priority priority, std::string_view message);
void Log(std::string_view level, std::string_view message);

// Appends `message` to `out` with '\n' -> "\n", '\r' -> "\r", '\t' kept, other bytes below 0x20
// and 0x7f -> "\xNN". Bytes >= 0x80 (UTF-8) pass through. Exposed for tests.
void AppendEscaped(std::string_view message, std::string& out);

}  // namespace edgeinfer::systemd
