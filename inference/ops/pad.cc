// Pad (ONNX opset 11+ semantics): pads = [begin_0, ..., begin_{r-1}, end_0, ..., end_{r-1}],
// negative values crop. Modes: constant (`value`), reflect (mirror without repeating the edge),
// edge (repeat the edge). The batch axis is never padded, so it stays symbolic.
#include <algorithm>
#include <cstring>

#include "inference/ops/math_ops_internal.h"

namespace edgeinfer::math_ops {

using basic_ops::GetAttr;
using basic_ops::Invalid;

namespace {

enum class Mode { kConstant, kReflect, kEdge };

bool ParseMode(const std::string& s, Mode* m) {
  if (s == "constant")
    *m = Mode::kConstant;
  else if (s == "reflect")
    *m = Mode::kReflect;
  else if (s == "edge")
    *m = Mode::kEdge;
  else
    return false;
  return true;
}

// The input index read for output index `o` along an axis of `n` elements with `begin`
// padding; -1 where constant padding is written. Infer guarantees reflect pads < n and n >= 1.
inline int64_t Source(Mode mode, int64_t o, int64_t begin, int64_t n) {
  const int64_t i = o - begin;
  if (i >= 0 && i < n) return i;
  switch (mode) {
    case Mode::kConstant:
      return -1;
    case Mode::kEdge:
      return i < 0 ? 0 : n - 1;
    case Mode::kReflect:
      return i < 0 ? -i : 2 * (n - 1) - i;
  }
  return -1;
}

class PadKernel : public Kernel {
 public:
  PadKernel(Mode mode, float value, const std::vector<int64_t>& pads)
      : mode_(mode), value_(value), rank_(static_cast<int>(pads.size() / 2)) {
    std::copy(pads.begin(), pads.begin() + rank_, begin_);
  }

  void Run(const KernelContext& ctx) override {
    const Shape& in = ctx.in[0].shape;
    const Shape& out = ctx.out[0].shape;
    if (out.NumElements() == 0) return;
    const float* x = ctx.in[0].f32();
    float* y = ctx.out[0].f32();
    if (rank_ == 0) {
      y[0] = x[0];
      return;
    }
    int64_t in_stride[kMaxRank];
    int64_t s = 1;
    for (int k = rank_ - 1; k >= 0; --k) {
      in_stride[k] = s;
      s *= in.d[k];
    }
    const int last = rank_ - 1;
    const int64_t width = out.d[last];
    const int64_t rows = out.NumElements() / width;
    int64_t idx[kMaxRank] = {};
    for (int64_t r = 0; r < rows; ++r, y += width) {
      // The source row, or none when some outer axis lands in constant padding.
      int64_t off = 0;
      bool inside = true;
      for (int k = 0; k < last && inside; ++k) {
        const int64_t i = Source(mode_, idx[k], begin_[k], in.d[k]);
        inside = i >= 0;
        off += i * in_stride[k];
      }
      if (inside) {
        Row(x + off, in.d[last], y, width);
      } else {
        std::fill(y, y + width, value_);
      }
      for (int k = last - 1; k >= 0; --k) {
        if (++idx[k] < out.d[k]) break;
        idx[k] = 0;
      }
    }
  }

 private:
  void Row(const float* x, int64_t n, float* y, int64_t width) const {
    const int64_t b = begin_[rank_ - 1];
    if (mode_ == Mode::kConstant) {  // fill, copy, fill
      const int64_t lo = std::clamp<int64_t>(b, 0, width);
      const int64_t hi = std::clamp<int64_t>(b + n, lo, width);
      std::fill(y, y + lo, value_);
      if (hi > lo) std::memcpy(y + lo, x + (lo - b), (hi - lo) * sizeof(float));
      std::fill(y + hi, y + width, value_);
      return;
    }
    for (int64_t o = 0; o < width; ++o) y[o] = x[Source(mode_, o, b, n)];
  }

  Mode mode_;
  float value_;
  int rank_;
  int64_t begin_[kMaxRank] = {};
};

}  // namespace

Status InferPad(const Node& node, const Graph& graph, std::vector<TensorDesc>* outs) {
  std::vector<const TensorDesc*> in;
  EI_RETURN_IF_ERROR(basic_ops::CheckFloatInputs(node, graph, *outs, 1, 1, &in));
  std::string mode_name;
  std::vector<int64_t> pads;
  float value = 0.f;
  EI_RETURN_IF_ERROR(GetAttr<std::string>(node, "mode", "constant", &mode_name));
  EI_RETURN_IF_ERROR(GetAttr<std::vector<int64_t>>(node, "pads", {}, &pads, /*required=*/true));
  EI_RETURN_IF_ERROR(GetAttr<float>(node, "value", 0.f, &value));
  Mode mode;
  if (!ParseMode(mode_name, &mode)) {
    return Status::Unsupported(NodeContext(node) + ": mode '" + mode_name +
                               "' is not supported (constant, reflect, edge)");
  }
  const Dims& d = in[0]->dims;
  const size_t r = d.size();
  if (pads.size() != 2 * r) {
    return Invalid(node, "attribute 'pads' has " + std::to_string(pads.size()) +
                             " values, expected " + std::to_string(2 * r));
  }
  constexpr int64_t kMaxPad = int64_t{1} << 31;  // keeps the dim arithmetic in range
  Dims out(r);
  for (size_t k = 0; k < r; ++k) {
    const int64_t b = pads[k], e = pads[k + r];
    if (b < -kMaxPad || b > kMaxPad || e < -kMaxPad || e > kMaxPad)
      return Invalid(node, "pads must be within +-2^31");
    if (d[k] < 0) {  // the batch (or a multiple of it) is never padded
      if (b != 0 || e != 0)
        return Status::Unsupported(NodeContext(node) + ": padding axis " + std::to_string(k) +
                                   " of " + DimsToString(d) + " changes the batch size");
      out[k] = d[k];
      continue;
    }
    out[k] = d[k] + b + e;
    if (out[k] < 0) return Invalid(node, "pads crop axis " + std::to_string(k) + " below 0");
    const bool grows = b > 0 || e > 0;
    if (mode == Mode::kEdge && grows && d[k] == 0)
      return Invalid(node, "edge padding of an empty axis " + std::to_string(k));
    if (mode == Mode::kReflect && grows && (b >= d[k] || e >= d[k])) {
      return Status::Unsupported(NodeContext(node) + ": reflect pads of axis " + std::to_string(k) +
                                 " must be smaller than its size " + std::to_string(d[k]));
    }
  }
  basic_ops::SetOutput(outs, std::move(out));
  return Status::Ok();
}

KernelResult CreatePad(const Node& node, const Graph&) {
  Mode mode = Mode::kConstant;
  if (!ParseMode(node.attrs.GetString("mode", "constant"), &mode))
    return Invalid(node, "unknown mode");
  return std::unique_ptr<Kernel>(
      new PadKernel(mode, node.attrs.GetFloat("value", 0.f), node.attrs.GetInts("pads")));
}

}  // namespace edgeinfer::math_ops
