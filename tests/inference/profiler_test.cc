// The profiler's summary: exclusive (self) time per op, so nested spans (a Gemm's quantize) are
// not counted twice and the rows add up to the time spent.
#include "inference/profiler.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace edgeinfer {
namespace {

// Names and categories must outlive the profiler.
const std::string kGemm1 = "fc1", kGemm2 = "fc2", kQuant = "quantize", kRelu = "relu";

Profiler::SummaryRow Row(const Profiler& p, const std::string& op) {
  for (const Profiler::SummaryRow& r : p.Summary()) {
    if (r.op == op) return r;
  }
  ADD_FAILURE() << "no row " << op;
  return {};
}

int64_t SelfTotal(const Profiler& p) {
  int64_t total = 0;
  for (const Profiler::SummaryRow& r : p.Summary()) total += r.self_ns;
  return total;
}

// As the session records: each Gemm's quantize span first (it ends first), then the Gemm.
TEST(ProfilerSummary, NestedQuantizeIsTakenOutOfItsGemm) {
  Profiler p;
  p.Record(&kQuant, "quantize", 1000, 100);  // inside fc1 [1000, 1600)
  p.Record(&kGemm1, "Gemm", 1000, 600);
  p.Record(&kRelu, "Relu", 1600, 50);
  p.Record(&kQuant, "quantize", 1700, 30);  // inside fc2 [1650, 2050)
  p.Record(&kGemm2, "Gemm", 1650, 400);
  const Profiler::SummaryRow gemm = Row(p, "Gemm"), quant = Row(p, "quantize");
  EXPECT_EQ(gemm.calls, 2);
  EXPECT_EQ(gemm.inclusive_ns, 1000);
  EXPECT_EQ(gemm.self_ns, 1000 - 130);
  EXPECT_EQ(quant.calls, 2);
  EXPECT_EQ(quant.self_ns, 130);
  EXPECT_EQ(quant.inclusive_ns, 130);
  EXPECT_EQ(Row(p, "Relu").self_ns, 50);
  EXPECT_EQ(SelfTotal(p), 600 + 50 + 400);    // the wall time of the top-level spans
  EXPECT_EQ(p.Summary().front().op, "Gemm");  // slowest self time first
}

// Only direct children are subtracted: a span inside a span inside a node counts once, in its
// own row, and its parent loses it, not the grandparent twice.
TEST(ProfilerSummary, DeeperNestingAndSiblings) {
  const std::string node = "conv", a = "a", b = "b", c = "c";
  Profiler p;
  p.Record(&c, "dequantize", 150, 20);  // inside quantize a [100, 200)
  p.Record(&a, "quantize", 100, 100);
  p.Record(&b, "quantize", 300, 50);  // a sibling of a, both inside conv
  p.Record(&node, "Conv", 0, 1000);
  EXPECT_EQ(Row(p, "dequantize").self_ns, 20);
  EXPECT_EQ(Row(p, "quantize").self_ns, 100 - 20 + 50);
  EXPECT_EQ(Row(p, "Conv").self_ns, 1000 - 100 - 50);
  EXPECT_EQ(SelfTotal(p), 1000);
}

// Spans with the same start, or the same extent: the longer (or, for equal extents, the later
// recorded, which is how an enclosing span records) is the parent. Back-to-back spans (one ends
// where the next starts) are siblings.
TEST(ProfilerSummary, TiesAndTouchingSpans) {
  Profiler p;
  p.Record(&kQuant, "quantize", 0, 40);  // same start as the Gemm
  p.Record(&kRelu, "Relu", 40, 60);      // the rest of the Gemm's extent
  p.Record(&kGemm1, "Gemm", 0, 100);
  p.Record(&kGemm2, "Gemm", 100, 10);      // starts where the first ends: not nested
  p.Record(&kQuant, "quantize", 100, 10);  // same extent as the second Gemm, recorded later
  EXPECT_EQ(Row(p, "Gemm").self_ns, 0 + 10);
  EXPECT_EQ(Row(p, "quantize").self_ns, 40 + 0);
  EXPECT_EQ(Row(p, "Relu").self_ns, 60);
  EXPECT_EQ(SelfTotal(p), 110);
  for (const Profiler::SummaryRow& r : p.Summary()) EXPECT_GE(r.self_ns, 0) << r.op;
}

TEST(ProfilerSummary, TableShowsSelfAndInclusiveTimeAndSharesAddUp) {
  Profiler p;
  p.Record(&kQuant, "quantize", 0, 250000);
  p.Record(&kGemm1, "Gemm", 0, 1000000);
  const std::string table = p.SummaryTable();
  EXPECT_NE(table.find("self_ms"), std::string::npos) << table;
  EXPECT_NE(table.find("incl_ms"), std::string::npos) << table;
  // Gemm: self 0.750 ms of inclusive 1.000, 75%; quantize 0.250, 25%; total 1.000.
  EXPECT_NE(table.find("0.750        1.000"), std::string::npos) << table;
  EXPECT_NE(table.find(" 75.0%"), std::string::npos) << table;
  EXPECT_NE(table.find(" 25.0%"), std::string::npos) << table;
  EXPECT_NE(table.find("total (self)"), std::string::npos) << table;
  EXPECT_LT(table.find("Gemm"), table.find("quantize")) << table;
}

TEST(ProfilerSummary, EmptyAndClearedProfilers) {
  Profiler p;
  EXPECT_TRUE(p.Summary().empty());
  EXPECT_NE(p.SummaryTable().find("op"), std::string::npos);
  p.Record(&kGemm1, "Gemm", 0, 10);
  p.Clear();
  EXPECT_TRUE(p.Summary().empty());
}

// Past the capacity events are dropped, counted and said so; the summary covers what was kept.
TEST(ProfilerSummary, DroppedEventsAreReported) {
  Profiler p(2);
  for (int i = 0; i < 5; ++i) p.Record(&kGemm1, "Gemm", i * 10, 5);
  EXPECT_EQ(p.dropped(), 3u);
  EXPECT_EQ(Row(p, "Gemm").calls, 2);
  EXPECT_NE(p.SummaryTable().find("3 events dropped"), std::string::npos);
}

}  // namespace
}  // namespace edgeinfer
