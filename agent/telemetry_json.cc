#include "agent/telemetry_json.h"

#include <cctype>
#include <cstdio>
#include <map>
#include <vector>

namespace edgeinfer::agent {

using Json = nlohmann::json;

Json PipelineJson(const PipelineStats& s) {
  Json rejected = Json::object();
  for (int r = 0; r < static_cast<int>(RejectReason::kCount); ++r)
    rejected[RejectReasonName(static_cast<RejectReason>(r))] = s.rejected[r];
  const double utilization = s.batches && s.max_batch ? s.mean_batch_size / s.max_batch : 0.0;
  return {{"messages_in", s.messages_in},
          {"windows", s.windows},
          {"inferences", s.inferences},
          {"batches", s.batches},
          {"mean_batch_size", s.mean_batch_size},
          {"batch_utilization", utilization},
          {"max_batch", s.max_batch},
          {"max_batch_ceiling", s.max_batch_ceiling},
          {"planned_max_batch", s.planned_max_batch},
          {"arena_bytes", s.arena_bytes},
          {"results_published", s.results_published},
          {"queue_depth", s.queue_depth},
          {"dropped", s.rejected[static_cast<int>(RejectReason::kQueueOverflow)]},
          {"streams", s.streams},
          {"rejected", rejected}};
}

Json LinkJson(const LinkStats& s) {
  return {{"connected", s.connected},   {"connects", s.connects},
          {"reconnects", s.reconnects}, {"messages_in", s.messages_in},
          {"published", s.published},   {"publish_failures", s.publish_failures}};
}

Json OutboxJson(const OutboxStats& o, uint64_t delivered) {
  return {{"depth_rows", o.depth_rows},
          {"depth_bytes", o.depth_bytes},
          {"in_flight_rows", o.in_flight_rows},
          {"dropped_rows", o.dropped_rows},
          {"dropped_bytes", o.dropped_bytes},
          {"memory_rows", o.memory_rows},
          {"degraded", o.degraded},
          {"corruption_events", o.corruption_events},
          {"last_error", o.last_error},
          {"delivered", delivered}};
}

namespace {

struct Sample {
  std::string labels;  // {k="v"} or empty
  double value;
};

std::string MetricName(std::string name) {
  for (char& c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') c = '_';
  return name;
}

std::string LabelValue(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

void Flatten(const Json& j, const std::string& name, const std::string& labels,
             std::map<std::string, std::vector<Sample>>* out) {
  if (j.is_number() || j.is_boolean()) {
    (*out)[MetricName(name)].push_back(
        {labels, j.is_boolean() ? (j.get<bool>() ? 1.0 : 0.0) : j.get<double>()});
    return;
  }
  if (!j.is_object()) return;
  for (const auto& [key, value] : j.items()) {
    if (name == "edgeinfer_pipelines" || name == "edgeinfer_links") {
      const std::string label = name == "edgeinfer_pipelines" ? "pipeline" : "link";
      const std::string singular =
          name == "edgeinfer_pipelines" ? "edgeinfer_pipeline" : "edgeinfer_link";
      Flatten(value, singular, "{" + label + "=\"" + LabelValue(key) + "\"}", out);
    } else {
      Flatten(value, name + "_" + key, labels, out);
    }
  }
}

}  // namespace

std::string PrometheusText(const Json& report) {
  std::map<std::string, std::vector<Sample>> samples;
  Flatten(report, "edgeinfer", "", &samples);
  std::string text;
  char number[32];
  for (const auto& [name, list] : samples) {
    text += "# TYPE " + name + " gauge\n";
    for (const Sample& s : list) {
      std::snprintf(number, sizeof(number), "%.17g", s.value);
      text += name + s.labels + " " + number + "\n";
    }
  }
  return text;
}

}  // namespace edgeinfer::agent
