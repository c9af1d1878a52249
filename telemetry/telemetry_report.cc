#include "telemetry/telemetry_report.h"

#include <time.h>

namespace edgeinfer {
namespace {

double ThreadCpuUs() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec * 1e-3;
}

const MetricSample* FindPrevious(const std::vector<MetricSample>* previous, const MetricSample& s) {
  if (previous == nullptr) return nullptr;
  for (const MetricSample& p : *previous) {
    if (p.type == s.type && p.name == s.name && p.labels == s.labels) return &p;
  }
  return nullptr;
}

nlohmann::json ValueOf(const MetricSample& s, const std::vector<MetricSample>* previous) {
  if (s.type != MetricType::kHistogram) return s.value;
  const MetricSample* p = FindPrevious(previous, s);
  return p ? s.histogram.Since(p->histogram).ToJson() : s.histogram.ToJson();
}

// Puts the sample under out[name], nested by the values of the labels other than `skip`.
void Place(nlohmann::json& out, const MetricSample& s, const std::vector<MetricSample>* previous,
           const std::string& skip) {
  std::string key;
  for (const auto& [k, v] : s.labels) {
    if (k == skip) continue;
    if (!key.empty()) key += ',';
    key += v;
  }
  // A name seen both with and without other labels keeps the unlabelled value under "".
  nlohmann::json& slot = out[s.name];
  if (key.empty() && !slot.is_object()) {
    slot = ValueOf(s, previous);
    return;
  }
  if (!slot.is_null() && !slot.is_object()) slot = nlohmann::json{{"", slot}};
  slot[key] = ValueOf(s, previous);
}

const std::string* LabelValue(const MetricSample& s, const std::string& label) {
  for (const auto& [k, v] : s.labels) {
    if (k == label) return &v;
  }
  return nullptr;
}

}  // namespace

nlohmann::json MetricsByLabel(const std::vector<MetricSample>& samples,
                              const std::vector<MetricSample>* previous, const std::string& label) {
  nlohmann::json out = nlohmann::json::object();
  for (const MetricSample& s : samples) {
    if (const std::string* v = LabelValue(s, label)) Place(out[*v], s, previous, label);
  }
  return out;
}

nlohmann::json MetricsWithoutLabel(const std::vector<MetricSample>& samples,
                                   const std::vector<MetricSample>* previous,
                                   const std::string& label) {
  nlohmann::json out = nlohmann::json::object();
  for (const MetricSample& s : samples) {
    if (LabelValue(s, label) == nullptr) Place(out, s, previous, label);
  }
  return out;
}

TelemetryReporter::TelemetryReporter(const MetricRegistry* registry, MemorySource* memory,
                                     const MemoryWatchdog* watchdog)
    : registry_(registry), memory_(memory), watchdog_(watchdog) {}

nlohmann::json TelemetryReporter::Build(const ReportHeader& header, const nlohmann::json& extra) {
  const double start_us = ThreadCpuUs();
  nlohmann::json r = {{"version", header.version},       {"boot_id", header.boot_id},
                      {"device", header.device},         {"uptime_s", header.uptime_s},
                      {"interval_s", header.interval_s}, {"report_cpu_us", last_cost_us_}};
  if (Result<ProcessStats> p = ReadProcessStats(); p.ok()) {
    nlohmann::json process = p->ToJson();
    process["cpu_percent"] = cpu_.Update(*p);
    r["process"] = std::move(process);
  }
  if (memory_ != nullptr) r["memory"] = memory_->Read().ToJson();
  if (watchdog_ != nullptr) r["watchdog"] = watchdog_->Stats().ToJson();
  if (registry_ != nullptr) {
    std::vector<MetricSample> now = registry_->Collect();
    const std::vector<MetricSample>* before = has_previous_ ? &previous_ : nullptr;
    r["pipelines"] = MetricsByLabel(now, before, "pipeline");
    r["metrics"] = MetricsWithoutLabel(now, before, "pipeline");
    previous_ = std::move(now);
    has_previous_ = true;
  }
  if (extra.is_object()) r.update(extra);
  last_cost_us_ = ThreadCpuUs() - start_us;
  return r;
}

}  // namespace edgeinfer
