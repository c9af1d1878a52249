// Metrics: counters, gauges and histograms with percentiles, a registry that names them, and
// renderers for JSON (the telemetry topic) and the Prometheus text exposition format.
//
// Hot path: Counter::Add, Gauge::Set/Add and Histogram::Record are lock-free (relaxed atomics),
// allocate nothing and may be called from any number of threads at once.
//
// Histograms are cumulative: they are never reset. A reader takes a HistogramSnapshot (a copy of
// the bucket counts) whenever it likes; the figures of the last interval are the difference of
// two snapshots (HistogramSnapshot::Since). So the telemetry report can show "last interval"
// while a Prometheus scrape shows "since start", and neither disturbs the other.
//
// Percentiles are estimated from log-linear buckets: each power of two of the configured range is
// split into kSubBuckets equal parts, and a percentile is reported as the middle of the bucket that
// holds it. For values inside [min, max] the relative error is at most 1 / (2 * kSubBuckets)
// (1.6%). Values below min count in an underflow bucket (reported as min), values above max in an
// overflow bucket (reported as the largest value seen, for cumulative snapshots). NaN is ignored
// and counted in HistogramSnapshot::ignored.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace edgeinfer {

// A monotonically increasing count. Thread-safe, lock-free.
class Counter {
 public:
  void Add(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

// A value that goes up and down (queue depth, arena bytes). Thread-safe, lock-free.
class Gauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Add(double d) { value_.fetch_add(d, std::memory_order_relaxed); }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

struct HistogramOptions {
  // Range covered by fine buckets, in the unit the caller records (e.g. milliseconds).
  // Requires 0 < min < max; max / min is capped at 2^60 (a bad range is clamped, never fatal).
  double min = 1e-3;
  double max = 1e7;
};

// A copy of a histogram's state at one moment. Plain value.
struct HistogramSnapshot {
  HistogramOptions options;
  std::vector<uint64_t> buckets;  // [0] underflow, [1..n-2] fine buckets, [n-1] overflow
  uint64_t count = 0;             // sum of buckets
  double sum = 0;                 // sum of recorded values (may lag count by in-flight records)
  double min = 0;                 // smallest / largest value seen; 0 when count == 0. For a
  double max = 0;                 //   difference (Since) these are bucket estimates.
  uint64_t ignored = 0;           // NaN values not recorded

  // Estimated value at quantile q in [0, 1] (nearest rank); 0 when empty.
  double Quantile(double q) const;
  double Mean() const { return count == 0 ? 0.0 : sum / static_cast<double>(count); }
  // What was recorded after `earlier` (a snapshot of the same histogram) and up to this one.
  HistogramSnapshot Since(const HistogramSnapshot& earlier) const;
  // {"count", "sum", "mean", "min", "max", "p50", "p95", "p99"}.
  nlohmann::json ToJson() const;
};

// Distribution of recorded values with bounded memory (about 8 KiB for the default range).
class Histogram {
 public:
  static constexpr int kSubBuckets = 32;  // per power of two; relative error <= 1/64

  explicit Histogram(HistogramOptions options = {});
  Histogram(const Histogram&) = delete;
  Histogram& operator=(const Histogram&) = delete;

  // Thread-safe, lock-free, allocates nothing.
  void Record(double value);
  // Thread-safe; allocates the copy. Records made meanwhile land in this snapshot or the next.
  HistogramSnapshot Snapshot() const;

  // Lower bound of fine bucket `index` (1..size-2), for tests and the renderers.
  double BucketLowerBound(size_t index) const;
  size_t BucketCount() const { return num_buckets_; }

 private:
  size_t BucketIndex(double value) const;

  HistogramOptions options_;
  int octaves_ = 0;
  size_t num_buckets_ = 0;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;
  std::atomic<double> sum_{0.0};
  std::atomic<double> min_;
  std::atomic<double> max_;
  std::atomic<uint64_t> ignored_{0};
};

// Label pairs, e.g. {{"pipeline", "vibration"}}. Order is kept as given.
using Labels = std::vector<std::pair<std::string, std::string>>;

enum class MetricType { kCounter, kGauge, kHistogram };

// One metric's value at collection time. Plain value.
struct MetricSample {
  std::string name;
  std::string help;
  Labels labels;
  MetricType type = MetricType::kCounter;
  double value = 0;             // counters and gauges
  HistogramSnapshot histogram;  // histograms
};

// Owns named metrics; components keep the returned references (stable for the registry's life)
// and update them without touching the registry again.
//
// Names must match [a-zA-Z_:][a-zA-Z0-9_:]* and label names [a-zA-Z_][a-zA-Z0-9_]*; they come
// from code, so a bad one, or the same name registered with two types, is a programming error
// and aborts. Label values may be anything (they are escaped when rendered). Asking again for the
// same type, name and labels returns the existing metric. Thread-safe (one mutex, not on the hot
// path).
class MetricRegistry {
 public:
  Counter& AddCounter(const std::string& name, const std::string& help, Labels labels = {});
  Gauge& AddGauge(const std::string& name, const std::string& help, Labels labels = {});
  // A gauge whose value is computed at collection time (queue depth, RSS). `read` runs on the
  // collecting thread under the registry's mutex; it must be quick and must not call the registry.
  void AddGaugeFunction(const std::string& name, const std::string& help, Labels labels,
                        std::function<double()> read);
  Histogram& AddHistogram(const std::string& name, const std::string& help, Labels labels = {},
                          HistogramOptions options = {});

  // Values of every metric, in registration order.
  std::vector<MetricSample> Collect() const;

 private:
  struct Entry {
    std::string name, help;
    Labels labels;
    MetricType type;
    std::unique_ptr<Counter> counter;
    std::unique_ptr<Gauge> gauge;
    std::function<double()> gauge_function;
    std::unique_ptr<Histogram> histogram;
  };
  Entry* Find(const std::string& name, const Labels& labels, MetricType type);
  Entry& Insert(const std::string& name, const std::string& help, Labels labels, MetricType type);

  mutable std::mutex mu_;
  std::deque<Entry> entries_;
};

bool IsValidMetricName(const std::string& name);
bool IsValidLabelName(const std::string& name);

// Prometheus text exposition format 0.0.4: one "# HELP" and "# TYPE" per metric name, then one
// line per label set. Histograms are rendered as summaries: quantile="0.5", "0.95", "0.99"
// (cumulative since start), plus _sum and _count.
std::string RenderPrometheus(const std::vector<MetricSample>& samples);

// JSON array, one object per sample: {"name", "type", "labels": {...}, "value"} or for histograms
// {"name", "type": "histogram", "labels", "cumulative": {...}, "interval": {...}}. "interval" is
// present when `previous` (an earlier Collect() of the same registry) holds the same histogram.
nlohmann::json RenderJson(const std::vector<MetricSample>& samples,
                          const std::vector<MetricSample>* previous = nullptr);

}  // namespace edgeinfer
