#include "telemetry/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <map>

namespace edgeinfer {
namespace {

constexpr int kMaxOctaves = 60;

int OctavesFor(const HistogramOptions& o) {
  double ratio = o.max / o.min;
  if (!(ratio > 1)) return 1;
  return std::clamp(static_cast<int>(std::ceil(std::log2(ratio))), 1, kMaxOctaves);
}

HistogramOptions Sanitized(HistogramOptions o) {
  if (!(o.min > 0) || !std::isfinite(o.min)) o.min = 1e-3;
  if (!(o.max > o.min) || !std::isfinite(o.max)) o.max = o.min * 1e10;
  return o;
}

// Lowers `target` to `v` if smaller (or raises if `raise`); lock-free.
void AtomicMinMax(std::atomic<double>& target, double v, bool raise) {
  double cur = target.load(std::memory_order_relaxed);
  while (raise ? v > cur : v < cur) {
    if (target.compare_exchange_weak(cur, v, std::memory_order_relaxed)) return;
  }
}

[[noreturn]] void DieBadMetric(const std::string& what) {
  std::fprintf(stderr, "metric registry: %s\n", what.c_str());
  std::abort();
}

}  // namespace

Histogram::Histogram(HistogramOptions options)
    : options_(Sanitized(options)),
      octaves_(OctavesFor(options_)),
      num_buckets_(static_cast<size_t>(octaves_) * kSubBuckets + 2),
      buckets_(new std::atomic<uint64_t>[num_buckets_]),
      min_(std::numeric_limits<double>::infinity()),
      max_(-std::numeric_limits<double>::infinity()) {
  for (size_t i = 0; i < num_buckets_; ++i) buckets_[i].store(0, std::memory_order_relaxed);
}

size_t Histogram::BucketIndex(double value) const {
  double x = value / options_.min;
  if (!(x >= 1.0)) return 0;
  int exp = 0;
  double mantissa = std::frexp(x, &exp);  // x = mantissa * 2^exp, mantissa in [0.5, 1)
  int octave = exp - 1;
  if (octave >= octaves_) return num_buckets_ - 1;
  int sub = static_cast<int>((2.0 * mantissa - 1.0) * kSubBuckets);
  return 1 + static_cast<size_t>(octave) * kSubBuckets + static_cast<size_t>(sub);
}

double Histogram::BucketLowerBound(size_t index) const {
  if (index == 0) return 0.0;
  if (index >= num_buckets_ - 1) return std::ldexp(options_.min, octaves_);
  size_t k = index - 1;
  int octave = static_cast<int>(k / kSubBuckets);
  double sub = static_cast<double>(k % kSubBuckets);
  return std::ldexp(options_.min, octave) * (1.0 + sub / kSubBuckets);
}

void Histogram::Record(double value) {
  if (std::isnan(value)) {
    ignored_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  buckets_[BucketIndex(value)].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(value, std::memory_order_relaxed);
  AtomicMinMax(min_, value, /*raise=*/false);
  AtomicMinMax(max_, value, /*raise=*/true);
}

HistogramSnapshot Histogram::Snapshot() const {
  HistogramSnapshot s;
  s.options = options_;
  s.buckets.resize(num_buckets_);
  for (size_t i = 0; i < num_buckets_; ++i) {
    s.buckets[i] = buckets_[i].load(std::memory_order_relaxed);
    s.count += s.buckets[i];
  }
  s.sum = sum_.load(std::memory_order_relaxed);
  s.ignored = ignored_.load(std::memory_order_relaxed);
  if (s.count > 0) {
    s.min = min_.load(std::memory_order_relaxed);
    s.max = max_.load(std::memory_order_relaxed);
  }
  return s;
}

namespace {

// Bucket geometry for a snapshot, without the live histogram.
double LowerBound(const HistogramSnapshot& s, size_t index) {
  if (index == 0) return 0.0;
  size_t k = index - 1;
  int octave = static_cast<int>(k / Histogram::kSubBuckets);
  double sub = static_cast<double>(k % Histogram::kSubBuckets);
  return std::ldexp(s.options.min, octave) * (1.0 + sub / Histogram::kSubBuckets);
}

}  // namespace

double HistogramSnapshot::Quantile(double q) const {
  if (count == 0 || buckets.size() < 2) return 0.0;
  q = std::clamp(std::isnan(q) ? 0.0 : q, 0.0, 1.0);
  uint64_t rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(count)));
  rank = std::clamp<uint64_t>(rank, 1, count);
  uint64_t seen = 0;
  size_t index = 0;
  for (; index < buckets.size(); ++index) {
    seen += buckets[index];
    if (seen >= rank) break;
  }
  double estimate;
  if (index == 0) {
    estimate = min;
  } else if (index >= buckets.size() - 1) {
    estimate = max;
  } else {
    double lo = LowerBound(*this, index);
    double hi = LowerBound(*this, index + 1);
    estimate = 0.5 * (lo + hi);
  }
  return std::clamp(estimate, min, max);
}

