#include "inference/quant/calibrate.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace edgeinfer::quant {

namespace {
constexpr const char* kMethodNames[] = {"minmax", "percentile", "entropy"};
}  // namespace

const char* CalibrationMethodName(CalibrationMethod m) { return kMethodNames[static_cast<int>(m)]; }

bool ParseCalibrationMethod(std::string_view name, CalibrationMethod* out) {
  for (int i = 0; i < 3; ++i) {
    if (name == kMethodNames[i]) {
      *out = static_cast<CalibrationMethod>(i);
      return true;
    }
  }
  return false;
}

void AbsMax::Add(const float* x, int64_t n) {
  float m = max_;
  for (int64_t i = 0; i < n; ++i) {
    const float a = std::fabs(x[i]);
    if (!std::isfinite(a)) {
      ++non_finite_;
      continue;
    }
    m = std::max(m, a);
  }
  max_ = m;
}

AbsHistogram::AbsHistogram(float range, int bins)
    : range_(range),
      bins_per_unit_(range > 0.f ? static_cast<float>(bins) / range : 0.f),
      counts_(static_cast<size_t>(std::max(bins, 1)), 0) {}

void AbsHistogram::Add(const float* x, int64_t n) {
  const int64_t last = static_cast<int64_t>(counts_.size()) - 1;
  for (int64_t i = 0; i < n; ++i) {
    const float a = std::fabs(x[i]);
    if (!std::isfinite(a)) continue;
    const float pos = a * bins_per_unit_;
    const int64_t b = pos >= static_cast<float>(last) ? last : static_cast<int64_t>(pos);
    ++counts_[static_cast<size_t>(b)];
    ++total_;
  }
}

float PercentileThreshold(const AbsHistogram& h, double percentile) {
  if (h.total() == 0) return 0.f;
  const double want = std::clamp(percentile, 0.0, 100.0) / 100.0 * static_cast<double>(h.total());
  uint64_t seen = 0;
  const float width = h.range() / static_cast<float>(h.bins());
  for (int b = 0; b < h.bins(); ++b) {
    seen += h.counts()[b];
    if (static_cast<double>(seen) >= want) return width * static_cast<float>(b + 1);
  }
  return h.range();
}

namespace {

// KL(P || Q) of two unnormalized distributions over the same bins. A bin where Q is empty and P
// is not (the clipped outliers landing where Q has nothing) counts as Q holding a tiny share,
// as the reference implementations' smoothing does: a large but finite penalty.
double KlDivergence(const std::vector<double>& p, const std::vector<double>& q) {
  constexpr double kEps = 1e-10;
  double sp = 0, sq = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    sp += p[i];
    sq += q[i];
  }
  if (sp <= 0) return std::numeric_limits<double>::infinity();
  double kl = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] <= 0) continue;
    const double pi = p[i] / sp;
    const double qi = sq > 0 && q[i] > 0 ? q[i] / sq : kEps;
    kl += pi * std::log(pi / qi);
  }
  return kl;
}

// Q for the first `n` bins: the clipped counts `c` (outliers not folded in) merged into `levels`
// groups, each group's total spread evenly over the bins where P is non-empty.
void Quantized(const std::vector<uint64_t>& c, const std::vector<double>& p, int n, int levels,
               std::vector<double>* q) {
  q->assign(static_cast<size_t>(n), 0.0);
  const double per = static_cast<double>(n) / levels;
  for (int l = 0; l < levels; ++l) {
    const int begin = static_cast<int>(std::floor(l * per));
    const int end = l == levels - 1 ? n : static_cast<int>(std::floor((l + 1) * per));
    double sum = 0;
    int nonzero = 0;
    for (int b = begin; b < end; ++b) {
      sum += static_cast<double>(c[b]);
      nonzero += p[b] > 0;
    }
    if (nonzero == 0) continue;
    for (int b = begin; b < end; ++b)
      if (p[b] > 0) (*q)[b] = sum / nonzero;
  }
}

}  // namespace

float EntropyThreshold(const AbsHistogram& h, int levels) {
  if (h.total() == 0) return 0.f;
  const int bins = h.bins();
  if (bins <= levels) return h.range();
  // The exact zeros of a ReLU output (often half the values) would sit in bin 0 and make every
  // merge of bin 0 with its neighbours look costly, pulling T down to the narrowest candidate;
  // as NVIDIA's pytorch-quantization does, bin 0 counts like bin 1.
  std::vector<uint64_t> c = h.counts();
  c[0] = c[1];
  // Bins past the last non-empty one cannot lower the divergence: stop there.
  int used = bins;
  while (used > levels && c[used - 1] == 0) --used;
  double tail = 0;  // counts of bins >= i
  for (int b = levels; b < bins; ++b) tail += static_cast<double>(c[b]);
  std::vector<double> p, q;
  double best_kl = std::numeric_limits<double>::infinity();
  int best = used;
  for (int i = levels; i <= used; ++i) {
    p.assign(c.begin(), c.begin() + i);
    p[i - 1] += tail;  // the clipped outliers saturate into the last level
    Quantized(c, p, i, levels, &q);
    const double kl = KlDivergence(p, q);
    if (kl < best_kl) {
      best_kl = kl;
      best = i;
    }
    if (i < bins) tail -= static_cast<double>(c[i]);
  }
  return h.range() / static_cast<float>(bins) * static_cast<float>(best);
}

float Threshold(CalibrationMethod method, float max, const AbsHistogram* h, double percentile) {
  if (method == CalibrationMethod::kMinMax || h == nullptr) return max;
  const float t = method == CalibrationMethod::kPercentile ? PercentileThreshold(*h, percentile)
                                                           : EntropyThreshold(*h);
  return std::min(t, max);
}

}  // namespace edgeinfer::quant
