// Per-op wall-time profiler: Chrome trace-event JSON (opens in Perfetto) and a summary table.
//
// The session records one event per node run; kernels may record sub-spans (quantize,
// dequantize) with their own names. Events go into a buffer reserved up front, so recording on
// the hot path does not allocate; past the capacity events are counted as dropped. Not
// thread-safe: one profiler per session.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace edgeinfer {

class Profiler {
 public:
  explicit Profiler(size_t capacity = 1 << 20);

  static int64_t NowNs();
  // `name` and `category` must outlive the profiler (node names and op names of the model do).
  void Record(const std::string* name, const char* category, int64_t start_ns, int64_t dur_ns);

  size_t size() const { return events_.size(); }
  size_t dropped() const { return dropped_; }
  void Clear();

  // Chrome trace-event format: {"traceEvents":[{"name","cat","ph":"X","ts","dur","pid","tid"}]}.
  Status WriteChromeTrace(const std::string& path) const;
  // Per op type: calls, total ms, mean us, share of the total; slowest ops first.
  std::string SummaryTable() const;

 private:
  struct Event {
    const std::string* name;
    const char* category;
    int64_t start_ns;
    int64_t dur_ns;
  };
  std::vector<Event> events_;
  size_t capacity_;
  size_t dropped_ = 0;
  int64_t origin_ns_;
};

}  // namespace edgeinfer
