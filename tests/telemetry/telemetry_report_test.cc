#include "telemetry/telemetry_report.h"

#include <gtest/gtest.h>

namespace edgeinfer {
namespace {

TEST(MetricsByLabelTest, GroupsPerPipelineAndNestsOtherLabels) {
  MetricRegistry r;
  r.AddCounter("messages_total", "in", {{"pipeline", "vib"}}).Add(10);
  r.AddCounter("messages_total", "in", {{"pipeline", "temp"}}).Add(4);
  r.AddCounter("rejected_total", "bad", {{"pipeline", "vib"}, {"reason", "nan"}}).Add(2);
  r.AddCounter("rejected_total", "bad", {{"pipeline", "vib"}, {"reason", "shape"}}).Add(1);
  r.AddGauge("queue_depth", "depth").Set(3);
  r.AddGauge("queue_depth", "depth", {{"stage", "ingress"}}).Set(5);
  Histogram& h = r.AddHistogram("latency_ms", "lat", {{"pipeline", "vib"}});
  h.Record(1000);
  auto before = r.Collect();
  h.Record(2);
  auto now = r.Collect();

  nlohmann::json by = MetricsByLabel(now, &before, "pipeline");
  EXPECT_EQ(by["vib"]["messages_total"], 10);
  EXPECT_EQ(by["temp"]["messages_total"], 4);
  EXPECT_EQ(by["vib"]["rejected_total"]["nan"], 2);
  EXPECT_EQ(by["vib"]["rejected_total"]["shape"], 1);
  EXPECT_EQ(by["vib"]["latency_ms"]["count"], 1);  // the interval only
  EXPECT_FALSE(by.contains("queue_depth"));

  nlohmann::json rest = MetricsWithoutLabel(now, &before, "pipeline");
  EXPECT_EQ(rest["queue_depth"][""], 3);  // with and without labels: both kept
  EXPECT_EQ(rest["queue_depth"]["ingress"], 5);
  EXPECT_FALSE(rest.contains("messages_total"));
  EXPECT_EQ(MetricsByLabel(now, nullptr, "pipeline")["vib"]["latency_ms"]["count"], 2);
}

TEST(TelemetryReporterTest, BuildsEverySection) {
  MetricRegistry registry;
  Counter& in = registry.AddCounter("messages_total", "in", {{"pipeline", "vib"}});
  Histogram& lat = registry.AddHistogram("latency_ms", "lat", {{"pipeline", "vib"}});
  ScriptedMemorySource memory;
  memory.Set(MakeCgroupReading(300, 1000));
  struct NoActions : MemoryActions {
    void OnLevel(MemoryLevel, MemoryLevel, const MemoryReading&) override {}
  } actions;
  MemoryWatchdog watchdog(memory, actions);
  TelemetryReporter reporter(&registry, &memory, &watchdog);

  in.Add(5);
  lat.Record(4);
  ReportHeader header{"0.1.0", "boot-1", "dev-7", 12.5, 10};
  nlohmann::json first = reporter.Build(header, {{"arena_bytes", 4096}});
  EXPECT_EQ(first["version"], "0.1.0");
  EXPECT_EQ(first["boot_id"], "boot-1");
  EXPECT_EQ(first["device"], "dev-7");
  EXPECT_EQ(first["arena_bytes"], 4096);
  EXPECT_GT(first["process"]["rss_bytes"].get<int64_t>(), 0);
  EXPECT_TRUE(first["process"].contains("cpu_percent"));
  EXPECT_NEAR(first["memory"]["fraction"].get<double>(), 0.3, 1e-9);
  EXPECT_EQ(first["watchdog"]["level"], "normal");
  EXPECT_EQ(first["pipelines"]["vib"]["messages_total"], 5);
  EXPECT_EQ(first["pipelines"]["vib"]["latency_ms"]["count"], 1);
  EXPECT_GT(reporter.last_cost_us(), 0.0);

  lat.Record(8);
  lat.Record(8);
  nlohmann::json second = reporter.Build(header);
  EXPECT_EQ(second["pipelines"]["vib"]["latency_ms"]["count"], 2);  // last interval only
  EXPECT_GT(second["report_cpu_us"].get<double>(), 0.0);            // the first report's cost
  std::cout << "one report: " << reporter.last_cost_us() << " us CPU, " << second.dump().size()
            << " bytes\n";
}

TEST(TelemetryReporterTest, NullSectionsAreLeftOut) {
  TelemetryReporter reporter(nullptr, nullptr, nullptr);
  nlohmann::json r = reporter.Build({});
  EXPECT_FALSE(r.contains("memory"));
  EXPECT_FALSE(r.contains("watchdog"));
  EXPECT_FALSE(r.contains("pipelines"));
  EXPECT_TRUE(r.contains("process"));
}

TEST(TelemetryReporterTest, InvalidUtf8LabelSerializesWithReplace) {
  MetricRegistry registry;
  registry.AddCounter("messages_total", "in", {{"pipeline", "bad\xff"}}).Add(1);
  TelemetryReporter reporter(&registry, nullptr, nullptr);
  nlohmann::json r = reporter.Build({});
  std::string text = r.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  EXPECT_NE(text.find("messages_total"), std::string::npos);
}

}  // namespace
}  // namespace edgeinfer
