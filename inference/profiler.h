// Per-op wall-time profiler: Chrome trace-event JSON (opens in Perfetto) and a summary table.
//
// The session records one event per node run; kernels may record sub-spans (quantize,
// dequantize) with their own names, nested in time inside the node's event. Events go into a
// buffer reserved up front, so recording on the hot path does not allocate; past the capacity
// events are counted as dropped. Not thread-safe: one profiler per session.
//
// The summary counts each op's exclusive (self) time: an event's duration less that of the events
// nested directly inside it (a Gemm's quantize span is the quantize row's time, not the Gemm's),
// so the rows add up to the time spent and the shares to 100%. Nesting is read from the times: an
// event lies inside another when it starts no earlier and ends no later; of two with the same
// extent, the one recorded later (the outer span records last) is the parent.
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
  // A kernel's activation quantization sub-span: name and category "quantize".
  void RecordQuantize(int64_t start_ns, int64_t dur_ns);

  size_t size() const { return events_.size(); }
  size_t dropped() const { return dropped_; }
  void Clear();

  // Chrome trace-event format: {"traceEvents":[{"name","cat","ph":"X","ts","dur","pid","tid"}]}.
  Status WriteChromeTrace(const std::string& path) const;
  // Per op type (event category), slowest self time first.
  struct SummaryRow {
    std::string op;
    int64_t calls = 0;
    int64_t self_ns = 0;       // exclusive: nested events' time taken out
    int64_t inclusive_ns = 0;  // the events' durations as recorded
  };
  std::vector<SummaryRow> Summary() const;
  // Summary() as text: calls, self ms, inclusive ms, mean self us, share of all self time.
  std::string SummaryTable() const;

 private:
  struct Event {
    const std::string* name;
    const char* category;
    int64_t start_ns;
    int64_t dur_ns;
  };
  // self time of each event, by index into events_.
  std::vector<int64_t> SelfTimes() const;
  std::vector<Event> events_;
  size_t capacity_;
  size_t dropped_ = 0;
  int64_t origin_ns_;
};

}  // namespace edgeinfer
