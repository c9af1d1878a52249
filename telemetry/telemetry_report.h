// The periodic telemetry report ({prefix}/{device}/telemetry): builds its JSON from the pieces of
// telemetry/ (process statistics, the memory reading, the watchdog, the metric registry).
//
// Shape (fields the agent adds itself, such as arena bytes, max batch, links and outbox, go in
// through `extra` or as registry metrics):
//   {"version", "boot_id", "device", "uptime_s", "interval_s",
//    "process": {"cpu_percent", "cpu_user_s", "cpu_system_s", "rss_bytes", "private_bytes"},
//    "memory": MemoryReading::ToJson(), "watchdog": MemoryWatchdogStats::ToJson(),
//    "pipelines": {"<name>": {"<metric>": value | {"<other label values>": value} |
//                             histogram-of-the-interval}},
//    "metrics": {"<metric>": value | {...}}    (metrics without a "pipeline" label)
//    "report_cpu_us": CPU time spent building the previous report (telemetry's own cost)}
// Counters are cumulative since start; histograms show the last interval (since the previous
// Build) with "count", "mean", "p50", "p95", "p99", "min", "max". Label values and paths are
// copied as they are: serialize with dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
// so that a label that is not valid UTF-8 cannot make dump() throw.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "telemetry/memory_probe.h"
#include "telemetry/memory_watchdog.h"
#include "telemetry/metrics.h"
#include "telemetry/process_stats.h"

namespace edgeinfer {

struct ReportHeader {
  std::string version;
  std::string boot_id;
  std::string device;
  double uptime_s = 0;
  double interval_s = 0;
};

// Groups samples by the value of `label`: {"<label value>": {"<name>": ...}}. A sample's other
// labels nest one level further, keyed by their values joined with ','. Histograms show the
// interval since `previous` when it holds them, else the cumulative figures. Samples without
// `label` are left out (see MetricsWithoutLabel).
nlohmann::json MetricsByLabel(const std::vector<MetricSample>& samples,
                              const std::vector<MetricSample>* previous, const std::string& label);
// The samples that lack `label`, as {"<name>": ...} with the same nesting rules.
nlohmann::json MetricsWithoutLabel(const std::vector<MetricSample>& samples,
                                   const std::vector<MetricSample>* previous,
                                   const std::string& label);

// Builds one report per call and remembers what the next needs (the previous histograms, the
// previous CPU reading). The pointers may be null (that section is then omitted); what they point
// to must outlive the reporter. Thread-compatible: call Build from one thread.
class TelemetryReporter {
 public:
  TelemetryReporter(const MetricRegistry* registry, MemorySource* memory,
                    const MemoryWatchdog* watchdog);

  // `extra` is merged into the top level last (the agent's own sections).
  nlohmann::json Build(const ReportHeader& header,
                       const nlohmann::json& extra = nlohmann::json::object());

  // CPU time the last Build took, in microseconds (thread CPU clock).
  double last_cost_us() const { return last_cost_us_; }

 private:
  const MetricRegistry* registry_;
  MemorySource* memory_;
  const MemoryWatchdog* watchdog_;
  CpuMeter cpu_;
  std::vector<MetricSample> previous_;
  bool has_previous_ = false;
  double last_cost_us_ = 0;
};

}  // namespace edgeinfer
