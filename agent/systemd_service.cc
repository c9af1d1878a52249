#include "agent/systemd_service.h"

#include <algorithm>
#include <cstdio>

#include "agent/log.h"

namespace edgeinfer::agent {
namespace {

// A broker unreachable at start does not hold READY back longer than this: the agent runs
// (results go to the outbox) and systemd should not time the start out and restart it.
constexpr auto kReadyGrace = std::chrono::seconds(10);

void Warn(const Status& st, const char* what) {
  if (!st.ok()) Log("warning", std::string("sd_notify ") + what + ": " + st.ToString());
}

}  // namespace

SystemdService::SystemdService(StuckSeconds stuck) : stuck_(std::move(stuck)), beat_ns_(Now()) {
  if (auto interval = notifier_.watchdog_interval())
    stall_limit_ =
        std::max(std::chrono::duration<double>(5.0), std::chrono::duration<double>(*interval) / 2);
}

SystemdService::~SystemdService() {
  if (pinger_) pinger_->Stop();
}

int64_t SystemdService::Now() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

Status SystemdService::Liveness() const {
  const double since_beat = (Now() - beat_ns_.load(std::memory_order_relaxed)) * 1e-9;
  if (since_beat > stall_limit_.count())
    return Status::Internal("main loop made no progress for " + std::to_string(since_beat) + " s");
  const double stuck = stuck_ ? stuck_() : 0.0;
  if (stuck > stall_limit_.count())
    return Status::Internal("a pipeline worker made no progress for " + std::to_string(stuck) +
                            " s");
  return Status::Ok();
}

void SystemdService::MaybeReady(bool links_up, const std::string& status) {
  if (ready_ || (!links_up && Clock::now() - created_ < kReadyGrace)) return;
  ready_ = true;
  Warn(notifier_.Ready(status), "READY");
  if (!links_up) Log("warning", "ready without every link connected: " + status);
  pinger_ = std::make_unique<systemd::WatchdogPinger>(
      notifier_, systemd::WatchdogPinger::Options{.liveness = [this] { return Liveness(); }});
  Warn(pinger_->Start(), "watchdog");
}

void SystemdService::SetStatus(const std::string& line) {
  Warn(notifier_.SetStatus(line), "STATUS");
}

void SystemdService::Reloading() {
  if (ready_) Warn(notifier_.Reloading("reloading"), "RELOADING");
}

void SystemdService::Reloaded(const std::string& status) {
  if (ready_) Warn(notifier_.Ready(status), "READY");
}

void SystemdService::Stopping(const std::string& status) {
  Warn(notifier_.Stopping(status), "STOPPING");
}

}  // namespace edgeinfer::agent
