// The agent as a systemd service (Type=notify): READY=1 once the models are loaded and both
// links are up (or, when a broker is unreachable at start, after a grace period: results are
// stored meanwhile and the agent is doing its job), STATUS= a one-line summary, RELOADING=1 /
// READY=1 around SIGHUP, STOPPING=1 at shutdown, and WATCHDOG=1 only while the agent makes
// progress: the main loop beats at least every second and no pipeline worker has been busy on
// one batch for longer than the stall limit. Without NOTIFY_SOCKET every call is a cheap no-op.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "common/status.h"
#include "systemd/notifier.h"
#include "systemd/watchdog_pinger.h"

namespace edgeinfer::agent {

class SystemdService {
 public:
  using Clock = std::chrono::steady_clock;
  // Seconds the slowest busy worker has made no progress, over every pipeline (0 when idle).
  // Called from the pinger's thread: must be thread-safe.
  using StuckSeconds = std::function<double()>;

  explicit SystemdService(StuckSeconds stuck);
  ~SystemdService();

  // Call from the main loop at least once a second: the loop's own liveness.
  void Beat() { beat_ns_.store(Now(), std::memory_order_relaxed); }
  // READY=1 the first time `links_up` is true or `ready_grace` has passed since Start();
  // starts the watchdog pinger then (systemd arms the watchdog at READY).
  void MaybeReady(bool links_up, const std::string& status);
  void SetStatus(const std::string& line);
  void Reloading();
  void Reloaded(const std::string& status);
  void Stopping(const std::string& status);

  bool ready() const { return ready_; }
  const systemd::WatchdogPinger* pinger() const { return pinger_.get(); }

  // How long a worker may sit on one batch, and the main loop may go without a beat, before
  // the pings stop: half the watchdog interval (at least 5 s), so systemd restarts a hung
  // agent within WatchdogSec= of the stall becoming apparent.
  std::chrono::duration<double> stall_limit() const { return stall_limit_; }

 private:
  static int64_t Now();
  Status Liveness() const;

  systemd::Notifier notifier_;
  StuckSeconds stuck_;
  std::unique_ptr<systemd::WatchdogPinger> pinger_;
  std::atomic<int64_t> beat_ns_;
  Clock::time_point created_ = Clock::now();
  std::chrono::duration<double> stall_limit_{5.0};
  bool ready_ = false;
};

}  // namespace edgeinfer::agent