HistogramSnapshot HistogramSnapshot::Since(const HistogramSnapshot& earlier) const {
  HistogramSnapshot d;
  d.options = options;
  d.buckets.assign(buckets.size(), 0);
  bool same_shape = earlier.buckets.size() == buckets.size();
  size_t lowest = buckets.size(), highest = 0;
  for (size_t i = 0; i < buckets.size(); ++i) {
    uint64_t before = same_shape ? earlier.buckets[i] : 0;
    d.buckets[i] = buckets[i] > before ? buckets[i] - before : 0;
    d.count += d.buckets[i];
    if (d.buckets[i] > 0) {
      lowest = std::min(lowest, i);
      highest = i;
    }
  }
  d.sum = same_shape ? sum - earlier.sum : sum;
  d.ignored = ignored >= earlier.ignored ? ignored - earlier.ignored : ignored;
  if (d.count > 0) {
    // The exact extremes of an interval are unknown; the bucket bounds hold them.
    d.min = lowest == 0 ? min : LowerBound(*this, lowest);
    d.max = highest >= buckets.size() - 1 ? max : LowerBound(*this, highest + 1);
    d.min = std::max(d.min, min);
    d.max = std::min(d.max, max);
  }
  return d;
}

nlohmann::json HistogramSnapshot::ToJson() const {
  return {{"count", count},
          {"sum", sum},
          {"mean", Mean()},
          {"min", min},
          {"max", max},
          {"p50", Quantile(0.50)},
          {"p95", Quantile(0.95)},
          {"p99", Quantile(0.99)}};
}

// --- Registry ---------------------------------------------------------------------------------

bool IsValidMetricName(const std::string& name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
              (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

bool IsValidLabelName(const std::string& name) {
  return IsValidMetricName(name) && name.find(':') == std::string::npos && name.rfind("__", 0) != 0;
}

MetricRegistry::Entry* MetricRegistry::Find(const std::string& name, const Labels& labels,
                                            MetricType type) {
  for (Entry& e : entries_) {
    if (e.name != name) continue;
    if (e.type != type) DieBadMetric("'" + name + "' registered with two types");
    if (e.labels == labels) return &e;
  }
  return nullptr;
}

MetricRegistry::Entry& MetricRegistry::Insert(const std::string& name, const std::string& help,
                                              Labels labels, MetricType type) {
  if (!IsValidMetricName(name)) DieBadMetric("bad metric name '" + name + "'");
  for (const auto& [label, value] : labels) {
    if (!IsValidLabelName(label)) DieBadMetric("bad label name '" + label + "' on " + name);
  }
  Entry& e = entries_.emplace_back();
  e.name = name;
  e.help = help;
  e.labels = std::move(labels);
  e.type = type;
  return e;
}

Counter& MetricRegistry::AddCounter(const std::string& name, const std::string& help,
                                    Labels labels) {
  std::lock_guard lock(mu_);
  if (Entry* e = Find(name, labels, MetricType::kCounter)) return *e->counter;
  Entry& e = Insert(name, help, std::move(labels), MetricType::kCounter);
  e.counter = std::make_unique<Counter>();
  return *e.counter;
}

Gauge& MetricRegistry::AddGauge(const std::string& name, const std::string& help, Labels labels) {
  std::lock_guard lock(mu_);
  if (Entry* e = Find(name, labels, MetricType::kGauge)) {
    if (!e->gauge) DieBadMetric("'" + name + "' is already a gauge function");
    return *e->gauge;
  }
  Entry& e = Insert(name, help, std::move(labels), MetricType::kGauge);
  e.gauge = std::make_unique<Gauge>();
  return *e.gauge;
}

void MetricRegistry::AddGaugeFunction(const std::string& name, const std::string& help,
                                      Labels labels, std::function<double()> read) {
  std::lock_guard lock(mu_);
  if (Entry* e = Find(name, labels, MetricType::kGauge)) {
    if (e->gauge) DieBadMetric("'" + name + "' is already a plain gauge");
    e->gauge_function = std::move(read);
    return;
  }
  Entry& e = Insert(name, help, std::move(labels), MetricType::kGauge);
  e.gauge_function = std::move(read);
}

Histogram& MetricRegistry::AddHistogram(const std::string& name, const std::string& help,
                                        Labels labels, HistogramOptions options) {
  std::lock_guard lock(mu_);
  if (Entry* e = Find(name, labels, MetricType::kHistogram)) return *e->histogram;
  Entry& e = Insert(name, help, std::move(labels), MetricType::kHistogram);
  e.histogram = std::make_unique<Histogram>(options);
  return *e.histogram;
}

std::vector<MetricSample> MetricRegistry::Collect() const {
  std::lock_guard lock(mu_);
  std::vector<MetricSample> out;
  out.reserve(entries_.size());
  for (const Entry& e : entries_) {
    MetricSample& s = out.emplace_back();
    s.name = e.name;
    s.help = e.help;
    s.labels = e.labels;
    s.type = e.type;
    if (e.counter) s.value = static_cast<double>(e.counter->Value());
    if (e.gauge) s.value = e.gauge->Value();
    if (e.gauge_function) s.value = e.gauge_function();
    if (e.histogram) s.histogram = e.histogram->Snapshot();
  }
  return out;
}

// --- Rendering --------------------------------------------------------------------------------

namespace {

void AppendNumber(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
  } else if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
  } else {
    char buf[32];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, ec == std::errc() ? end : buf);
  }
}

