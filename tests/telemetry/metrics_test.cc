#include "telemetry/metrics.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iostream>
#include <random>
#include <sstream>
#include <thread>
#include <vector>

namespace edgeinfer {
namespace {

constexpr double kRelativeError = 1.0 / (2 * Histogram::kSubBuckets);

// Nearest-rank percentile of sorted data, the definition Quantile estimates.
double ExactQuantile(const std::vector<double>& sorted, double q) {
  size_t rank = static_cast<size_t>(std::ceil(q * sorted.size()));
  rank = std::clamp<size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

void ExpectQuantilesClose(const Histogram& h, std::vector<double> values) {
  std::sort(values.begin(), values.end());
  HistogramSnapshot s = h.Snapshot();
  ASSERT_EQ(s.count, values.size());
  for (double q : {0.0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0}) {
    double exact = ExactQuantile(values, q);
    double estimate = s.Quantile(q);
    EXPECT_LE(std::abs(estimate - exact), exact * kRelativeError + 1e-12)
        << "q=" << q << " exact=" << exact << " estimate=" << estimate;
  }
}

TEST(HistogramTest, PercentilesOfLogNormalDataWithinStatedError) {
  Histogram h;
  std::mt19937_64 rng(42);
  std::lognormal_distribution<double> dist(1.0, 1.5);  // spans several decades
  std::vector<double> values;
  for (int i = 0; i < 100000; ++i) {
    double v = dist(rng);
    values.push_back(v);
    h.Record(v);
  }
  ExpectQuantilesClose(h, values);
}

TEST(HistogramTest, PercentilesOfUniformDataWithinStatedError) {
  Histogram h(HistogramOptions{0.01, 1e5});
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> dist(0.5, 2000.0);
  std::vector<double> values;
  for (int i = 0; i < 50000; ++i) {
    double v = dist(rng);
    values.push_back(v);
    h.Record(v);
  }
  ExpectQuantilesClose(h, values);
}

TEST(HistogramTest, EveryBucketBoundHoldsItsValues) {
  Histogram h(HistogramOptions{1.0, 1024.0});
  EXPECT_EQ(h.BucketCount(), 10u * Histogram::kSubBuckets + 2);
  // Lower bounds increase and each is at most 1/kSubBuckets below the next.
  for (size_t i = 1; i + 2 < h.BucketCount(); ++i) {
    double lo = h.BucketLowerBound(i), hi = h.BucketLowerBound(i + 1);
    ASSERT_LT(lo, hi);
    ASSERT_LE((hi - lo) / lo, 1.0 / Histogram::kSubBuckets + 1e-12);
  }
}

TEST(HistogramTest, EmptyUnderflowOverflowAndNaN) {
  Histogram h(HistogramOptions{1.0, 100.0});
  EXPECT_EQ(h.Snapshot().Quantile(0.5), 0.0);
  h.Record(std::nan(""));
  h.Record(-5);
  h.Record(0.25);
  h.Record(1e9);
  HistogramSnapshot s = h.Snapshot();
  EXPECT_EQ(s.count, 3u);
  EXPECT_EQ(s.ignored, 1u);
  EXPECT_EQ(s.min, -5);
  EXPECT_EQ(s.max, 1e9);
  EXPECT_EQ(s.Quantile(0.0), -5);   // underflow reports the smallest value seen
  EXPECT_EQ(s.Quantile(1.0), 1e9);  // overflow reports the largest value seen
}

TEST(HistogramTest, BadRangeIsClampedNotFatal) {
  Histogram h(HistogramOptions{-1.0, -2.0});
  h.Record(3.0);
  EXPECT_NEAR(h.Snapshot().Quantile(0.5), 3.0, 3.0 * kRelativeError);
}

TEST(HistogramTest, SinceGivesTheLastInterval) {
  Histogram h;
  for (int i = 0; i < 1000; ++i) h.Record(1000.0);  // first interval: slow
  HistogramSnapshot first = h.Snapshot();
  for (int i = 0; i < 100; ++i) h.Record(10.0);  // second interval: fast
  HistogramSnapshot second = h.Snapshot();
  HistogramSnapshot interval = second.Since(first);
  EXPECT_EQ(interval.count, 100u);
  EXPECT_NEAR(interval.sum, 1000.0, 1e-6);
  EXPECT_NEAR(interval.Quantile(0.99), 10.0, 10.0 * kRelativeError);
  EXPECT_NEAR(interval.min, 10.0, 10.0 * 2 * kRelativeError);
  EXPECT_NEAR(interval.max, 10.0, 10.0 * 2 * kRelativeError);
  EXPECT_NEAR(second.Quantile(0.5), 1000.0, 1000.0 * kRelativeError);  // cumulative untouched
  EXPECT_EQ(second.Since(second).count, 0u);
}

TEST(HistogramTest, ConcurrentRecordLosesNothing) {
  Histogram h;
  Counter c;
  constexpr int kThreads = 4, kPerThread = 50000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        h.Record(1.0 + (i % 100) + t);
        c.Add();
      }
    });
  }
  for (auto& th : threads) th.join();
  HistogramSnapshot s = h.Snapshot();
  EXPECT_EQ(s.count, uint64_t{kThreads} * kPerThread);
  EXPECT_EQ(c.Value(), uint64_t{kThreads} * kPerThread);
  EXPECT_EQ(s.min, 1.0);
  EXPECT_EQ(s.max, 100.0 + kThreads - 1);
  double expected_sum = 0;
  for (int t = 0; t < kThreads; ++t)
    for (int i = 0; i < kPerThread; ++i) expected_sum += 1.0 + (i % 100) + t;
  EXPECT_NEAR(s.sum, expected_sum, expected_sum * 1e-12);
}

