#include "telemetry/memory_watchdog.h"

#include <malloc.h>

#include <chrono>
#include <cstdio>

namespace edgeinfer {
namespace {

int64_t SteadyMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string Format(const char* fmt, double a, double b) {
  char buf[96];
  std::snprintf(buf, sizeof buf, fmt, a, b);
  return buf;
}

std::string MiB(int64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  return buf;
}

MemoryLevel OneDown(MemoryLevel level) {
  return level == MemoryLevel::kCritical ? MemoryLevel::kStepDown : MemoryLevel::kNormal;
}

}  // namespace

const char* MemoryLevelName(MemoryLevel level) {
  switch (level) {
    case MemoryLevel::kNormal:
      return "normal";
    case MemoryLevel::kStepDown:
      return "step_down";
    case MemoryLevel::kCritical:
      return "critical";
  }
  return "normal";
}

Status ValidateWatchdogOptions(const MemoryWatchdogOptions& o) {
  if (!(o.recover > 0 && o.recover < o.step_down)) {
    return Status::InvalidArgument("memory watchdog: need 0 < recover < step_down");
  }
  if (!(o.step_down <= o.critical && o.critical <= 1.0)) {
    return Status::InvalidArgument("memory watchdog: need step_down <= critical <= 1");
  }
  if (o.recover_hold_ms < 0) {
    return Status::InvalidArgument("memory watchdog: recover_hold_ms must be >= 0");
  }
  if (!(o.psi_full_step_down >= 0 && o.psi_full_step_down <= 100)) {
    return Status::InvalidArgument("memory watchdog: psi_full_step_down must be in [0, 100]");
  }
  if (o.period_ms <= 0) return Status::InvalidArgument("memory watchdog: period_ms must be > 0");
  return Status::Ok();
}

std::string DescribeTransition(const MemoryTransition& t) {
  const MemoryReading& r = t.reading;
  std::string line = std::string("memory: ") + MemoryLevelName(t.from) + " -> " +
                     MemoryLevelName(t.to) + " (" + t.reason + "); usage " + MiB(r.usage_bytes) +
                     " of " + MiB(r.limit_bytes) + " (" + LimitSourceName(r.limit_source) + ")";
  if (r.mem_available) line += ", MemAvailable " + MiB(*r.mem_available);
  if (r.psi_full_avg10)
    line += Format(", PSI some %.2f full %.2f", r.psi_some_avg10.value_or(0), *r.psi_full_avg10);
  return line;
}

// --- MemoryLevelMachine -----------------------------------------------------------------------

std::optional<MemoryTransition> MemoryLevelMachine::Evaluate(const MemoryReading& reading,
                                                             int64_t now_ms) {
  if (!reading.fraction) {
    below_recover_since_ms_.reset();
    return std::nullopt;
  }
  const double f = *reading.fraction;
  const double psi = reading.psi_full_avg10.value_or(0.0);
  const bool psi_on = options_.psi_full_step_down > 0;
  auto change = [&](MemoryLevel to, std::string reason) {
    MemoryTransition t{level_, to, std::move(reason), reading};
    level_ = to;
    return t;
  };

  if (f >= options_.critical && level_ != MemoryLevel::kCritical) {
    below_recover_since_ms_.reset();
    return change(MemoryLevel::kCritical,
                  Format("fraction %.3f >= critical %.3f", f, options_.critical));
  }
  if (level_ == MemoryLevel::kNormal) {
    if (f >= options_.step_down) {
      return change(MemoryLevel::kStepDown,
                    Format("fraction %.3f >= step_down %.3f", f, options_.step_down));
    }
    if (psi_on && psi >= options_.psi_full_step_down) {
      return change(MemoryLevel::kStepDown,
                    Format("PSI full avg10 %.2f >= %.2f", psi, options_.psi_full_step_down));
    }
    return std::nullopt;
  }
  // kStepDown or kCritical: come back one level per calm hold.
  const bool calm = f < options_.recover && !(psi_on && psi >= options_.psi_full_step_down / 2);
  if (!calm) {
    below_recover_since_ms_.reset();
    return std::nullopt;
  }
  if (!below_recover_since_ms_) below_recover_since_ms_ = now_ms;
  const int64_t held = now_ms - *below_recover_since_ms_;
  if (held < options_.recover_hold_ms) return std::nullopt;
  below_recover_since_ms_ = now_ms;  // the next step needs a full hold of its own
  return change(OneDown(level_), Format("fraction %.3f < recover %.3f", f, options_.recover) +
                                     " for " + std::to_string(held) + " ms");
}

// --- MemoryWatchdogStats ----------------------------------------------------------------------

nlohmann::json MemoryWatchdogStats::ToJson() const {
  return {{"level", MemoryLevelName(level)},
          {"polls", polls},
          {"polls_without_limit", polls_without_limit},
          {"transitions", transitions},
          {"to_step_down", to_step_down},
          {"to_critical", to_critical},
          {"to_normal", to_normal},
          {"last_reaction_ms", last_reaction_ms},
          {"reaction_ms",
           {{"count", reaction_ms.count},
            {"p50", reaction_ms.Quantile(0.5)},
            {"p99", reaction_ms.Quantile(0.99)},
            {"max", reaction_ms.max}}}};
}

// --- MemoryWatchdog ---------------------------------------------------------------------------

MemoryWatchdog::MemoryWatchdog(MemorySource& source, MemoryActions& actions,
                               MemoryWatchdogOptions options,
                               std::function<void(const MemoryTransition&)> on_transition)
    : source_(source),
      actions_(actions),
      options_(options),
      on_transition_(std::move(on_transition)),
      machine_(options) {
  if (!on_transition_) {
    on_transition_ = [](const MemoryTransition& t) {
      std::fprintf(stderr, "%s\n", DescribeTransition(t).c_str());
    };
  }
}

MemoryWatchdog::~MemoryWatchdog() { Stop(); }

Status MemoryWatchdog::Start() {
  EI_RETURN_IF_ERROR(ValidateWatchdogOptions(options_));
  if (thread_.joinable()) return Status::InvalidArgument("memory watchdog: already started");
  {
    std::lock_guard lock(stop_mu_);
    stopping_ = false;
  }
  thread_ = std::thread([this] { Run(); });
  return Status::Ok();
}

void MemoryWatchdog::Stop() {
  {
    std::lock_guard lock(stop_mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void MemoryWatchdog::Run() {
  std::unique_lock lock(stop_mu_);
  while (!stopping_) {
    lock.unlock();
    PollOnce();
    lock.lock();
    stop_cv_.wait_for(lock, std::chrono::milliseconds(options_.period_ms),
                      [this] { return stopping_; });
  }
}

void MemoryWatchdog::PollOnce(std::optional<int64_t> now_ms) {
  std::lock_guard poll_lock(poll_mu_);
  MemoryReading reading = source_.Read();
  const auto read_at = std::chrono::steady_clock::now();
  std::optional<MemoryTransition> t;
  {
    std::lock_guard lock(mu_);
    ++stats_.polls;
    if (!reading.fraction) ++stats_.polls_without_limit;
    t = machine_.Evaluate(reading, now_ms.value_or(SteadyMs()));
    stats_.last_reading = reading;
  }
  if (!t) return;
  on_transition_(*t);
  actions_.OnLevel(t->from, t->to, t->reading);
  const double reaction_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - read_at).count();
  reaction_.Record(reaction_ms);
  std::lock_guard lock(mu_);
  ++stats_.transitions;
  stats_.level = t->to;
  stats_.last_reaction_ms = reaction_ms;
  switch (t->to) {
    case MemoryLevel::kNormal:
      ++stats_.to_normal;
      break;
    case MemoryLevel::kStepDown:
      ++stats_.to_step_down;
      break;
    case MemoryLevel::kCritical:
      ++stats_.to_critical;
      break;
  }
}

MemoryLevel MemoryWatchdog::level() const {
  std::lock_guard lock(mu_);
  return machine_.level();
}

MemoryWatchdogStats MemoryWatchdog::Stats() const {
  MemoryWatchdogStats s;
  {
    std::lock_guard lock(mu_);
    s = stats_;
    s.level = machine_.level();
  }
  s.reaction_ms = reaction_.Snapshot();
  return s;
}

bool TrimMallocCache() { return malloc_trim(0) != 0; }

}  // namespace edgeinfer
