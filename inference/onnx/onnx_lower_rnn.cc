// Lowering of LSTM, GRU and RNN into the internal ops of the same names (docs/ops.md). The
// internal ops keep ONNX's inputs and weight layout; the importer resolves what a kernel should
// not see: activations must be the defaults, a constant sequence_lens equal to the sequence
// length is dropped (shorter sequences are refused), and an initial state that is all zeros
// (torch exports ConstantOfShape zeros over the batch) is dropped, since absent means zeros.
// Expand is here too: it is how torch makes that zero state for a static batch (other Expands
// become an internal Expand node).
// The internal node always has all outputs (Y, Y_h and, for LSTM, Y_c); unused ones are
// computed into buffers nobody reads.
#include <algorithm>
#include <cctype>
#include <string>
#include <vector>

#include "inference/onnx/const_eval.h"
#include "inference/onnx/graph_edit.h"
#include "inference/onnx/onnx_attrs.h"
#include "inference/onnx/onnx_lower.h"

namespace edgeinfer {

namespace {

using onnx::NodeProto;

struct CellInfo {
  const char* op;
  std::vector<std::string> activations;  // the defaults, per direction
  int num_outputs;
  int max_inputs;
};

const CellInfo& InfoOf(const std::string& op) {
  static const CellInfo kLstm{"LSTM", {"Sigmoid", "Tanh", "Tanh"}, 3, 8};
  static const CellInfo kGru{"GRU", {"Sigmoid", "Tanh"}, 2, 6};
  static const CellInfo kRnn{"RNN", {"Tanh"}, 2, 6};
  return op == "LSTM" ? kLstm : op == "GRU" ? kGru : kRnn;
}

// The defaults, case-insensitively as ONNX compares them, repeated per direction.
Status CheckActivations(const NodeProto& n, const CellInfo& info, int64_t dirs) {
  const auto* a = FindOnnxAttr(n, "activations");
  if (!a) return Status::Ok();
  bool ok = a->strings_size() == static_cast<int>(info.activations.size() * dirs);
  for (int i = 0; ok && i < a->strings_size(); ++i) {
    std::string s = a->strings(i), want = info.activations[i % info.activations.size()];
    ok = s.size() == want.size();
    for (size_t k = 0; ok && k < s.size(); ++k) ok = std::tolower(s[k]) == std::tolower(want[k]);
  }
  if (ok) return Status::Ok();
  std::string want;
  for (const auto& s : info.activations) want += (want.empty() ? "" : ", ") + s;
  return Status::Unsupported("attribute 'activations': only the defaults (" + want +
                             " per direction) are supported");
}

// Drops sequence_lens when every sequence has the full length; anything else is refused.
Status CheckSequenceLens(const NodeProto& n, LowerContext& cx, int64_t seq) {
  if (!cx.HasInput(n, 4)) return Status::Ok();
  Result<std::vector<int64_t>> lens = cx.LiteralInts(n, 4);
  if (!lens.ok())
    return Status::Unsupported("input 'sequence_lens' must be a constant (" +
                               lens.status().message() + ")");
  for (int64_t len : *lens) {
    if (len != seq)
      return Status::Unsupported("input 'sequence_lens' holds " + std::to_string(len) +
                                 "; only sequences of the full length (" +
                                 (seq < 0 ? std::string("a literal length") : std::to_string(seq)) +
                                 ") are supported");
  }
  return Status::Ok();
}

// Input i as a tensor index, -1 when absent or, for an initial state (`state` non-null), when it
// is a zeros value of the state's dims.
Result<int> OptionalInput(const NodeProto& n, LowerContext& cx, int i, const Dims* state) {
  if (!cx.HasInput(n, i)) return -1;
  if (state && cx.IsZeros(n.input(i))) {
    const Dims& dims = *cx.ZerosDims(n.input(i));
    if (dims != *state)
      return Status::InvalidArgument("initial state '" + n.input(i) + "' is " + DimsToString(dims) +
                                     ", expected " + DimsToString(*state));
    return -1;
  }
  return cx.Tensor(n, i);
}

Status LowerRecurrent(const NodeProto& n, LowerContext& cx) {
  const CellInfo& info = InfoOf(n.op_type());
  const std::string dir = OnnxAttrString(n, "direction", "forward");
  const int64_t dirs = dir == "bidirectional" ? 2 : 1;
  EI_RETURN_IF_ERROR(CheckActivations(n, info, dirs));
  if (OnnxAttrInt(n, "input_forget", 0) != 0)
    return Status::Unsupported(
        "attribute 'input_forget' (coupled input and forget gates) is "
        "not supported");
  if (n.input_size() > info.max_inputs || n.output_size() > info.num_outputs)
    return Status::InvalidArgument("too many inputs or outputs");
  Attrs attrs;
  attrs.Set("direction", dir);
  const int64_t layout = OnnxAttrInt(n, "layout", 0);
  attrs.Set("layout", layout);
  if (FindOnnxAttr(n, "hidden_size")) attrs.Set("hidden_size", OnnxAttrInt(n, "hidden_size", 0));
  if (FindOnnxAttr(n, "clip")) attrs.Set("clip", OnnxAttrFloat(n, "clip", 0.f));
  if (n.op_type() == "GRU")
    attrs.Set("linear_before_reset", OnnxAttrInt(n, "linear_before_reset", 0));

  Node node;
  node.name = n.name();
  node.op = info.op;
  for (int i = 0; i < 3; ++i) {
    EI_ASSIGN_OR_RETURN(int t, cx.Tensor(n, i));
    node.inputs.push_back(t);
  }
  const Dims& x = cx.desc(node.inputs[0]).dims;
  if (x.size() != 3) return Status::InvalidArgument("X must have rank 3, got " + DimsToString(x));
  EI_RETURN_IF_ERROR(CheckSequenceLens(n, cx, layout == 1 ? x[1] : x[0]));
  EI_ASSIGN_OR_RETURN(int b, OptionalInput(n, cx, 3, nullptr));
  node.inputs.push_back(b);
  node.inputs.push_back(-1);  // sequence_lens: resolved above
  const Dims& r = cx.desc(node.inputs[2]).dims;
  const int64_t hidden = r.size() == 3 ? r[2] : 0;
  const Dims state = layout == 1 ? Dims{x[0], dirs, hidden} : Dims{dirs, x[1], hidden};
  for (int i = 5; i < info.max_inputs; ++i) {
    EI_ASSIGN_OR_RETURN(int t, OptionalInput(n, cx, i, i == 7 ? nullptr : &state));
    node.inputs.push_back(t);
  }
  while (node.inputs.size() > 3 && node.inputs.back() < 0) node.inputs.pop_back();

  static const char* kOutNames[] = {"Y", "Y_h", "Y_c"};
  Graph& g = cx.graph();
  for (int i = 0; i < info.num_outputs; ++i) {
    TensorDesc out;
    const bool named = i < n.output_size() && !n.output(i).empty();
    out.name = named ? n.output(i) : UniqueTensorName(g, n.name() + "/" + kOutNames[i]);
    node.outputs.push_back(g.AddTensor(out));
  }
  node.attrs = std::move(attrs);
  EI_RETURN_IF_ERROR(InferNodeOutputs(node, &g));
  if (AllInputsConstant(g, node)) {
    EI_RETURN_IF_ERROR(EvaluateConstantNode(node, &g));
  } else {
    g.nodes.push_back(node);
  }
  for (int i = 0; i < info.num_outputs && i < n.output_size(); ++i)
    if (!n.output(i).empty()) cx.BindTensor(n.output(i), node.outputs[i]);
  return Status::Ok();
}

// An internal Expand of x to `out`, added without constant folding: a constant expanded over
// the batch cannot be evaluated at import.
Status EmitExpand(const NodeProto& n, LowerContext& cx, int x, const Dims& out) {
  Graph& g = cx.graph();
  Node node;
  node.name = n.name();
  node.op = "Expand";
  node.inputs = {x};
  node.attrs.Set("shape", out);
  TensorDesc desc;
  desc.name = n.output(0);
  node.outputs = {g.AddTensor(desc)};
  EI_RETURN_IF_ERROR(InferNodeOutputs(node, &g));
  g.nodes.push_back(node);
  cx.BindTensor(n.output(0), node.outputs[0]);
  return Status::Ok();
}

// Expand of a float constant without the batch: a constant. Zeros over the batch (torch's
// initial state of a seq-first RNN: Expand of zeros to [layers, batch, hidden]): a zeros value.
// Anything else (a learned token expanded to the batch, ViT's cls_token.expand(B, -1, -1), or a
// computed tensor): an internal Expand node.
Status LowerExpand(const NodeProto& n, LowerContext& cx) {
  EI_ASSIGN_OR_RETURN(int x, cx.Tensor(n, 0));
  const Dims in = cx.desc(x).dims;
  EI_ASSIGN_OR_RETURN(KnownInts shape, cx.Ints(n, 1));
  Dims want;
  for (const SymInt& d : shape.values) {
    EI_ASSIGN_OR_RETURN(int64_t dim, SymToDim(d));
    want.push_back(dim);
  }
  // numpy broadcasting of `in` against `want`, aligned on the right.
  const size_t rank = std::max(in.size(), want.size());
  Dims out(rank, 1), in_full(rank, 1);
  for (size_t i = 0; i < in.size(); ++i) in_full[rank - in.size() + i] = in[i];
  for (size_t i = 0; i < rank; ++i) {
    const int64_t a = in_full[i], b = i + want.size() >= rank ? want[i + want.size() - rank] : 1;
    if (a != b && a != 1 && b != 1)
      return Status::InvalidArgument("cannot expand " + DimsToString(in) + " to " +
                                     DimsToString(want));
    out[i] = a == 1 ? b : a;
  }
  if (out == in) {
    cx.BindTensor(n.output(0), x);
    return Status::Ok();
  }
  if (!IsFloatConstant(cx.graph(), x)) return EmitExpand(n, cx, x, out);
  const std::vector<float> v = ConstantFloats(cx.graph(), x);
  if (HasBatch(out)) {
    if (std::any_of(v.begin(), v.end(), [](float f) { return f != 0.f; }))
      return EmitExpand(n, cx, x, out);
    cx.BindZeros(n.output(0), out);
    return Status::Ok();
  }
  int64_t count = 1;
  for (int64_t d : out) {
    if (d > 0 && count > (int64_t{1} << 28) / d)
      return Status::InvalidArgument("Expand to " + DimsToString(out) + " is too large");
    count *= d;
  }
  std::vector<float> values(static_cast<size_t>(count));
  for (int64_t e = 0; e < count; ++e) {
    int64_t rest = e, src = 0, stride = 1;
    for (size_t i = rank; i-- > 0;) {
      const int64_t idx = rest % out[i];
      rest /= out[i];
      if (in_full[i] != 1) src += idx * stride;
      stride *= in_full[i];
    }
    values[e] = v[src];
  }
  cx.BindTensor(n.output(0), AddFloatConstant(&cx.graph(), n.output(0), out, values));
  return Status::Ok();
}

constexpr OnnxLowering kLowerings[] = {
    {"Expand", LowerExpand},
    {"LSTM", LowerRecurrent},
    {"GRU", LowerRecurrent},
    {"RNN", LowerRecurrent},
};

}  // namespace

std::span<const OnnxLowering> RnnLowerings() { return kLowerings; }

}  // namespace edgeinfer
