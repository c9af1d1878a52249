// Where (select by a constant 0/1 mask: torch's masked_fill with a causal or padding mask) and
// Expand (broadcast to a shape that holds the batch: a learned token expanded to the batch,
// ViT's cls_token.expand(B, -1, -1)). Both are a gather through broadcast strides.
#include <algorithm>

#include "inference/ops/basic_ops_internal.h"
#include "inference/ops/shape_util.h"

namespace edgeinfer::basic_ops {

namespace {

// Visits every output element in row-major order with each input's broadcast offset; the
// innermost axis is handed to `row` as one run of `n` elements with per-input strides.
template <int kInputs, class RowFn>
void ForEachRow(const Shape& out, const Shape* const* in, RowFn row) {
  const int rank = std::max(out.rank, 1);
  int64_t strides[kInputs][kMaxRank] = {};
  for (int i = 0; i < kInputs; ++i) BroadcastStrides(*in[i], out.rank, strides[i]);
  const int64_t inner = out.rank ? out.d[rank - 1] : 1;
  if (inner == 0) return;
  const int64_t rows = out.NumElements() / inner;
  int64_t idx[kMaxRank] = {};
  int64_t off[kInputs] = {};
  int64_t inner_stride[kInputs];
  for (int i = 0; i < kInputs; ++i) inner_stride[i] = out.rank ? strides[i][rank - 1] : 0;
  for (int64_t r = 0; r < rows; ++r) {
    row(r * inner, off, inner_stride, inner);
    for (int k = rank - 2; k >= 0; --k) {
      for (int i = 0; i < kInputs; ++i) off[i] += strides[i][k];
      if (++idx[k] < out.d[k]) break;
      for (int i = 0; i < kInputs; ++i) off[i] -= strides[i][k] * out.d[k];
      idx[k] = 0;
    }
  }
}

class WhereKernel : public Kernel {
 public:
  void Run(const KernelContext& ctx) override {
    const float* c = ctx.in[0].f32();
    const float* x = ctx.in[1].f32();
    const float* y = ctx.in[2].f32();
    float* o = ctx.out[0].f32();
    const Shape* in[] = {&ctx.in[0].shape, &ctx.in[1].shape, &ctx.in[2].shape};
    ForEachRow<3>(
        ctx.out[0].shape, in, [&](int64_t at, const int64_t* off, const int64_t* st, int64_t n) {
          for (int64_t j = 0; j < n; ++j)
            o[at + j] =
                c[off[0] + j * st[0]] != 0.f ? x[off[1] + j * st[1]] : y[off[2] + j * st[2]];
        });
  }
};

class ExpandKernel : public Kernel {
 public:
  void Run(const KernelContext& ctx) override {
    const float* x = ctx.in[0].f32();
    float* o = ctx.out[0].f32();
    const Shape* in[] = {&ctx.in[0].shape};
    ForEachRow<1>(ctx.out[0].shape, in,
                  [&](int64_t at, const int64_t* off, const int64_t* st, int64_t n) {
                    if (st[0] == 0) {
                      std::fill(o + at, o + at + n, x[off[0]]);
                    } else {
                      std::copy(x + off[0], x + off[0] + n, o + at);
                    }
                  });
  }
};

}  // namespace

// Condition, X, Y: float32, numpy-broadcast together. The condition is any float tensor
// (non-zero selects X); the importer makes it a 0/1 constant from ONNX's bool.
Status InferWhere(const Node& node, const Graph& graph, std::vector<TensorDesc>* outs) {
  std::vector<const TensorDesc*> in;
  EI_RETURN_IF_ERROR(CheckFloatInputs(node, graph, *outs, 3, 3, &in));
  Dims xy, dims;
  Status s = BroadcastDims(in[1]->dims, in[2]->dims, &xy);
  if (s.ok()) s = BroadcastDims(in[0]->dims, xy, &dims);
  if (!s.ok()) return Invalid(node, s.message());
  SetOutput(outs, std::move(dims));
  return Status::Ok();
}

KernelResult CreateWhere(const Node&, const Graph&) {
  return std::unique_ptr<Kernel>(new WhereKernel);
}

// X broadcast (numpy, unidirectional) to the attribute `shape`, which is the output's dims.
Status InferExpand(const Node& node, const Graph& graph, std::vector<TensorDesc>* outs) {
  std::vector<const TensorDesc*> in;
  EI_RETURN_IF_ERROR(CheckFloatInputs(node, graph, *outs, 1, 1, &in));
  Dims shape;
  EI_RETURN_IF_ERROR(GetAttr<Dims>(node, "shape", {}, &shape, /*required=*/true));
  if (shape.size() > static_cast<size_t>(kMaxRank))
    return Invalid(node, "shape has rank " + std::to_string(shape.size()));
  SymbolicCount count;
  Status s = CountElements(shape, &count);
  Dims dims;
  if (s.ok()) s = BroadcastDims(in[0]->dims, shape, &dims);
  if (!s.ok()) return Invalid(node, s.message());
  if (dims != shape)
    return Invalid(node,
                   "cannot expand " + DimsToString(in[0]->dims) + " to " + DimsToString(shape));
  SetOutput(outs, std::move(dims));
  return Status::Ok();
}

KernelResult CreateExpand(const Node&, const Graph&) {
  return std::unique_ptr<Kernel>(new ExpandKernel);
}

}  // namespace edgeinfer::basic_ops
