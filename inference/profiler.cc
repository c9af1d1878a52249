#include "inference/profiler.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>

namespace edgeinfer {

Profiler::Profiler(size_t capacity) : capacity_(capacity), origin_ns_(NowNs()) {
  events_.reserve(std::min<size_t>(capacity, 1 << 16));
}

int64_t Profiler::NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void Profiler::RecordQuantize(int64_t start_ns, int64_t dur_ns) {
  // Static storage: events keep a pointer to their name, which must outlive every profiler.
  static const std::string* const kName = new std::string("quantize");
  Record(kName, "quantize", start_ns, dur_ns);
}

void Profiler::Record(const std::string* name, const char* category, int64_t start_ns,
                      int64_t dur_ns) {
  if (events_.size() >= capacity_) {
    ++dropped_;
    return;
  }
  events_.push_back({name, category, start_ns, dur_ns});
}

void Profiler::Clear() {
  events_.clear();
  dropped_ = 0;
}

Status Profiler::WriteChromeTrace(const std::string& path) const {
  nlohmann::json events = nlohmann::json::array();
  for (const Event& e : events_) {
    events.push_back({{"name", *e.name},
                      {"cat", e.category},
                      {"ph", "X"},
                      {"ts", (e.start_ns - origin_ns_) / 1000.0},
                      {"dur", e.dur_ns / 1000.0},
                      {"pid", 1},
                      {"tid", 1}});
  }
  nlohmann::json doc = {{"traceEvents", events}, {"displayTimeUnit", "ms"}};
  FILE* f = std::fopen(path.c_str(), "w");
  if (!f) return Status::IOError("open '" + path + "'", errno);
  std::string text = doc.dump();
  bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  ok &= std::fclose(f) == 0;
  if (!ok) return Status::IOError("write '" + path + "'", errno);
  return Status::Ok();
}

std::vector<int64_t> Profiler::SelfTimes() const {
  // Outer spans first: by start, then the longer (later end) first, then the later recorded.
  std::vector<size_t> order(events_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [this](size_t a, size_t b) {
    const Event& x = events_[a];
    const Event& y = events_[b];
    if (x.start_ns != y.start_ns) return x.start_ns < y.start_ns;
    if (x.dur_ns != y.dur_ns) return x.dur_ns > y.dur_ns;
    return a > b;
  });
  std::vector<int64_t> self(events_.size());
  std::vector<size_t> open;  // the chain of spans enclosing the current one, outermost first
  for (size_t i : order) {
    const Event& e = events_[i];
    const int64_t end = e.start_ns + e.dur_ns;
    while (!open.empty()) {
      const Event& top = events_[open.back()];
      if (e.start_ns >= top.start_ns && end <= top.start_ns + top.dur_ns) break;
      open.pop_back();
    }
    self[i] = e.dur_ns;
    if (!open.empty()) self[open.back()] -= e.dur_ns;
    open.push_back(i);
  }
  // Overlapping siblings (spans from other threads) could take a parent below zero.
  for (int64_t& v : self) v = std::max<int64_t>(v, 0);
  return self;
}

std::vector<Profiler::SummaryRow> Profiler::Summary() const {
  const std::vector<int64_t> self = SelfTimes();
  std::map<std::string, SummaryRow> by_op;
  for (size_t i = 0; i < events_.size(); ++i) {
    SummaryRow& r = by_op[events_[i].category];
    ++r.calls;
    r.self_ns += self[i];
    r.inclusive_ns += events_[i].dur_ns;
  }
  std::vector<SummaryRow> rows;
  for (auto& [op, r] : by_op) {
    r.op = op;
    rows.push_back(r);
  }
  std::stable_sort(rows.begin(), rows.end(),
                   [](const SummaryRow& a, const SummaryRow& b) { return a.self_ns > b.self_ns; });
  return rows;
}

std::string Profiler::SummaryTable() const {
  const std::vector<SummaryRow> rows = Summary();
  int64_t total = 0;
  for (const SummaryRow& r : rows) total += r.self_ns;
  std::string out;
  char line[192];
  std::snprintf(line, sizeof line, "%-22s %8s %12s %12s %12s %7s\n", "op", "calls", "self_ms",
                "incl_ms", "mean_us", "share");
  out += line;
  for (const SummaryRow& r : rows) {
    std::snprintf(line, sizeof line, "%-22s %8lld %12.3f %12.3f %12.2f %6.1f%%\n", r.op.c_str(),
                  static_cast<long long>(r.calls), r.self_ns / 1e6, r.inclusive_ns / 1e6,
                  r.self_ns / 1e3 / static_cast<double>(r.calls),
                  total ? 100.0 * r.self_ns / total : 0.0);
    out += line;
  }
  std::snprintf(line, sizeof line, "%-22s %8s %12.3f\n", "total (self)", "", total / 1e6);
  out += line;
  if (dropped_) out += "(" + std::to_string(dropped_) + " events dropped past capacity)\n";
  out += "self = time less that of the spans nested inside (e.g. a Gemm's quantize)\n";
  return out;
}

}  // namespace edgeinfer