// Not a test of speed: prints the cost of Record and Counter::Add with one and two threads
// (two threads share the histogram's sum/min/max cache line; ratios side by side).
TEST(HistogramTest, PrintsTheCostOfRecord) {
  constexpr int kPerThread = 2000000;
  auto run = [](int threads, auto&& body) {
    auto start = std::chrono::steady_clock::now();
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
      pool.emplace_back([&] {
        for (int i = 0; i < kPerThread; ++i) body(i);
      });
    for (auto& th : pool) th.join();
    return std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start)
               .count() /
           kPerThread;  // wall ns per operation per thread
  };
  Histogram h;
  Counter c;
  auto record = [&](int i) { h.Record(0.5 + (i & 1023)); };
  auto add = [&](int) { c.Add(); };
  double r1 = run(1, record), r2 = run(2, record);
  double c1 = run(1, add), c2 = run(2, add);
  std::cout << "Histogram::Record ns/op: 1 thread " << r1 << ", 2 threads " << r2 << " (x"
            << r2 / r1 << ")\nCounter::Add ns/op: 1 thread " << c1 << ", 2 threads " << c2 << " (x"
            << c2 / c1 << ")\n";
  EXPECT_EQ(h.Snapshot().count, 3u * kPerThread);
}

TEST(GaugeTest, SetAndAdd) {
  Gauge g;
  g.Set(5);
  g.Add(-2.5);
  EXPECT_EQ(g.Value(), 2.5);
}

TEST(RegistryTest, SameNameAndLabelsGiveTheSameMetric) {
  MetricRegistry r;
  Counter& a = r.AddCounter("messages_total", "Messages", {{"pipeline", "x"}});
  Counter& b = r.AddCounter("messages_total", "Messages", {{"pipeline", "x"}});
  Counter& c = r.AddCounter("messages_total", "Messages", {{"pipeline", "y"}});
  EXPECT_EQ(&a, &b);
  EXPECT_NE(&a, &c);
  EXPECT_EQ(r.Collect().size(), 2u);
}

TEST(RegistryDeathTest, BadNameOrTypeClashAborts) {
  EXPECT_DEATH(
      {
        MetricRegistry r;
        r.AddCounter("bad name", "x");
      },
      "bad metric name");
  EXPECT_DEATH(
      {
        MetricRegistry r;
        r.AddCounter("x", "x");
        r.AddGauge("x", "x");
      },
      "two types");
  EXPECT_DEATH(
      {
        MetricRegistry r;
        r.AddCounter("x", "x", {{"__reserved", "v"}});
      },
      "bad label name");
}

