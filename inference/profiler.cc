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

std::string Profiler::SummaryTable() const {
  struct Row {
    int64_t calls = 0;
    int64_t total_ns = 0;
  };
  std::map<std::string, Row> by_op;
  int64_t total = 0;
  for (const Event& e : events_) {
    Row& r = by_op[e.category];
    ++r.calls;
    r.total_ns += e.dur_ns;
    total += e.dur_ns;
  }
  std::vector<std::pair<std::string, Row>> rows(by_op.begin(), by_op.end());
  std::sort(rows.begin(), rows.end(),
            [](const auto& a, const auto& b) { return a.second.total_ns > b.second.total_ns; });
  std::string out;
  char line[160];
  std::snprintf(line, sizeof line, "%-22s %8s %12s %12s %7s\n", "op", "calls", "total_ms",
                "mean_us", "share");
  out += line;
  for (const auto& [op, r] : rows) {
    std::snprintf(line, sizeof line, "%-22s %8lld %12.3f %12.2f %6.1f%%\n", op.c_str(),
                  static_cast<long long>(r.calls), r.total_ns / 1e6,
                  r.total_ns / 1e3 / static_cast<double>(r.calls),
                  total ? 100.0 * r.total_ns / total : 0.0);
    out += line;
  }
  if (dropped_) out += "(" + std::to_string(dropped_) + " events dropped past capacity)\n";
  return out;
}

}  // namespace edgeinfer
