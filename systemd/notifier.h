// The service's side of systemd's notify protocol (sd_notify(3)), through libsystemd.
//
// Every call is a no-op that returns OK when the process was not started with NOTIFY_SOCKET
// (a test, a shell, a container without systemd); the check is one cached bool, so callers need
// not guard. Thread-safe: sd_notify opens its own socket per call and the object is immutable.
//
// Typical life of the agent:
//   Notifier n;
//   ... load models, connect links ...
//   n.Ready("running 2 pipelines");           // READY=1 + STATUS=
//   n.SetStatus("2 pipelines, 140 msg/s");    // any time
//   on SIGHUP: n.Reloading(); reload; n.Ready("reloaded");
//   on SIGTERM: n.Stopping();
//   WatchdogPinger (watchdog_pinger.h) sends WATCHDOG=1 while the pipelines make progress.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace edgeinfer::systemd {

class Notifier {
 public:
  // Reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID once, now.
  Notifier();

  // True when NOTIFY_SOCKET was set: systemd (or a test's listener) is listening.
  bool enabled() const { return enabled_; }
  // The watchdog interval systemd expects pings within (WatchdogSec=), when the watchdog is on
  // for this process (sd_watchdog_enabled: WATCHDOG_USEC set and WATCHDOG_PID unset or ours).
  std::optional<std::chrono::microseconds> watchdog_interval() const { return watchdog_; }

  // READY=1, with STATUS=`status` when not empty. Sent once start-up is done and after a reload.
  Status Ready(std::string_view status = {}) const;
  // STATUS=`line`: a one-line summary shown by `systemctl status`. Newlines become spaces, so a
  // line can never add assignments of its own.
  Status SetStatus(std::string_view line) const;
  // RELOADING=1 and MONOTONIC_USEC=<CLOCK_MONOTONIC now, in µs> (what Type=notify-reload in
  // systemd 253+ requires; older systemd ignores the extra field). Send READY=1 when done.
  Status Reloading(std::string_view status = {}) const;
  // STOPPING=1: shutdown has begun.
  Status Stopping(std::string_view status = {}) const;
  // WATCHDOG=1: one keep-alive ping.
  Status Watchdog() const;
  // EXTEND_TIMEOUT_USEC=`extra`: asks for more time in a slow start, reload or stop (e.g. a long
  // model conversion) without raising TimeoutStartSec= for every start.
  Status ExtendTimeout(std::chrono::microseconds extra) const;

  // Sends `assignments` ("KEY=value" lines) as they are. OK when disabled; IOError when the
  // socket is set but the datagram could not be sent.
  Status Send(const std::string& assignments) const;

 private:
  bool enabled_ = false;
  std::optional<std::chrono::microseconds> watchdog_;
};

// STATUS=<line with '\n' and '\r' replaced by spaces>; exposed for tests.
std::string StatusAssignment(std::string_view line);

}  // namespace edgeinfer::systemd
