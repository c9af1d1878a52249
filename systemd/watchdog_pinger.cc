#include "systemd/watchdog_pinger.h"

#include <string>

namespace edgeinfer::systemd {

WatchdogPinger::WatchdogPinger(const Notifier& notifier, Options options)
    : notifier_(notifier),
      liveness_(std::move(options.liveness)),
      logger_(options.logger != nullptr ? options.logger : &DefaultLogger()),
      period_(options.period) {
  if (period_.count() <= 0) {
    period_ = notifier_.watchdog_interval().value_or(std::chrono::microseconds(0)) / 2;
  }
}

WatchdogPinger::~WatchdogPinger() { Stop(); }

Status WatchdogPinger::Start() {
  if (!liveness_) return Status::InvalidArgument("watchdog pinger: no liveness check given");
  if (running()) return Status::Internal("watchdog pinger: already running");
  if (period_.count() <= 0) return Status::Ok();  // systemd expects no pings
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = false;
  }
  thread_ = std::thread([this] { Run(); });
  return Status::Ok();
}

void WatchdogPinger::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void WatchdogPinger::Run() {
  using Clock = std::chrono::steady_clock;
  auto next = Clock::now();
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    lock.unlock();
    Tick();
    lock.lock();
    // Deadlines advance by whole periods so a slow check does not stretch the gaps; after a long
    // stall (suspend, a blocked check) the schedule restarts from now instead of bursting.
    next += period_;
    auto now = Clock::now();
    if (next < now) next = now + period_;
    wake_.wait_until(lock, next, [this] { return stop_; });
  }
}

void WatchdogPinger::Tick() {
  Status alive = liveness_();
  if (!alive.ok()) {
    withheld_.fetch_add(1, std::memory_order_relaxed);
    if (!stalled_.exchange(true)) {
      logger_->Log(Priority::kError,
                   "watchdog: not pinging systemd, which restarts the service once WatchdogSec "
                   "passes without a ping: " +
                       alive.message());
    }
    return;
  }
  if (stalled_.exchange(false)) {
    logger_->Log(Priority::kWarning, "watchdog: liveness check passes again; pinging systemd");
  }
  Status sent = notifier_.Watchdog();
  if (sent.ok()) {
    pings_.fetch_add(1, std::memory_order_relaxed);
    send_failing_ = false;
    return;
  }
  send_errors_.fetch_add(1, std::memory_order_relaxed);
  if (!send_failing_) {
    send_failing_ = true;
    logger_->Log(Priority::kError, "watchdog: " + sent.ToString());
  }
}

}  // namespace edgeinfer::systemd
