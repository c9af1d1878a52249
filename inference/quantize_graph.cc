#include "inference/quantize_graph.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <set>

#include "inference/graph_json.h"
#include "inference/model.h"
#include "inference/op.h"
#include "inference/pack_weights.h"
#include "inference/quant/quantize.h"
#include "inference/quant/weight_format.h"

namespace edgeinfer {

namespace {

constexpr const char* kPrecisionNames[] = {"fp32", "fp16", "int8", "int4", "int8-static"};
constexpr int kNumPrecisions = 5;

// What a layer is, as far as quantization goes.
struct Layer {
  size_t node = 0;
  int weight = -1;                  // tensor index of B / W
  int64_t n = 0, k = 0;             // the weight as a matrix [N, K] (after any transposition)
  bool transpose = false;           // Gemm with transB = 0: B [K, N] is stored transposed
  float scale = 1.f;                // Gemm alpha, folded into the weight
  int64_t conv_rows_per_group = 0;  // Conv: M / group; 0 for Gemm
  std::string cannot;  // why it stays fp32 whatever is asked (empty: it can be quantized)
  bool logits = false;
};

bool IsLayerOp(const std::string& op) { return op == "Gemm" || op == "Conv"; }

// Fills what QuantizeGraph needs to know about a Gemm or Conv node.
Layer DescribeLayer(const Graph& g, size_t index) {
  const Node& node = g.nodes[index];
  Layer l;
  l.node = index;
  l.weight = node.inputs.size() > 1 ? node.inputs[1] : -1;
  const TensorDesc* w = l.weight >= 0 ? &g.tensors[l.weight] : nullptr;
  if (w == nullptr || !w->is_constant()) {
    l.cannot = "weight is not a constant";
    return l;
  }
  if (w->dtype != DType::kFloat32) {
    l.cannot = std::string("weight is already ") + DTypeName(w->dtype);
    return l;
  }
  if (node.op == "Gemm") {
    if (node.attrs.GetInt("transA", 0) != 0) {
      l.cannot = "transA = 1";
      return l;
    }
    l.transpose = node.attrs.GetInt("transB", 0) == 0;
    l.scale = node.attrs.GetFloat("alpha", 1.f);
    l.n = w->dims[l.transpose ? 1 : 0];
    l.k = w->dims[l.transpose ? 0 : 1];
  } else {
    const TensorDesc& x = g.tensors[node.inputs[0]];
    const int64_t group = node.attrs.GetInt("group", 1);
    const int64_t c = x.dims[1];
    if (group == c && c > 1) {
      l.cannot = "depthwise (direct kernel)";
      return l;
    }
    (void)quant::WeightMatrix(w->dims, &l.n, &l.k);  // validated by the op
    l.conv_rows_per_group = l.n / group;
  }
  if (l.k > quant::kMaxQuantK)
    l.cannot = "K = " + std::to_string(l.k) + " exceeds " + std::to_string(quant::kMaxQuantK);
  return l;
}

// Marks the layers whose output reaches a graph output through no other Gemm/Conv.
void MarkLogitsLayers(const Graph& g, std::vector<Layer>* layers) {
  std::vector<char> to_output(g.tensors.size(), 0);
  for (int o : g.outputs) to_output[o] = 1;
  std::vector<char> is_logits(g.nodes.size(), 0);
  for (size_t i = g.nodes.size(); i-- > 0;) {
    const Node& n = g.nodes[i];
    bool reaches = false;
    for (int o : n.outputs) reaches |= to_output[o] != 0;
    if (!reaches) continue;
    if (IsLayerOp(n.op)) {
      is_logits[i] = 1;
      continue;  // the path stops at a layer
    }
    for (int t : n.inputs)
      if (t >= 0) to_output[t] = 1;
  }
  for (Layer& l : *layers) l.logits = is_logits[l.node] != 0;
}

// Gemm's C is absent, or a constant float [N] / [1, N] added with beta 1: QGemm's bias.
bool BiasRowC(const Graph& g, const Node& node, int64_t n) {
  if (node.inputs.size() < 3 || node.inputs[2] < 0) return true;
  const TensorDesc& c = g.tensors[node.inputs[2]];
  const bool row = (c.dims.size() == 1 && c.dims[0] == n) ||
                   (c.dims.size() == 2 && c.dims[0] == 1 && c.dims[1] == n);
  return row && c.is_constant() && c.dtype == DType::kFloat32 &&
         node.attrs.GetFloat("beta", 1.f) == 1.f;
}

struct Decision {
  Precision precision = Precision::kFp32;
  std::string note;
};

Decision Decide(const Layer& l, const Graph& g, const QuantizeOptions& o) {
  const Node& node = g.nodes[l.node];
  const auto keep = o.keep.find(node.name);
  if (keep != o.keep.end()) return {keep->second, "--keep"};
  if (o.precision == Precision::kFp32) return {};
  if (!l.cannot.empty()) return {Precision::kFp32, l.cannot};
  if (l.n * l.k < o.min_weights)
    return {Precision::kFp32,
            "small: " + std::to_string(l.n * l.k) + " weights < " + std::to_string(o.min_weights)};
  Decision d{o.precision, ""};
  if (o.precision == Precision::kInt4 && l.logits && o.logits_int4 != Precision::kInt4)
    d = {o.logits_int4, "logits layer"};
  if (o.precision == Precision::kInt8 && node.op == "Conv" && o.conv_int8 != Precision::kInt8)
    d = {o.conv_int8, std::string("conv: ") + PrecisionName(o.conv_int8) + " asked for convs"};
  if (o.precision == Precision::kInt8 && d.precision == Precision::kInt8 && node.op == "Conv" &&
      l.k < o.min_int8_conv_k)
    d = {Precision::kFp32, "conv K = " + std::to_string(l.k) + " < " +
                               std::to_string(o.min_int8_conv_k) + ": fp32 is faster"};
  if (o.precision == Precision::kInt8Static && node.op == "Conv" &&
      o.conv_int8_static != Precision::kInt8Static)
    d = {o.conv_int8_static, "conv: static int8 no faster than fp32 sgemm"};
  if (d.precision == Precision::kInt8Static && node.op == "Conv" && l.k < o.min_static_conv_k)
    d = {Precision::kFp32, "conv K = " + std::to_string(l.k) + " < " +
                               std::to_string(o.min_static_conv_k) + ": fp32 is faster"};
  if (d.precision == Precision::kInt8Static && node.op == "Gemm" && !BiasRowC(g, node, l.n))
    d = {Precision::kInt8, "C is not a constant bias row"};
  if (d.precision == Precision::kInt4 && l.conv_rows_per_group % quant::kQ4RowGroup != 0 &&
      g.nodes[l.node].attrs.GetInt("group", 1) > 1)
    d = {Precision::kInt8, "grouped conv: M/group not a multiple of 8"};
  return d;
}

// The float weight as the row-major matrix [N, K] the quantizers take: transposed and scaled
// when the Gemm needs it, else the tensor's own bytes; `ohwi`: a Conv's [M, C/g, k...] rows
// reordered to [M, k..., C/g] (the order of the int8 im2row of QConv and the dynamic Conv).
std::vector<float> WeightRows(const TensorDesc& w, const Layer& l, bool ohwi) {
  const auto* src = static_cast<const float*>(w.data);
  std::vector<float> rows(static_cast<size_t>(l.n * l.k));
  const int64_t cg = ohwi ? w.dims[1] : 1, taps = l.k / cg;
  for (int64_t r = 0; r < l.n; ++r)
    for (int64_t c = 0; c < l.k; ++c) {
      if (ohwi) {
        rows[r * l.k + (c % taps) * cg + c / taps] = src[r * l.k + c];
        continue;
      }
      rows[r * l.k + c] = l.scale * (l.transpose ? src[c * l.n + r] : src[r * l.k + c]);
    }
  return rows;
}

// QConv's weight dims: [M, C/g, k...] -> [M, k..., C/g].
Dims OhwiDims(const Dims& d) {
  Dims out = {d[0]};
  out.insert(out.end(), d.begin() + 2, d.end());
  out.push_back(d[1]);
  return out;
}

std::shared_ptr<void> AlignedBlob(size_t bytes) {
  void* p = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
  return std::shared_ptr<void>(p, [](void* q) { std::free(q); });
}

// Rewrites layer `l` of `g` to store its weight at `p` (not fp32): a new blob, the weight tensor
// replaced in place when this node is its only reader, else a new tensor.
Status StoreWeight(const Layer& l, Precision p, Graph* g) {
  Node& node = g->nodes[l.node];
  const TensorDesc& w = g->tensors[l.weight];
  const quant::WeightFormat format = p == Precision::kFp16 ? quant::WeightFormat::kFp16
                                     : p == Precision::kInt8 || p == Precision::kInt8Static
                                         ? quant::WeightFormat::kInt8
                                         : quant::WeightFormat::kQ4;
  TensorDesc q;
  q.name = w.name;
  q.dtype = quant::WeightDType(format);
  // Integer conv weights are stored OHWI, the order the int8 im2row writes a patch in; a Conv
  // (not QConv, which always reads OHWI) says so in weight_layout, so files written before,
  // with OIHW integer weights, still run (conv.cc).
  const bool ohwi = node.op == "Conv" && p != Precision::kFp16;
  if (ohwi && p != Precision::kInt8Static) node.attrs.Set("weight_layout", std::string("ohwi"));
  q.dims = node.op == "Gemm" ? Dims{l.n, l.k} : ohwi ? OhwiDims(w.dims) : w.dims;
  // The size every reader of the graph checks (ValidateGraph, the .eim writer and reader).
  Result<uint64_t> size = ConstantBytes(q.dtype, q.dims);
  if (!size.ok()) return size.status().WithContext(NodeContext(node));
  q.bytes = static_cast<size_t>(*size);
  const std::vector<float> rows = WeightRows(w, l, ohwi);
  std::shared_ptr<void> blob = AlignedBlob(q.bytes);
  quant::QuantizeWeights(format, rows.data(), l.n, l.k, blob.get());
  q.data = blob.get();
  g->owned.push_back(std::move(blob));

  int readers = 0;
  for (const Node& other : g->nodes)
    for (int t : other.inputs) readers += t == l.weight;
  for (int o : g->outputs) readers += o == l.weight;
  if (readers == 1) {
    g->tensors[l.weight] = std::move(q);
  } else {
    q.name.append(":").append(PrecisionName(p));
    node.inputs[1] = g->AddTensor(std::move(q));
  }
  if (node.op == "Gemm") {
    node.attrs.Set("transB", int64_t{1});
    node.attrs.Set("alpha", 1.f);
  }
  return Status::Ok();
}

Status CheckKeep(const Graph& g, const std::vector<Layer>& layers, const QuantizeOptions& o) {
  for (const auto& [name, p] : o.keep) {
    const Layer* found = nullptr;
    for (const Layer& l : layers)
      if (g.nodes[l.node].name == name) found = &l;
    if (found == nullptr)
      return Status::InvalidArgument("--keep " + name + ": no Gemm or Conv node of that name");
    if (p != Precision::kFp32 && !found->cannot.empty())
      return Status::InvalidArgument("--keep " + name + "=" + PrecisionName(p) +
                                     ": the layer stays fp32 (" + found->cannot + ")");
    if (p == Precision::kInt4 && found->conv_rows_per_group % quant::kQ4RowGroup != 0 &&
        g.nodes[found->node].attrs.GetInt("group", 1) > 1)
      return Status::InvalidArgument("--keep " + name +
                                     "=int4: grouped conv with M/group not a multiple of 8");
  }
  return Status::Ok();
}

// --- int8-static: QGemm / QConv, int8 tensors between them, QMaxPool inside int8 regions ---

float ScaleOf(float threshold) { return threshold > 0.f ? threshold / quant::kInt8Max : 1.f; }

Result<float> ThresholdOf(const Graph& g, int tensor, const QuantizeOptions& o) {
  const std::string& name = g.tensors[tensor].name;
  const auto it = o.thresholds->find(name);
  if (it == o.thresholds->end() || !std::isfinite(it->second) || it->second < 0.f)
    return Status::InvalidArgument("int8-static: no calibrated range for tensor '" + name + "'");
  return it->second;
}

// Whether output `root` of a static layer can stay int8: every reader, through MaxPools and
// Reshapes, is the X of a static layer, and no tensor on the way is a graph output. Fills the
// pools and reshapes on the way, and the readers.
bool Int8Region(const Graph& g, int root, const std::vector<char>& is_static,
                std::vector<size_t>* pools, std::vector<size_t>* consumers) {
  std::vector<char> is_output(g.tensors.size(), 0);
  for (int o : g.outputs) is_output[o] = 1;
  std::vector<int> frontier = {root};
  while (!frontier.empty()) {
    const int t = frontier.back();
    frontier.pop_back();
    if (is_output[t]) return false;
    int readers = 0;
    for (size_t j = 0; j < g.nodes.size(); ++j) {
      const Node& n = g.nodes[j];
      for (size_t i = 0; i < n.inputs.size(); ++i) {
        if (n.inputs[i] != t) continue;
        ++readers;
        if (is_static[j] && i == 0) {
          consumers->push_back(j);
        } else if (i == 0 && ((n.op == "MaxPool" && n.attrs.GetString("activation").empty()) ||
                              n.op == "Reshape")) {
          pools->push_back(j);
          frontier.push_back(n.outputs[0]);
        } else {
          return false;
        }
      }
    }
    if (readers == 0) return false;
  }
  return true;
}

// Renames the static layers' ops, sets their scales from the thresholds and makes int8 every
// region between static layers (see the header comment).
Status RewriteStatic(const std::vector<Layer>& layers, const QuantizeOptions& o, Graph* g,
                     std::vector<LayerPlan>* plan) {
  if (o.thresholds == nullptr)
    return Status::InvalidArgument("int8-static needs calibrated ranges (--calibration)");
  std::vector<char> is_static(g->nodes.size(), 0);
  std::vector<LayerPlan*> plan_of(g->nodes.size(), nullptr);
  for (size_t i = 0; i < layers.size(); ++i) {
    plan_of[layers[i].node] = &(*plan)[i];
    is_static[layers[i].node] = (*plan)[i].precision == Precision::kInt8Static;
  }
  std::vector<float> x_scale(g->nodes.size(), 0.f);
  std::vector<char> int8_in(g->nodes.size(), 0);
  for (const Layer& l : layers) {
    if (!is_static[l.node]) continue;
    const int out = g->nodes[l.node].outputs[0];
    std::vector<size_t> pools, consumers;
    if (!Int8Region(*g, out, is_static, &pools, &consumers)) continue;
    EI_ASSIGN_OR_RETURN(const float t, ThresholdOf(*g, out, o));
    const float scale = ScaleOf(t);
    g->nodes[l.node].attrs.Set("y_scale", scale);
    plan_of[l.node]->y_scale = scale;
    for (size_t p : pools) g->nodes[p].op = g->nodes[p].op == "MaxPool" ? "QMaxPool" : "QReshape";
    for (size_t c : consumers) {
      x_scale[c] = scale;
      int8_in[c] = 1;
    }
  }
  for (const Layer& l : layers) {
    if (!is_static[l.node]) continue;
    Node& node = g->nodes[l.node];
    if (!int8_in[l.node]) {
      EI_ASSIGN_OR_RETURN(const float t, ThresholdOf(*g, node.inputs[0], o));
      x_scale[l.node] = ScaleOf(t);
    }
    node.attrs.Set("x_scale", x_scale[l.node]);
    plan_of[l.node]->x_scale = x_scale[l.node];
    plan_of[l.node]->int8_input = int8_in[l.node] != 0;
    if (node.op == "Gemm") {
      node.op = "QGemm";
      for (const char* a : {"transA", "transB", "alpha", "beta"}) node.attrs.Erase(a);
      if (node.inputs.size() > 2 && node.inputs[2] >= 0 &&
          g->tensors[node.inputs[2]].dims.size() == 2) {
        TensorDesc bias = g->tensors[node.inputs[2]];  // [1, N] -> [N], the same bytes
        bias.dims = {l.n};
        bias.name += ":row";
        node.inputs[2] = g->AddTensor(std::move(bias));
      }
    } else {
      node.op = "QConv";
    }
  }
  return Status::Ok();
}

}  // namespace

std::vector<std::string> CalibrationTensors(const Graph& g) {
  std::set<std::string> names;
  for (const Node& n : g.nodes) {
    if (!IsLayerOp(n.op) || n.inputs.empty() || n.inputs[0] < 0) continue;
    for (int t : {n.inputs[0], n.outputs[0]})
      if (g.tensors[t].dtype == DType::kFloat32 && !g.tensors[t].is_constant())
        names.insert(g.tensors[t].name);
  }
  return {names.begin(), names.end()};
}

const char* PrecisionName(Precision p) { return kPrecisionNames[static_cast<int>(p)]; }

bool ParsePrecision(std::string_view name, Precision* out) {
  for (int i = 0; i < kNumPrecisions; ++i) {
    if (name == kPrecisionNames[i]) {
      *out = static_cast<Precision>(i);
      return true;
    }
  }
  return false;
}

Result<Graph> QuantizeGraph(const Graph& g, const QuantizeOptions& options,
                            std::vector<LayerPlan>* plan) {
  std::vector<Layer> layers;
  for (size_t i = 0; i < g.nodes.size(); ++i)
    if (IsLayerOp(g.nodes[i].op)) layers.push_back(DescribeLayer(g, i));
  MarkLogitsLayers(g, &layers);
  EI_RETURN_IF_ERROR(CheckKeep(g, layers, options));

  Graph out = g;  // shares the constant data (and its owners) of `g`
  plan->clear();
  for (const Layer& l : layers) {
    const Decision d = Decide(l, g, options);
    Node& node = out.nodes[l.node];
    LayerPlan entry;
    entry.node = node.name;
    entry.op = node.op;
    entry.precision = d.precision;
    entry.note = d.note;
    const TensorDesc* w = l.weight >= 0 ? &g.tensors[l.weight] : nullptr;
    const bool constant = w != nullptr && w->is_constant();
    entry.bytes_before = constant ? w->bytes : 0;
    if (d.precision != Precision::kFp32) EI_RETURN_IF_ERROR(StoreWeight(l, d.precision, &out));
    const TensorDesc* stored = l.weight >= 0 ? &out.tensors[node.inputs[1]] : nullptr;
    entry.bytes_after = constant ? stored->bytes : 0;
    entry.weight_dtype = stored != nullptr ? DTypeName(stored->dtype) : "";
    const char* stored_precision =
        stored != nullptr ? quant::WeightPrecisionName(stored->dtype) : "fp32";
    node.attrs.Set("precision", std::string(stored_precision ? stored_precision : "fp32"));
    if (stored_precision != nullptr && d.precision != Precision::kInt8Static)
      ParsePrecision(stored_precision, &entry.precision);
    plan->push_back(std::move(entry));
  }
  if (options.precision == Precision::kInt8Static)
    EI_RETURN_IF_ERROR(RewriteStatic(layers, options, &out, plan));
  EI_RETURN_IF_ERROR(ValidateGraph(&out, /*check_stored_dims=*/false));
  if (options.pack_fp32_dense) EI_RETURN_IF_ERROR(PackDenseWeights(&out));
  return out;
}

}  // namespace edgeinfer
