// Sends systemd's WATCHDOG=1 from a thread, but only while the caller says the service is alive.
//
// systemd kills and restarts a service whose pings stop for WatchdogSec=. A thread that pinged
// unconditionally would keep a hung agent alive, so every period the pinger first asks the
// caller's liveness check (the agent: "every pipeline worker made progress"); while it returns an
// error the pings stop and the reason is logged once. When the check passes again the pings
// resume (a stall shorter than WatchdogSec= is not a hang) and that is logged once too.
//
//   WatchdogPinger pinger(notifier, {.liveness = [&] { return pipelines.CheckProgress(); }});
//   EI_RETURN_IF_ERROR(pinger.Start());   // no thread when systemd expects no pings
//   ...
//   pinger.Stop();                        // prompt: wakes the thread and joins it
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>

#include "common/status.h"
#include "systemd/journal_log.h"
#include "systemd/notifier.h"

namespace edgeinfer::systemd {

class WatchdogPinger {
 public:
  // OK: alive, ping. An error: do not ping; its message says why (e.g. "pipeline 'vib': worker
  // made no progress for 41 s"). Called from the pinger's thread once per period: must be
  // thread-safe and quick.
  using Liveness = std::function<Status()>;

  struct Options {
    // Time between checks (and pings). Zero: half of notifier.watchdog_interval(), as
    // sd_watchdog_enabled(3) advises.
    std::chrono::microseconds period{0};
    Liveness liveness;
    JournalLogger* logger = nullptr;  // nullptr: DefaultLogger()
  };

  // `notifier` must outlive the pinger.
  WatchdogPinger(const Notifier& notifier, Options options);
  ~WatchdogPinger();  // Stop()
  WatchdogPinger(const WatchdogPinger&) = delete;
  WatchdogPinger& operator=(const WatchdogPinger&) = delete;

  // Starts the thread; the first check and ping happen at once. InvalidArgument without a
  // liveness check. OK without a thread (running() false) when no period is set and systemd
  // expects no pings. Calling Start() while running is an error.
  Status Start();
  // Wakes the thread and joins it; returns within one liveness call. Idempotent.
  void Stop();

  bool running() const { return thread_.joinable(); }
  // The period in use (zero when there is nothing to do).
  std::chrono::microseconds period() const { return period_; }
  // WATCHDOG=1 datagrams sent (or, without NOTIFY_SOCKET, that would have been sent).
  uint64_t pings() const { return pings_.load(std::memory_order_relaxed); }
  // Periods in which the liveness check failed and no ping was sent.
  uint64_t withheld() const { return withheld_.load(std::memory_order_relaxed); }
  // Pings that sd_notify failed to send.
  uint64_t send_errors() const { return send_errors_.load(std::memory_order_relaxed); }
  // True while the last check failed.
  bool stalled() const { return stalled_.load(std::memory_order_relaxed); }

 private:
  void Run();
  void Tick();

  const Notifier& notifier_;
  Liveness liveness_;
  JournalLogger* logger_;
  std::chrono::microseconds period_{0};

  std::mutex mu_;
  std::condition_variable wake_;
  bool stop_ = false;  // guarded by mu_
  std::thread thread_;

  std::atomic<uint64_t> pings_{0};
  std::atomic<uint64_t> withheld_{0};
  std::atomic<uint64_t> send_errors_{0};
  std::atomic<bool> stalled_{false};
  bool send_failing_ = false;  // pinger thread only
};

}  // namespace edgeinfer::systemd
