// Conv, Gemm, MatMul, pooling and batch norm: the op table and the validation helpers the ops
// share (declared in nn_ops_internal.h).
#include <variant>

#include "inference/op.h"
#include "inference/ops/nn_ops_internal.h"
#include "inference/quant/weight_format.h"

namespace edgeinfer {

namespace nn {

Status NodeError(const Node& node, const std::string& what) {
  return Status::InvalidArgument(NodeContext(node) + ": " + what);
}

Status NodeUnsupported(const Node& node, const std::string& what) {
  return Status::Unsupported(NodeContext(node) + ": " + what);
}

namespace {

constexpr size_t kNoWeight = static_cast<size_t>(-1);

Status CheckWeightInput(const Node& node, size_t i, const TensorDesc& t) {
  quant::WeightFormat format;
  if (!quant::WeightFormatOf(t.dtype, &format))
    return NodeUnsupported(node, "input " + std::to_string(i) + " ('" + t.name +
                                     "') must be float32, float16 or a quantized weight dtype, "
                                     "got " +
                                     DTypeName(t.dtype));
  if (!t.is_constant())
    return NodeUnsupported(node, "input " + std::to_string(i) + " ('" + t.name + "') is " +
                                     DTypeName(t.dtype) + ", which only a constant weight can be");
  return Status::Ok();
}

Status CheckPrecisionAttr(const Node& node, const TensorDesc& w) {
  if (!node.attrs.Has("precision")) return Status::Ok();
  const auto& v = node.attrs.values().at("precision");
  const std::string* name = std::get_if<std::string>(&v);
  if (!name) return NodeError(node, "attribute 'precision' must be a string");
  const char* want = quant::WeightPrecisionName(w.dtype);
  if (want == nullptr || *name != want)
    return NodeError(node, "attribute 'precision' is '" + *name + "' but the weight '" + w.name +
                               "' is " + DTypeName(w.dtype));
  return Status::Ok();
}

Status CheckInputsImpl(const Node& node, const Graph& graph, size_t min_inputs,
                       size_t max_inputs, size_t weight) {
  const size_t n = node.inputs.size();
  if (n < min_inputs || n > max_inputs) {
    std::string want = std::to_string(min_inputs);
    if (max_inputs != min_inputs) want += " to " + std::to_string(max_inputs);
    return NodeError(node, "expects " + want + " inputs, got " + std::to_string(n));
  }
  if (node.outputs.size() != 1)
    return NodeError(node, "expects 1 output, got " + std::to_string(node.outputs.size()));
  for (size_t i = 0; i < n; ++i) {
    const TensorDesc* t = InputDesc(node, graph, i);
    if (!t) {
      if (i < min_inputs) return NodeError(node, "input " + std::to_string(i) + " is required");
      continue;
    }
    if (i == weight) {
      if (t->dtype != DType::kFloat32) EI_RETURN_IF_ERROR(CheckWeightInput(node, i, *t));
      EI_RETURN_IF_ERROR(CheckPrecisionAttr(node, *t));
      continue;
    }
    if (t->dtype != DType::kFloat32)
      return NodeUnsupported(node, "input " + std::to_string(i) + " ('" + t->name +
                                       "') must be float32, got " + DTypeName(t->dtype));
  }
  return Status::Ok();
}

}  // namespace

Status CheckInputs(const Node& node, const Graph& graph, size_t min_inputs, size_t max_inputs) {
  return CheckInputsImpl(node, graph, min_inputs, max_inputs, kNoWeight);
}

Status CheckInputsWithWeight(const Node& node, const Graph& graph, size_t min_inputs,
                             size_t max_inputs, size_t weight) {
  return CheckInputsImpl(node, graph, min_inputs, max_inputs, weight);
}

namespace {

// The attribute's value when present with type T; *present tells whether it exists at all.
template <class T>
const T* FindAttr(const Node& node, const char* name, bool* present) {
  const auto& values = node.attrs.values();
  auto it = values.find(name);
  *present = it != values.end();
  return *present ? std::get_if<T>(&it->second) : nullptr;
}

Status WrongType(const Node& node, const char* name, const char* type) {
  return NodeError(node, std::string("attribute '") + name + "' must be " + type);
}

}  // namespace

Status IntAttr(const Node& node, const char* name, int64_t def, int64_t* out) {
  bool present;
  const int64_t* v = FindAttr<int64_t>(node, name, &present);
  if (present && !v) return WrongType(node, name, "an int");
  *out = v ? *v : def;
  return Status::Ok();
}

Status FloatAttr(const Node& node, const char* name, float def, float* out) {
  bool present;
  const float* v = FindAttr<float>(node, name, &present);
  if (present && !v) return WrongType(node, name, "a float");
  *out = v ? *v : def;
  return Status::Ok();
}

Status FlagAttr(const Node& node, const char* name, bool* out) {
  int64_t v;
  EI_RETURN_IF_ERROR(IntAttr(node, name, 0, &v));
  if (v != 0 && v != 1)
    return NodeError(
        node, std::string("attribute '") + name + "' must be 0 or 1, got " + std::to_string(v));
  *out = v == 1;
  return Status::Ok();
}

Status IntsAttr(const Node& node, const char* name, const std::vector<int64_t>** out) {
  bool present;
  *out = FindAttr<std::vector<int64_t>>(node, name, &present);
  if (present && !*out) return WrongType(node, name, "a list of ints");
  return Status::Ok();
}

Status ParseActivation(const Node& node, Activation* out) {
  bool present;
  if (FindAttr<std::string>(node, "activation", &present) == nullptr && present)
    return WrongType(node, "activation", "a string");
  // Activation::FromAttrs falls back to defaults on a mistyped value; reject it instead.
  for (const char* name : {"activation_alpha", "activation_min", "activation_max"}) {
    if (FindAttr<float>(node, name, &present) == nullptr && present)
      return WrongType(node, name, "a float");
  }
  Result<Activation> act = Activation::FromAttrs(node.attrs);
  if (!act.ok()) return act.status().WithContext(NodeContext(node));
  *out = *act;
  return Status::Ok();
}

Status CheckNoActivation(const Node& node) {
  if (!node.attrs.GetString("activation").empty())
    return NodeUnsupported(node, "takes no fused activation");
  return Status::Ok();
}

Status CheckSpatialInput(const Node& node, const TensorDesc& x, int* spatial) {
  const size_t rank = x.dims.size();
  if (rank != 3 && rank != 4)
    return NodeUnsupported(node,
                           "input must be [N, C, W] or [N, C, H, W], got " + DimsToString(x.dims));
  for (size_t i = 1; i < rank; ++i) {
    if (x.dims[i] <= 0)
      return NodeError(node,
                       "channel and spatial dims of the input must be literal and "
                       "positive, got " +
                           DimsToString(x.dims));
  }
  *spatial = static_cast<int>(rank) - 2;
  return Status::Ok();
}

namespace {

// Reads an optional list attribute of `len` values in [lo, kMaxWindowAttr]; absent leaves *out.
Status WindowList(const Node& node, const char* name, size_t len, int64_t lo,
                  const std::vector<int64_t>** out) {
  EI_RETURN_IF_ERROR(IntsAttr(node, name, out));
  if (!*out) return Status::Ok();
  if ((*out)->size() != len)
    return NodeError(node, std::string("attribute '") + name + "' must have " +
                               std::to_string(len) + " values, got " +
                               std::to_string((*out)->size()));
  for (int64_t v : **out) {
    if (v < lo || v > kMaxWindowAttr)
      return NodeError(node, std::string("attribute '") + name + "' has value " +
                                 std::to_string(v) + ", out of range [" + std::to_string(lo) +
                                 ", " + std::to_string(kMaxWindowAttr) + "]");
  }
  return Status::Ok();
}

}  // namespace

Status ParseWindow(const Node& node, int spatial, const int64_t* weight_kernel,
                   bool allow_dilations, WindowAxis* axes) {
  const std::string auto_pad = node.attrs.GetString("auto_pad", "NOTSET");
  if (auto_pad != "NOTSET" && !auto_pad.empty())
    return NodeUnsupported(node, "auto_pad '" + auto_pad + "' must be resolved into pads");
  const size_t n = static_cast<size_t>(spatial);
  const std::vector<int64_t>*kernel, *strides, *dilations, *pads;
  EI_RETURN_IF_ERROR(WindowList(node, "kernel_shape", n, 1, &kernel));
  EI_RETURN_IF_ERROR(WindowList(node, "strides", n, 1, &strides));
  EI_RETURN_IF_ERROR(WindowList(node, "dilations", n, 1, &dilations));
  EI_RETURN_IF_ERROR(WindowList(node, "pads", 2 * n, 0, &pads));
  if (!kernel && !weight_kernel) return NodeError(node, "attribute 'kernel_shape' is required");
  for (size_t i = 0; i < n; ++i) {
    WindowAxis& a = axes[i];
    a.kernel = weight_kernel ? weight_kernel[i] : (*kernel)[i];
    if (kernel && (*kernel)[i] != a.kernel)
      return NodeError(node, "kernel_shape does not match the weight's spatial dims");
    a.stride = strides ? (*strides)[i] : 1;
    a.dilation = dilations ? (*dilations)[i] : 1;
    if (!allow_dilations && a.dilation != 1) return NodeUnsupported(node, "dilations must be 1");
    a.pad_begin = pads ? (*pads)[i] : 0;
    a.pad_end = pads ? (*pads)[i + n] : 0;
  }
  return Status::Ok();
}

namespace {

// ONNX output length of one axis.
Status OutputLength(const Node& node, int64_t in, const WindowAxis& a, bool ceil_mode,
                    int64_t* out) {
  const int64_t room = in + a.pad_begin + a.pad_end - a.span();
  if (room < 0)
    return NodeError(node, "window (span " + std::to_string(a.span()) +
                               ") is larger than the padded input (" +
                               std::to_string(in + a.pad_begin + a.pad_end) + ")");
  int64_t len = (ceil_mode ? (room + a.stride - 1) / a.stride : room / a.stride) + 1;
  // ONNX: with ceil_mode a last window starting in the right padding is dropped.
  if (ceil_mode && (len - 1) * a.stride >= in + a.pad_begin) --len;
  *out = len;
  return Status::Ok();
}

}  // namespace

Status SpatialOutput(const Node& node, const Dims& x, int spatial, const WindowAxis* axes,
                     bool ceil_mode, Dims* out) {
  int64_t plane = 1;
  for (int i = 0; i < spatial; ++i) {
    int64_t len = 0;
    EI_RETURN_IF_ERROR(OutputLength(node, x[2 + i], axes[i], ceil_mode, &len));
    out->push_back(len);
    // Every factor is below 2^34 (dims and window attributes are below 2^31).
    const int64_t extent = (len - 1) * axes[i].stride + axes[i].span();
    if (extent > kMaxPlane / plane)
      return NodeUnsupported(node, "the windows cover more than 2^31 elements per plane");
    plane *= extent;
  }
  return Status::Ok();
}

PlaneGeom MakePlaneGeom(const Shape& x, const Shape& y, const WindowAxis& h, const WindowAxis& w) {
  PlaneGeom g;
  g.h = h;
  g.w = w;
  g.in_w = x[x.rank - 1];
  g.out_w = y[y.rank - 1];
  if (x.rank == 4) {
    g.in_h = x[2];
    g.out_h = y[2];
  }
  return g;
}

}  // namespace nn

std::span<const OpDef> NnOps() {
  static const OpDef kOps[] = {
      {"Conv", nn::InferConv, nn::CreateConv},
      {"Gemm", nn::InferGemm, nn::CreateGemm},
      {"MatMul", nn::InferMatMul, nn::CreateMatMul},
      {"MaxPool", nn::InferMaxPool, nn::CreateMaxPool},
      {"AveragePool", nn::InferAveragePool, nn::CreateAveragePool},
      {"GlobalAveragePool", nn::InferGlobalPool, nn::CreateGlobalAveragePool},
      {"GlobalMaxPool", nn::InferGlobalPool, nn::CreateGlobalMaxPool},
      {"BatchNormalization", nn::InferBatchNorm, nn::CreateBatchNorm},
  };
  return kOps;
}

}  // namespace edgeinfer
