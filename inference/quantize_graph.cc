#include "inference/quantize_graph.h"

#include "inference/pack_weights.h"

#include <cstdlib>
#include <cstring>
#include <memory>
#include <set>

#include "inference/graph_json.h"
#include "inference/model.h"
#include "inference/op.h"
#include "inference/quant/quantize.h"
#include "inference/quant/weight_format.h"

namespace edgeinfer {

namespace {

constexpr const char* kPrecisionNames[] = {"fp32", "fp16", "int8", "int4"};

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
    d = {o.conv_int8, "conv: int8 no faster than fp32 sgemm"};
  if (d.precision == Precision::kInt4 && l.conv_rows_per_group % quant::kQ4RowGroup != 0 &&
      g.nodes[l.node].attrs.GetInt("group", 1) > 1)
    d = {Precision::kInt8, "grouped conv: M/group not a multiple of 8"};
  return d;
}

// The float weight as the row-major matrix [N, K] the quantizers take: transposed and scaled
// when the Gemm needs it, else the tensor's own bytes.
std::vector<float> WeightRows(const TensorDesc& w, const Layer& l) {
  const auto* src = static_cast<const float*>(w.data);
  std::vector<float> rows(static_cast<size_t>(l.n * l.k));
  for (int64_t r = 0; r < l.n; ++r)
    for (int64_t c = 0; c < l.k; ++c)
      rows[r * l.k + c] = l.scale * (l.transpose ? src[c * l.n + r] : src[r * l.k + c]);
  return rows;
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
  const quant::WeightFormat format = p == Precision::kFp16   ? quant::WeightFormat::kFp16
                                     : p == Precision::kInt8 ? quant::WeightFormat::kInt8
                                                             : quant::WeightFormat::kQ4;
  TensorDesc q;
  q.name = w.name;
  q.dtype = quant::WeightDType(format);
  q.dims = node.op == "Gemm" ? Dims{l.n, l.k} : w.dims;
  // The size every reader of the graph checks (ValidateGraph, the .eim writer and reader).
  Result<uint64_t> size = ConstantBytes(q.dtype, q.dims);
  if (!size.ok()) return size.status().WithContext(NodeContext(node));
  q.bytes = static_cast<size_t>(*size);
  const std::vector<float> rows = WeightRows(w, l);
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

}  // namespace

const char* PrecisionName(Precision p) { return kPrecisionNames[static_cast<int>(p)]; }

bool ParsePrecision(std::string_view name, Precision* out) {
  for (int i = 0; i < 4; ++i) {
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
    if (stored_precision != nullptr) ParsePrecision(stored_precision, &entry.precision);
    plan->push_back(std::move(entry));
  }
  EI_RETURN_IF_ERROR(ValidateGraph(&out, /*check_stored_dims=*/false));
  if (options.pack_fp32_dense) EI_RETURN_IF_ERROR(PackDenseWeights(&out));
  return out;
}

}  // namespace edgeinfer
