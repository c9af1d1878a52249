// Lowering of Conv, Gemm, MatMul, pooling, BatchNormalization and LayerNormalization. Window
// attributes are made explicit (kernel_shape, strides, dilations, pads) and auto_pad is resolved
// into pads.
#include <algorithm>

#include "inference/onnx/const_eval.h"
#include "inference/onnx/graph_edit.h"
#include "inference/onnx/onnx_attrs.h"
#include "inference/onnx/onnx_lower.h"

namespace edgeinfer {

namespace {

using onnx::NodeProto;

constexpr int64_t kMaxWindow = int64_t{1} << 31;

struct Window {
  std::vector<int64_t> kernel, strides, dilations, pads;
  bool auto_padded = false;
};

Status CheckCount(const char* attr, const std::vector<int64_t>& v, size_t want) {
  if (v.size() == want) return Status::Ok();
  std::string msg = attr;  // (built stepwise: GCC 12 warns falsely on "'" + std::string)
  msg += " has " + std::to_string(v.size()) + " values, expected " + std::to_string(want);
  return Status::InvalidArgument(msg);
}

// SAME_UPPER / SAME_LOWER: the output is ceil(in / stride) and the total padding that needs is
// split evenly, the odd one at the end (UPPER) or the beginning (LOWER).
Status ResolveSamePads(const Dims& x, bool upper, Window* w) {
  size_t s = w->kernel.size();
  for (size_t i = 0; i < s; ++i) {
    int64_t in = x[2 + i];
    if (in < 0)
      return Status::Unsupported("auto_pad SAME needs literal spatial dims, input is " +
                                 DimsToString(x));
    int64_t out = (in + w->strides[i] - 1) / w->strides[i];
    int64_t total = (out - 1) * w->strides[i] + (w->kernel[i] - 1) * w->dilations[i] + 1 - in;
    total = std::max<int64_t>(total, 0);
    int64_t small = total / 2;
    w->pads[i] = upper ? small : total - small;
    w->pads[i + s] = total - w->pads[i];
  }
  return Status::Ok();
}

Status ResolveAutoPad(const NodeProto& n, const Dims& x, Window* w) {
  std::string mode = OnnxAttrString(n, "auto_pad", "NOTSET");
  if (mode == "NOTSET") return Status::Ok();
  if (mode != "VALID" && mode != "SAME_UPPER" && mode != "SAME_LOWER")
    return Status::Unsupported("auto_pad '" + mode +
                               "' is not supported (NOTSET, SAME_UPPER, SAME_LOWER, VALID)");
  if (std::any_of(w->pads.begin(), w->pads.end(), [](int64_t p) { return p != 0; }))
    return Status::InvalidArgument("auto_pad '" + mode + "' together with explicit pads");
  if (x.size() != w->kernel.size() + 2)
    return Status::InvalidArgument("input " + DimsToString(x) + " does not match a " +
                                   std::to_string(w->kernel.size()) + "-D window");
  w->auto_padded = true;
  if (mode == "VALID") return Status::Ok();
  return ResolveSamePads(x, mode == "SAME_UPPER", w);
}

Result<Window> ReadWindow(const NodeProto& n, const Dims& x, std::vector<int64_t> kernel) {
  size_t s = kernel.size();
  if (s != 1 && s != 2)
    return Status::Unsupported(std::to_string(s) + "-D windows are not supported (1-D and 2-D)");
  Window w;
  w.kernel = std::move(kernel);
  w.strides = OnnxAttrInts(n, "strides", std::vector<int64_t>(s, 1));
  w.dilations = OnnxAttrInts(n, "dilations", std::vector<int64_t>(s, 1));
  w.pads = OnnxAttrInts(n, "pads", std::vector<int64_t>(2 * s, 0));
  EI_RETURN_IF_ERROR(CheckCount("strides", w.strides, s));
  EI_RETURN_IF_ERROR(CheckCount("dilations", w.dilations, s));
  EI_RETURN_IF_ERROR(CheckCount("pads", w.pads, 2 * s));
  // Bounded so the pad arithmetic below cannot overflow; infer checks the rest.
  auto bad = [](int64_t v) { return v < 1 || v > kMaxWindow; };
  for (size_t i = 0; i < s; ++i)
    if (bad(w.kernel[i]) || bad(w.strides[i]) || bad(w.dilations[i]))
      return Status::InvalidArgument("kernel_shape, strides and dilations must be in [1, 2^31]");
  EI_RETURN_IF_ERROR(ResolveAutoPad(n, x, &w));
  return w;
}

void SetWindow(const Window& w, bool with_dilations, Attrs* a) {
  a->Set("kernel_shape", w.kernel);
  a->Set("strides", w.strides);
  a->Set("pads", w.pads);
  if (with_dilations) a->Set("dilations", w.dilations);
}

// Optional input i as a tensor index, -1 when absent.
Result<int> Optional(const NodeProto& n, LowerContext& cx, int i) {
  if (!cx.HasInput(n, i)) return -1;
  return cx.Tensor(n, i);
}

Status LowerConv(const NodeProto& n, LowerContext& cx) {
  EI_ASSIGN_OR_RETURN(int x, cx.Tensor(n, 0));
  EI_ASSIGN_OR_RETURN(int w, cx.Tensor(n, 1));
  EI_ASSIGN_OR_RETURN(int b, Optional(n, cx, 2));
  const Dims& wd = cx.desc(w).dims;
  if (wd.size() < 3)
    return Status::InvalidArgument("weights " + DimsToString(wd) + " have rank below 3");
  auto kernel = OnnxAttrInts(n, "kernel_shape", std::vector<int64_t>(wd.begin() + 2, wd.end()));
  EI_ASSIGN_OR_RETURN(Window win, ReadWindow(n, cx.desc(x).dims, kernel));
  Attrs a;
  SetWindow(win, /*with_dilations=*/true, &a);
  a.Set("group", OnnxAttrInt(n, "group", 1));
  std::vector<int> inputs = {x, w};
  if (b >= 0) inputs.push_back(b);
  return cx.Emit(n, "Conv", inputs, a).status();
}

// Python's floor division (ONNX's reference computes ConvTranspose pads with it).
int64_t FloorDiv2(int64_t v) { return v >= 0 ? v / 2 : -((-v + 1) / 2); }

// ConvTranspose, 1-D and 2-D. An output_shape or SAME auto_pad becomes explicit pads as ONNX's
// reference computes them (a negative end pad extends the output, as output_padding does).
Status LowerConvTranspose(const NodeProto& n, LowerContext& cx) {
  EI_ASSIGN_OR_RETURN(int x, cx.Tensor(n, 0));
  EI_ASSIGN_OR_RETURN(int w, cx.Tensor(n, 1));
  EI_ASSIGN_OR_RETURN(int b, Optional(n, cx, 2));
  const Dims xd = cx.desc(x).dims;
  const Dims& wd = cx.desc(w).dims;
  const size_t rank = xd.size();
  if (rank != 3 && rank != 4)
    return Status::Unsupported("ConvTranspose of a rank " + std::to_string(rank) +
                               " input (1-D and 2-D are supported)");
  if (wd.size() != rank)
    return Status::InvalidArgument("weights " + DimsToString(wd) + " do not match the input");
  const size_t spatial = rank - 2;
  const auto kernel =
      OnnxAttrInts(n, "kernel_shape", std::vector<int64_t>(wd.begin() + 2, wd.end()));
  const auto strides = OnnxAttrInts(n, "strides", std::vector<int64_t>(spatial, 1));
  const auto dilations = OnnxAttrInts(n, "dilations", std::vector<int64_t>(spatial, 1));
  const auto out_pad = OnnxAttrInts(n, "output_padding", std::vector<int64_t>(spatial, 0));
  auto pads = OnnxAttrInts(n, "pads", std::vector<int64_t>(2 * spatial, 0));
  const std::string auto_pad = OnnxAttrString(n, "auto_pad", "NOTSET");
  if (auto_pad != "NOTSET" && auto_pad != "VALID" && auto_pad != "SAME_UPPER" &&
      auto_pad != "SAME_LOWER")
    return Status::Unsupported("auto_pad '" + auto_pad + "'");
  if (kernel.size() != spatial || strides.size() != spatial || dilations.size() != spatial ||
      out_pad.size() != spatial || pads.size() != 2 * spatial)
    return Status::InvalidArgument("window attributes need one value per spatial axis");
  if (auto_pad == "VALID") pads.assign(2 * spatial, 0);
  std::vector<int64_t> out_shape = OnnxAttrInts(n, "output_shape", {});
  if (out_shape.empty() && auto_pad.rfind("SAME", 0) == 0)
    for (size_t i = 0; i < spatial; ++i) out_shape.push_back(xd[2 + i] * strides[i]);
  if (!out_shape.empty()) {
    if (out_shape.size() == rank) out_shape.erase(out_shape.begin(), out_shape.begin() + 2);
    if (out_shape.size() != spatial)
      return Status::InvalidArgument("output_shape needs one value per spatial axis");
    for (size_t i = 0; i < spatial; ++i) {
      if (xd[2 + i] < 1) return Status::Unsupported("spatial dims must be literal");
      const int64_t total = strides[i] * (xd[2 + i] - 1) + out_pad[i] +
                            (kernel[i] - 1) * dilations[i] + 1 - out_shape[i];
      const bool upper = auto_pad == "SAME_UPPER";
      pads[i] = upper ? FloorDiv2(total) : total - FloorDiv2(total);
      pads[i + spatial] = upper ? total - FloorDiv2(total) : FloorDiv2(total);
    }
  }
  Attrs a;
  a.Set("kernel_shape", kernel);
  a.Set("strides", strides);
  a.Set("dilations", dilations);
  a.Set("pads", pads);
  a.Set("output_padding", out_pad);
  a.Set("group", OnnxAttrInt(n, "group", 1));
  std::vector<int> inputs = {x, w};
  if (b >= 0) inputs.push_back(b);
  return cx.Emit(n, "ConvTranspose", inputs, a).status();
}

Status LowerMaxPool(const NodeProto& n, LowerContext& cx) {
  if (OnnxAttrInt(n, "storage_order", 0) != 0)
    return Status::Unsupported("storage_order=1 (column-major indices) is not supported");
  EI_RETURN_IF_ERROR(cx.RefuseUsedOutputs(n, 1, "Indices"));
  EI_ASSIGN_OR_RETURN(int x, cx.Tensor(n, 0));
  if (!FindOnnxAttr(n, "kernel_shape")) return Status::InvalidArgument("kernel_shape is missing");
  EI_ASSIGN_OR_RETURN(Window win,
                      ReadWindow(n, cx.desc(x).dims, OnnxAttrInts(n, "kernel_shape", {})));
  Attrs a;
  SetWindow(win, /*with_dilations=*/true, &a);
  // With auto_pad the output size is fixed by the padding mode, as floor division gives it.
  a.Set("ceil_mode", win.auto_padded ? int64_t{0} : OnnxAttrInt(n, "ceil_mode", 0));
  return cx.Emit(n, "MaxPool", {x}, a).status();
}

Status LowerAveragePool(const NodeProto& n, LowerContext& cx) {
  EI_ASSIGN_OR_RETURN(int x, cx.Tensor(n, 0));
  if (!FindOnnxAttr(n, "kernel_shape")) return Status::InvalidArgument("kernel_shape is missing");
  EI_ASSIGN_OR_RETURN(Window win,
                      ReadWindow(n, cx.desc(x).dims, OnnxAttrInts(n, "kernel_shape", {})));
  if (std::any_of(win.dilations.begin(), win.dilations.end(), [](int64_t d) { return d != 1; }))
    return Status::Unsupported("dilated AveragePool is not supported");
  Attrs a;
  SetWindow(win, /*with_dilations=*/false, &a);
  a.Set("ceil_mode", win.auto_padded ? int64_t{0} : OnnxAttrInt(n, "ceil_mode", 0));
  a.Set("count_include_pad", OnnxAttrInt(n, "count_include_pad", 0));
  return cx.Emit(n, "AveragePool", {x}, a).status();
}

Status LowerGemm(const NodeProto& n, LowerContext& cx) {
  EI_ASSIGN_OR_RETURN(int a, cx.Tensor(n, 0));
  EI_ASSIGN_OR_RETURN(int b, cx.Tensor(n, 1));
  EI_ASSIGN_OR_RETURN(int c, Optional(n, cx, 2));
  Attrs at;
  at.Set("transA", OnnxAttrInt(n, "transA", 0));
  at.Set("transB", OnnxAttrInt(n, "transB", 0));
  at.Set("alpha", OnnxAttrFloat(n, "alpha", 1.f));
  at.Set("beta", OnnxAttrFloat(n, "beta", 1.f));
  std::vector<int> inputs = {a, b};
  if (c >= 0) inputs.push_back(c);
  return cx.Emit(n, "Gemm", inputs, at).status();
}

Status LowerMatMul(const NodeProto& n, LowerContext& cx) {
  EI_ASSIGN_OR_RETURN(int a, cx.Tensor(n, 0));
  EI_ASSIGN_OR_RETURN(int b, cx.Tensor(n, 1));
  return cx.Emit(n, "MatMul", {a, b}, {}).status();
}

Status LowerBatchNorm(const NodeProto& n, LowerContext& cx) {
  if (OnnxAttrInt(n, "training_mode", 0) != 0)
    return Status::Unsupported("training_mode=1 is not supported (inference only)");
  EI_RETURN_IF_ERROR(cx.RefuseUsedOutputs(n, 1, "training statistics"));
  std::vector<int> inputs;
  for (int i = 0; i < 5; ++i) {
    EI_ASSIGN_OR_RETURN(int t, cx.Tensor(n, i));
    inputs.push_back(t);
  }
  Attrs a;
  a.Set("epsilon", OnnxAttrFloat(n, "epsilon", 1e-5f));
  return cx.Emit(n, "BatchNormalization", inputs, a).status();
}

// LayerNormalization (opset 17) with its optional Mean and InvStdDev outputs (made only when
// read). stash_type only sets the precision of the statistics, float32 here whatever it says.
Status LowerLayerNorm(const NodeProto& n, LowerContext& cx) {
  EI_ASSIGN_OR_RETURN(int x, cx.Tensor(n, 0));
  EI_ASSIGN_OR_RETURN(int scale, cx.Tensor(n, 1));
  EI_ASSIGN_OR_RETURN(int bias, Optional(n, cx, 2));
  const int64_t rank = static_cast<int64_t>(cx.desc(x).dims.size());
  EI_ASSIGN_OR_RETURN(int64_t axis, NormalizeAxis(OnnxAttrInt(n, "axis", -1), rank));
  Node node;
  node.name = n.name();
  node.op = "LayerNormalization";
  node.inputs = {x, scale};
  if (bias >= 0) node.inputs.push_back(bias);
  node.attrs.Set("axis", axis);
  node.attrs.Set("epsilon", OnnxAttrFloat(n, "epsilon", 1e-5f));
  int num_out = 1;
  for (int i = 1; i < n.output_size() && i < 3; ++i)
    if (!n.output(i).empty() && cx.IsUsed(n.output(i))) num_out = i + 1;
  Graph& g = cx.graph();
  for (int i = 0; i < num_out; ++i) {
    TensorDesc t;
    t.name = n.output(i).empty() ? UniqueTensorName(g, n.name() + "_unused") : n.output(i);
    node.outputs.push_back(g.AddTensor(t));
  }
  EI_RETURN_IF_ERROR(InferNodeOutputs(node, &g));
  if (AllInputsConstant(g, node)) {
    EI_RETURN_IF_ERROR(EvaluateConstantNode(node, &g));
  } else {
    g.nodes.push_back(node);
  }
  for (int i = 0; i < num_out; ++i)
    if (!n.output(i).empty()) cx.BindTensor(n.output(i), node.outputs[i]);
  return Status::Ok();
}

// InstanceNormalization (torch's InstanceNorm and GroupNorm, which exports Reshape to
// [N, groups, -1], InstanceNormalization with unit scale and zero bias, Reshape back, then the
// affine Mul and Add): LayerNormalization over the spatial axes [2, rank) with a unit scale, then
// a per-channel Mul and Add by constants unless they are 1 and 0.
Status LowerInstanceNorm(const NodeProto& n, LowerContext& cx) {
  EI_ASSIGN_OR_RETURN(int x, cx.Tensor(n, 0));
  EI_ASSIGN_OR_RETURN(std::vector<float> scale, cx.ConstantFloats(n, 1));
  EI_ASSIGN_OR_RETURN(std::vector<float> bias, cx.ConstantFloats(n, 2));
  const Dims dims = cx.desc(x).dims;
  if (dims.size() < 3) return Status::InvalidArgument("X must have rank 3 or more");
  if (dims[1] < 0) return Status::Unsupported("the channel axis holds the batch");
  if (static_cast<int64_t>(scale.size()) != dims[1] || static_cast<int64_t>(bias.size()) != dims[1])
    return Status::InvalidArgument("scale and B must hold " + std::to_string(dims[1]) +
                                   " values (one per channel)");
  Graph& g = cx.graph();
  Dims per_channel(dims.size() - 1, 1);
  per_channel[0] = dims[1];
  const bool unit = std::all_of(scale.begin(), scale.end(), [](float v) { return v == 1.f; });
  const bool zero = std::all_of(bias.begin(), bias.end(), [](float v) { return v == 0.f; });
  // Each step's output takes n's output name; an intermediate is renamed when a step follows.
  auto step = [&](const std::string& op, std::vector<int> in, Attrs a, bool last) -> Result<int> {
    EI_ASSIGN_OR_RETURN(int t, cx.Emit(n, op, std::move(in), std::move(a)));
    if (!last) g.tensors[t].name = UniqueTensorName(g, n.output(0) + "/" + op);
    return t;
  };
  const int one = AddFloatConstant(&g, UniqueTensorName(g, n.name() + "/one"), {1}, {1.f});
  Attrs ln;
  ln.Set("axis", int64_t{2});
  ln.Set("epsilon", OnnxAttrFloat(n, "epsilon", 1e-5f));
  EI_ASSIGN_OR_RETURN(int y, step("LayerNormalization", {x, one}, ln, unit && zero));
  if (!unit) {
    const int s =
        AddFloatConstant(&g, UniqueTensorName(g, n.name() + "/scale"), per_channel, scale);
    EI_ASSIGN_OR_RETURN(y, step("Mul", {y, s}, {}, zero));
  }
  if (!zero) {
    const int b = AddFloatConstant(&g, UniqueTensorName(g, n.name() + "/bias"), per_channel, bias);
    EI_ASSIGN_OR_RETURN(y, step("Add", {y, b}, {}, true));
  }
  return Status::Ok();
}

template <const char* kOp>
Status LowerGlobalPool(const NodeProto& n, LowerContext& cx) {
  EI_ASSIGN_OR_RETURN(int x, cx.Tensor(n, 0));
  return cx.Emit(n, kOp, {x}, {}).status();
}

constexpr char kGlobalAveragePool[] = "GlobalAveragePool";
constexpr char kGlobalMaxPool[] = "GlobalMaxPool";

constexpr OnnxLowering kLowerings[] = {
    {"Conv", LowerConv},
    {"ConvTranspose", LowerConvTranspose},
    {"Gemm", LowerGemm},
    {"MatMul", LowerMatMul},
    {"MaxPool", LowerMaxPool},
    {"AveragePool", LowerAveragePool},
    {"GlobalAveragePool", LowerGlobalPool<kGlobalAveragePool>},
    {"GlobalMaxPool", LowerGlobalPool<kGlobalMaxPool>},
    {"BatchNormalization", LowerBatchNorm},
    {"LayerNormalization", LowerLayerNorm},
    {"InstanceNormalization", LowerInstanceNorm},
};

}  // namespace

std::span<const OnnxLowering> NnLowerings() { return kLowerings; }

}  // namespace edgeinfer