void AppendEscaped(std::string& out, const std::string& s, bool quote) {
  for (char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (quote && c == '"') {
      out += "\\\"";
    } else {
      out += c;
    }
  }
}

// name{a="x",b="y"[,extra]} value
void AppendLine(std::string& out, const std::string& name, const Labels& labels, const char* extra,
                double value) {
  out += name;
  if (!labels.empty() || extra != nullptr) {
    out += '{';
    bool first = true;
    for (const auto& [k, v] : labels) {
      if (!first) out += ',';
      first = false;
      out += k;
      out += "=\"";
      AppendEscaped(out, v, /*quote=*/true);
      out += '"';
    }
    if (extra != nullptr) {
      if (!first) out += ',';
      out += extra;
    }
    out += '}';
  }
  out += ' ';
  AppendNumber(out, value);
  out += '\n';
}

const char* PrometheusType(MetricType t) {
  switch (t) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "summary";
  }
  return "untyped";
}

const char* JsonType(MetricType t) {
  switch (t) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

}  // namespace

std::string RenderPrometheus(const std::vector<MetricSample>& samples) {
  // Group by name (first appearance order): the format wants one HELP/TYPE block per name.
  std::vector<const std::string*> order;
  std::map<std::string, std::vector<const MetricSample*>> by_name;
  for (const MetricSample& s : samples) {
    auto& group = by_name[s.name];
    if (group.empty()) order.push_back(&s.name);
    group.push_back(&s);
  }
  std::string out;
  for (const std::string* name : order) {
    const auto& group = by_name[*name];
    out += "# HELP " + *name + ' ';
    AppendEscaped(out, group.front()->help, /*quote=*/false);
    out += "\n# TYPE " + *name + ' ' + PrometheusType(group.front()->type) + '\n';
    for (const MetricSample* s : group) {
      if (s->type != MetricType::kHistogram) {
        AppendLine(out, *name, s->labels, nullptr, s->value);
        continue;
      }
      const HistogramSnapshot& h = s->histogram;
      AppendLine(out, *name, s->labels, "quantile=\"0.5\"", h.Quantile(0.5));
      AppendLine(out, *name, s->labels, "quantile=\"0.95\"", h.Quantile(0.95));
      AppendLine(out, *name, s->labels, "quantile=\"0.99\"", h.Quantile(0.99));
      AppendLine(out, *name + "_sum", s->labels, nullptr, h.sum);
      AppendLine(out, *name + "_count", s->labels, nullptr, static_cast<double>(h.count));
    }
  }
  return out;
}

nlohmann::json RenderJson(const std::vector<MetricSample>& samples,
                          const std::vector<MetricSample>* previous) {
  nlohmann::json out = nlohmann::json::array();
  for (const MetricSample& s : samples) {
    nlohmann::json labels = nlohmann::json::object();
    for (const auto& [k, v] : s.labels) labels[k] = v;
    nlohmann::json item = {{"name", s.name}, {"type", JsonType(s.type)}, {"labels", labels}};
    if (s.type != MetricType::kHistogram) {
      item["value"] = s.value;
    } else {
      item["cumulative"] = s.histogram.ToJson();
      if (previous != nullptr) {
        for (const MetricSample& p : *previous) {
          if (p.type == s.type && p.name == s.name && p.labels == s.labels) {
            item["interval"] = s.histogram.Since(p.histogram).ToJson();
            break;
          }
        }
      }
    }
    out.push_back(std::move(item));
  }
  return out;
}

}  // namespace edgeinfer
