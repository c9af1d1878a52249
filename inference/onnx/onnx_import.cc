// The ONNX import driver: parse, check, read the interface, lower node by node, optimize,
// validate. Per-op work lives in the lowering table (onnx_lower*.cc); graph rewrites in
// graph_passes.h.
#include "inference/onnx/onnx_import.h"

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "inference/model.h"
#include "inference/onnx/graph_edit.h"
#include "inference/onnx/graph_passes.h"
#include "inference/onnx/onnx_lower.h"
#include "inference/onnx/onnx_model_info.h"
#include "inference/onnx/onnx_tensor.h"
#include "onnx/checker.h"
#include "onnx/shape_inference/implementation.h"

namespace edgeinfer {

namespace {

constexpr int kMinOpset = 11;
constexpr int kMaxOpset = 17;
// Keeps all later dim arithmetic far from int64 overflow (the graph validator allows < 2^31).
constexpr int64_t kMaxInputDim = int64_t{1} << 31;

Result<onnx::ModelProto> Parse(const std::string& bytes) {
  onnx::ModelProto m;
  if (bytes.empty() || !m.ParseFromString(bytes))
    return Status::InvalidArgument("not an ONNX model: the bytes do not parse as a ModelProto");
  if (m.ir_version() <= 0 || !m.has_graph() || m.opset_import_size() == 0)
    return Status::InvalidArgument("not an ONNX model: no ir_version, graph or opset_import");
  return m;
}

Result<int> DefaultOpset(const onnx::ModelProto& m) {
  for (const auto& o : m.opset_import()) {
    if (!o.domain().empty() && o.domain() != "ai.onnx") continue;
    if (o.version() < kMinOpset || o.version() > kMaxOpset)
      return Status::Unsupported("opset " + std::to_string(o.version()) +
                                 " of the default ONNX domain is not supported (" +
                                 std::to_string(kMinOpset) + " to " + std::to_string(kMaxOpset) +
                                 ")");
    return static_cast<int>(o.version());
  }
  return Status::InvalidArgument("the model imports no opset of the default ONNX domain");
}

Status RunOnnxChecks(onnx::ModelProto* m) {
  try {
    onnx::checker::check_model(*m);
    onnx::ShapeInferenceOptions strict(/*check_type=*/true, /*error_mode=*/1);
    onnx::shape_inference::InferShapes(*m, onnx::OpSchemaRegistry::Instance(), strict);
  } catch (const std::exception& e) {
    return Status::InvalidArgument(std::string("ONNX checker: ") + e.what());
  }
  return Status::Ok();
}

// A dynamic (dim_param or unknown) dim 0 is the batch; any other dynamic dim is refused.
Result<Dims> InputDims(const onnx::ValueInfoProto& v) {
  const std::string what = "input '" + v.name() + "'";
  if (!v.type().has_tensor_type()) return Status::Unsupported(what + " is not a tensor");
  const auto& tt = v.type().tensor_type();
  if (tt.elem_type() != onnx::TensorProto::FLOAT)
    return Status::Unsupported(what + " has type " + OnnxTypeName(tt.elem_type()) +
                               "; only float32 inputs are supported");
  if (!tt.has_shape()) return Status::Unsupported(what + " has no shape; its rank must be known");
  Dims dims;
  for (int i = 0; i < tt.shape().dim_size(); ++i) {
    const auto& d = tt.shape().dim(i);
    if (d.has_dim_value() && (d.dim_value() < 0 || d.dim_value() > kMaxInputDim)) {
      return Status::InvalidArgument(what + ": dim " + std::to_string(i) + " is " +
                                     std::to_string(d.dim_value()));
    } else if (d.has_dim_value()) {
      dims.push_back(d.dim_value());
    } else if (i == 0) {
      dims.push_back(kBatchDim);
    } else {
      return Status::Unsupported(what + ": dim " + std::to_string(i) + " ('" + d.dim_param() +
                                 "') is dynamic; only dim 0 (the batch) may be");
    }
  }
  return dims;
}

Status AddInputs(const onnx::GraphProto& gp, LowerContext& cx) {
  std::set<std::string> initializers;
  for (const auto& t : gp.initializer()) initializers.insert(t.name());
  for (const auto& v : gp.input()) {
    if (initializers.count(v.name())) continue;  // old exporters list weights as inputs too
    EI_ASSIGN_OR_RETURN(Dims dims, InputDims(v));
    TensorDesc t;
    t.name = v.name();
    t.dims = dims;
    int index = cx.graph().AddTensor(t);
    cx.graph().inputs.push_back(index);
    cx.BindTensor(v.name(), index);
  }
  // An initializer that cannot be imported fails the import only if a node reads it.
  for (const auto& t : gp.initializer()) {
    Status s = BindOnnxConstant(cx, t.name(), t);
    if (!s.ok()) cx.BindRefused(t.name(), s.WithContext("initializer"));
  }
  return Status::Ok();
}

std::set<std::string> UsedValues(const onnx::GraphProto& gp) {
  std::set<std::string> used;
  for (const auto& n : gp.node())
    for (const auto& in : n.input()) used.insert(in);
  for (const auto& o : gp.output()) used.insert(o.name());
  return used;
}

bool IsDefaultDomain(const onnx::NodeProto& n) {
  return n.domain().empty() || n.domain() == "ai.onnx";
}

std::string NodeLabel(const onnx::NodeProto& n) {
  std::string op = IsDefaultDomain(n) ? n.op_type() : n.domain() + "." + n.op_type();
  return "node '" + n.name() + "' (" + op + ")";
}

// Names unnamed nodes "<OpType>_<index>" so that every error can name its node.
void NameNodes(onnx::GraphProto* gp) {
  for (int i = 0; i < gp->node_size(); ++i) {
    onnx::NodeProto* n = gp->mutable_node(i);
    if (n->name().empty()) n->set_name(n->op_type() + "_" + std::to_string(i));
  }
}

// Output 0 must be there, except for the recurrent ops, whose Y is optional (Y_h alone is
// common).
bool HasOutput(const onnx::NodeProto& n) {
  const bool recurrent = n.op_type() == "LSTM" || n.op_type() == "GRU" || n.op_type() == "RNN";
  for (int i = 0; i < n.output_size() && (i == 0 || recurrent); ++i)
    if (!n.output(i).empty()) return true;
  return false;
}

// Refuses nodes the importer cannot lower, before ONNX's shape inference runs on them, and
// window attributes below 1: ONNX 1.12's inference divides by strides unchecked.
Status PrecheckNodes(const onnx::GraphProto& gp) {
  for (const auto& n : gp.node()) {
    if (!IsDefaultDomain(n) || !FindLowering(n.op_type()))
      return Status::Unsupported(NodeLabel(n) + ": unsupported op");
    if (!HasOutput(n)) return Status::InvalidArgument(NodeLabel(n) + ": the node has no output");
    for (const auto& a : n.attribute()) {
      bool window = a.name() == "strides" || a.name() == "dilations" || a.name() == "kernel_shape";
      for (int64_t v : a.ints())
        if (window && v < 1)
          return Status::InvalidArgument(NodeLabel(n) + ": '" + a.name() + "' must be >= 1");
    }
  }
  return Status::Ok();
}

Status LowerNodes(const onnx::GraphProto& gp, LowerContext& cx) {
  for (const auto& n : gp.node()) {
    Status s = FindLowering(n.op_type())->lower(n, cx);
    // An internal op's infer error may already name this node and op; don't say it twice.
    if (!s.ok() && s.message().rfind(NodeLabel(n), 0) != 0) return s.WithContext(NodeLabel(n));
    EI_RETURN_IF_ERROR(s);
  }
  return Status::Ok();
}

Status BindOutputs(const onnx::GraphProto& gp, LowerContext& cx) {
  for (const auto& o : gp.output()) {
    int type = o.type().tensor_type().elem_type();
    if (type != onnx::TensorProto::FLOAT && type != onnx::TensorProto::UNDEFINED)
      return Status::Unsupported("output '" + o.name() + "' has type " + OnnxTypeName(type) +
                                 "; only float32 outputs are supported");
    int t = cx.TensorOf(o.name());
    if (t < 0)
      return Status::Unsupported("output '" + o.name() +
                                 "' is not a float tensor computed by the graph");
    cx.graph().outputs.push_back(t);
  }
  return Status::Ok();
}

// Graph outputs carry their ONNX names. An output that is a graph input, a constant or another
// output already gets a Copy node, since every output must be written by a node of its own.
void MaterializeOutputs(const onnx::GraphProto& gp, Graph* g) {
  std::vector<int> producers = Producers(*g);
  std::set<int> seen;
  for (size_t i = 0; i < g->outputs.size(); ++i) {
    int t = g->outputs[i];
    const std::string& name = gp.output(static_cast<int>(i)).name();
    if (producers[t] >= 0 && seen.insert(t).second) {
      g->tensors[t].name = name;
      continue;
    }
    TensorDesc out = g->tensors[t];
    out.name = UniqueTensorName(*g, name);
    out.data = nullptr;
    out.bytes = 0;
    Node copy;
    copy.name = name + "/copy";
    copy.op = "Copy";
    copy.inputs = {t};
    copy.outputs = {g->AddTensor(out)};
    g->outputs[i] = copy.outputs[0];
    g->nodes.push_back(copy);
  }
}

Result<Graph> Import(const std::string& bytes, const OnnxImportOptions& options,
                     const std::string& fallback_name) {
  EI_ASSIGN_OR_RETURN(onnx::ModelProto m, Parse(bytes));
  EI_ASSIGN_OR_RETURN(int opset, DefaultOpset(m));
  onnx::GraphProto* gp = m.mutable_graph();
  NameNodes(gp);
  EI_RETURN_IF_ERROR(PrecheckNodes(*gp));
  if (options.run_checker) EI_RETURN_IF_ERROR(RunOnnxChecks(&m));
  Graph g;
  EI_ASSIGN_OR_RETURN(g.info, ReadOnnxModelInfo(m, bytes, fallback_name));
  LowerContext cx(&g, opset, UsedValues(*gp));
  EI_RETURN_IF_ERROR(AddInputs(*gp, cx));
  EI_RETURN_IF_ERROR(LowerNodes(*gp, cx));
  EI_RETURN_IF_ERROR(BindOutputs(*gp, cx));
  if (options.optimize) {
    EI_RETURN_IF_ERROR(OptimizeGraph(&g));
  } else {
    RemoveDeadCode(&g);
  }
  MaterializeOutputs(*gp, &g);
  EI_RETURN_IF_ERROR(ValidateGraph(&g, /*check_stored_dims=*/false));
  return g;
}

Result<Graph> ImportGuarded(const std::string& bytes, const OnnxImportOptions& options,
                            const std::string& fallback_name) {
  try {
    return Import(bytes, options, fallback_name);
  } catch (const std::exception& e) {  // bad input must never abort (e.g. bad_alloc)
    return Status::InvalidArgument(std::string("ONNX import failed: ") + e.what());
  }
}

}  // namespace

Result<Graph> ImportOnnxFile(const std::string& path, const OnnxImportOptions& options) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return Status::IOError("open '" + path + "'", errno);
  std::ostringstream bytes;
  bytes << f.rdbuf();
  if (f.bad()) return Status::IOError("read '" + path + "'", errno);
  std::string stem = std::filesystem::path(path).stem().string();
  Result<Graph> g = ImportGuarded(bytes.str(), options, stem);
  if (!g.ok()) return g.status().WithContext(path);
  return g;
}

Result<Graph> ImportOnnxBytes(const std::string& bytes, const OnnxImportOptions& options) {
  return ImportGuarded(bytes, options, "model");
}

}  // namespace edgeinfer
