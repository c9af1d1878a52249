// The agent's sections of the telemetry report ({prefix}/{device}/telemetry) and the same
// figures as Prometheus text exposition (the optional loopback endpoint).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "agent/mqtt_link.h"
#include "agent/pipeline.h"
#include "storage/outbox.h"

namespace edgeinfer::agent {

nlohmann::json PipelineJson(const PipelineStats& s);
nlohmann::json LinkJson(const LinkStats& s);
nlohmann::json OutboxJson(const OutboxStats& s, uint64_t delivered);

// Every number (and boolean, as 0/1) of a telemetry report as one sample, named by its path:
//   report["pipelines"]["vib"]["queue_depth"] -> edgeinfer_pipeline_queue_depth{pipeline="vib"}
//   report["links"]["sink"]["reconnects"]     -> edgeinfer_link_reconnects{link="sink"}
//   report["memory"]["usage_bytes"]           -> edgeinfer_memory_usage_bytes
// The keys below "pipelines" and "links" become labels; other nested keys join the name with
// '_' (a histogram's p99 -> ..._latency_ms_p99). Strings are left out. One "# TYPE x gauge"
// line per name, as the text format wants.
std::string PrometheusText(const nlohmann::json& report);

}  // namespace edgeinfer::agent
