#include "systemd/notifier.h"

#include <systemd/sd-daemon.h>
#include <time.h>

#include <cstdlib>

namespace edgeinfer::systemd {
namespace {

uint64_t MonotonicUsec() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000u + static_cast<uint64_t>(ts.tv_nsec) / 1000u;
}

// `base` followed by a STATUS= line when `status` is not empty.
std::string WithStatus(std::string base, std::string_view status) {
  if (!status.empty()) base += "\n" + StatusAssignment(status);
  return base;
}

}  // namespace

std::string StatusAssignment(std::string_view line) {
  std::string out = "STATUS=";
  out.append(line);
  for (size_t i = 7; i < out.size(); ++i) {
    if (out[i] == '\n' || out[i] == '\r') out[i] = ' ';
  }
  return out;
}

Notifier::Notifier() {
  const char* socket = std::getenv("NOTIFY_SOCKET");
  enabled_ = socket != nullptr && socket[0] != '\0';
  uint64_t usec = 0;
  if (sd_watchdog_enabled(/*unset_environment=*/0, &usec) > 0 && usec > 0) {
    watchdog_ = std::chrono::microseconds(usec);
  }
}

Status Notifier::Send(const std::string& assignments) const {
  if (!enabled_) return Status::Ok();
  int r = sd_notify(/*unset_environment=*/0, assignments.c_str());
  if (r < 0) return Status::IOError("sd_notify to NOTIFY_SOCKET", -r);
  return Status::Ok();
}

Status Notifier::Ready(std::string_view status) const {
  if (!enabled_) return Status::Ok();
  return Send(WithStatus("READY=1", status));
}

Status Notifier::SetStatus(std::string_view line) const {
  if (!enabled_) return Status::Ok();
  return Send(StatusAssignment(line));
}

Status Notifier::Reloading(std::string_view status) const {
  if (!enabled_) return Status::Ok();
  return Send(WithStatus("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(MonotonicUsec()), status));
}

Status Notifier::Stopping(std::string_view status) const {
  if (!enabled_) return Status::Ok();
  return Send(WithStatus("STOPPING=1", status));
}

Status Notifier::Watchdog() const {
  if (!enabled_) return Status::Ok();
  static const std::string kPing = "WATCHDOG=1";
  return Send(kPing);
}

Status Notifier::ExtendTimeout(std::chrono::microseconds extra) const {
  if (!enabled_) return Status::Ok();
  return Send("EXTEND_TIMEOUT_USEC=" + std::to_string(extra.count()));
}

}  // namespace edgeinfer::systemd