TEST(NameTest, Validity) {
  EXPECT_TRUE(IsValidMetricName("edgeinfer:rss_bytes"));
  EXPECT_TRUE(IsValidMetricName("_x9"));
  EXPECT_FALSE(IsValidMetricName("9x"));
  EXPECT_FALSE(IsValidMetricName(""));
  EXPECT_FALSE(IsValidMetricName("a-b"));
  EXPECT_TRUE(IsValidLabelName("pipeline"));
  EXPECT_FALSE(IsValidLabelName("a:b"));
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST(PrometheusTest, TextFormatLineByLine) {
  MetricRegistry r;
  r.AddCounter("edgeinfer_messages_total", "Messages received", {{"pipeline", "vib"}}).Add(3);
  r.AddGauge("edgeinfer_queue_depth", "Queued inputs").Set(2.5);
  r.AddCounter("edgeinfer_messages_total", "Messages received",
               {{"pipeline", "a\"b\\c\nd"}, {"stage", "in"}});
  r.AddGaugeFunction("edgeinfer_rss_bytes", "Resident set\nsize", {}, [] { return 1048576.0; });
  Histogram& h = r.AddHistogram("edgeinfer_latency_ms", "Inference latency", {{"pipeline", "vib"}});
  for (int i = 1; i <= 100; ++i) h.Record(i);

  std::vector<std::string> expected = {
      "# HELP edgeinfer_messages_total Messages received",
      "# TYPE edgeinfer_messages_total counter",
      "edgeinfer_messages_total{pipeline=\"vib\"} 3",
      "edgeinfer_messages_total{pipeline=\"a\\\"b\\\\c\\nd\",stage=\"in\"} 0",
      "# HELP edgeinfer_queue_depth Queued inputs",
      "# TYPE edgeinfer_queue_depth gauge",
      "edgeinfer_queue_depth 2.5",
      "# HELP edgeinfer_rss_bytes Resident set\\nsize",
      "# TYPE edgeinfer_rss_bytes gauge",
      "edgeinfer_rss_bytes 1048576",
      "# HELP edgeinfer_latency_ms Inference latency",
      "# TYPE edgeinfer_latency_ms summary",
  };
  std::vector<std::string> lines = Lines(RenderPrometheus(r.Collect()));
  ASSERT_EQ(lines.size(), expected.size() + 5);
  for (size_t i = 0; i < expected.size(); ++i) EXPECT_EQ(lines[i], expected[i]) << "line " << i;
  // Quantile lines: the value within the stated error of the exact percentile.
  const std::pair<const char*, double> quantiles[] = {{"0.5", 50}, {"0.95", 95}, {"0.99", 99}};
  for (size_t i = 0; i < 3; ++i) {
    std::string prefix = std::string("edgeinfer_latency_ms{pipeline=\"vib\",quantile=\"") +
                         quantiles[i].first + "\"} ";
    const std::string& line = lines[expected.size() + i];
    ASSERT_EQ(line.rfind(prefix, 0), 0u) << line;
    double v = std::stod(line.substr(prefix.size()));
    EXPECT_NEAR(v, quantiles[i].second, quantiles[i].second * kRelativeError);
  }
  EXPECT_EQ(lines[expected.size() + 3], "edgeinfer_latency_ms_sum{pipeline=\"vib\"} 5050");
  EXPECT_EQ(lines[expected.size() + 4], "edgeinfer_latency_ms_count{pipeline=\"vib\"} 100");
}

TEST(JsonTest, SamplesAndIntervalHistograms) {
  MetricRegistry r;
  r.AddCounter("results_total", "Results", {{"pipeline", "p"}}).Add(7);
  Histogram& h = r.AddHistogram("latency_ms", "Latency");
  h.Record(100);
  auto before = r.Collect();
  h.Record(5);
  h.Record(5);
  auto after = r.Collect();
  nlohmann::json j = RenderJson(after, &before);
  ASSERT_EQ(j.size(), 2u);
  EXPECT_EQ(j[0]["name"], "results_total");
  EXPECT_EQ(j[0]["type"], "counter");
  EXPECT_EQ(j[0]["labels"]["pipeline"], "p");
  EXPECT_EQ(j[0]["value"], 7);
  EXPECT_EQ(j[1]["type"], "histogram");
  EXPECT_EQ(j[1]["cumulative"]["count"], 3);
  EXPECT_EQ(j[1]["interval"]["count"], 2);
  EXPECT_NEAR(j[1]["interval"]["p99"].get<double>(), 5.0, 5.0 * kRelativeError);
  EXPECT_FALSE(RenderJson(after)[1].contains("interval"));
}

}  // namespace
}  // namespace edgeinfer
