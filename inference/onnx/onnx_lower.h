// Lowering ONNX nodes into the internal op set (docs/ops.md): a table from ONNX op type to a
// function, and the context those functions build the internal graph through.
//
// The context maps every ONNX value name to what it became: an internal tensor (float32,
// constant or not, with symbolic dims inferred by the internal op's own `infer` as each node is
// added) or a KnownInts (an integer value folded at import: shape arithmetic and int
// constants). A node whose inputs are all constant is evaluated at once by its kernel and
// becomes a constant. Lowering functions return errors without the "node 'X' (Op): " prefix;
// the driver adds it.
#pragma once

#include <map>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "inference/graph.h"
#include "inference/onnx/shape_fold.h"
#include "onnx/onnx_pb.h"

namespace edgeinfer {

class LowerContext {
 public:
  // `used`: every value name some node or graph output reads (for refusing used extra outputs).
  LowerContext(Graph* g, int opset, std::set<std::string> used)
      : g_(g), opset_(opset), used_(std::move(used)) {}

  int opset() const { return opset_; }
  Graph& graph() { return *g_; }
  const TensorDesc& desc(int t) const { return g_->tensors[t]; }
  bool IsUsed(const std::string& value) const { return used_.count(value) != 0; }

  void BindTensor(const std::string& value, int tensor) { tensors_[value] = tensor; }
  void BindInts(const std::string& value, KnownInts v) { ints_[value] = std::move(v); }
  // A value that could not be imported (an initializer of an unsupported type, say): only an
  // error if something reads it, and then this one.
  void BindRefused(const std::string& value, Status why) { refused_[value] = std::move(why); }
  // A float value known to be all zeros with dims that have the batch (torch's initial RNN
  // state: ConstantOfShape over Shape(x), then Slice). No tensor is made: the recurrent ops take
  // it as an absent initial state (which means zeros); any other reader fails naming it.
  void BindZeros(const std::string& value, Dims dims);
  bool IsZeros(const std::string& value) const { return zeros_.count(value) != 0; }
  // The dims of a zeros value; nullptr if `value` is not one.
  const Dims* ZerosDims(const std::string& value) const;
  // The tensor an ONNX value became; -1 if it is not a tensor (unknown or KnownInts).
  int TensorOf(const std::string& value) const;

  // Input i of n is present (exists and is not the empty "absent optional" name).
  bool HasInput(const onnx::NodeProto& n, int i) const {
    return i < n.input_size() && !n.input(i).empty();
  }
  // Input i as a float tensor; fails if it is absent, undefined or an integer value.
  Result<int> Tensor(const onnx::NodeProto& n, int i) const;
  // Input i as a known integer value; fails if it is a float tensor or undefined.
  Result<KnownInts> Ints(const onnx::NodeProto& n, int i) const;
  bool IsInts(const onnx::NodeProto& n, int i) const {
    return HasInput(n, i) && ints_.count(n.input(i)) != 0;
  }
  // Input i as literal integers (an int constant or folded shape values without the batch).
  Result<std::vector<int64_t>> LiteralInts(const onnx::NodeProto& n, int i) const;
  // Input i as the values of a float constant.
  Result<std::vector<float>> ConstantFloats(const onnx::NodeProto& n, int i) const;

  // Adds internal node `op` (named after n) reading `inputs`; its single output is n's
  // output 0. Runs the op's infer; evaluates the node at once if every input is constant.
  // Returns the output tensor.
  Result<int> Emit(const onnx::NodeProto& n, const std::string& op, std::vector<int> inputs,
                   Attrs attrs);
  // Fails when output i (i >= 1) of n is read by anything; `what` names it in the error.
  Status RefuseUsedOutputs(const onnx::NodeProto& n, int first, const std::string& what) const;

 private:
  Graph* g_;
  int opset_;
  std::set<std::string> used_;
  std::map<std::string, int> tensors_;
  std::map<std::string, KnownInts> ints_;
  std::map<std::string, Status> refused_;
  std::map<std::string, Dims> zeros_;

  Status Unavailable(const std::string& value) const;
};

// Binds ONNX value `name` to the contents of `t`: a float constant tensor for FLOAT, DOUBLE and
// FLOAT16, known ints for integer and bool types. Other types are refused naming the tensor.
Status BindOnnxConstant(LowerContext& cx, const std::string& name, const onnx::TensorProto& t);

using LowerFn = Status (*)(const onnx::NodeProto& n, LowerContext& cx);

struct OnnxLowering {
  const char* op_type;
  LowerFn lower;
};

// nullptr when the ONNX op is not supported.
const OnnxLowering* FindLowering(std::string_view op_type);

// The table's parts, one per file.
std::span<const OnnxLowering> NnLowerings();      // Conv, Gemm, MatMul, pooling, batch norm
std::span<const OnnxLowering> MathLowerings();    // element-wise, activations, softmax
std::span<const OnnxLowering> LayoutLowerings();  // Reshape, Flatten, (Un)Squeeze, Transpose, ...
std::span<const OnnxLowering> ValueLowerings();   // Constant, Identity, Dropout, Shape, Gather, ...
std::span<const OnnxLowering> RnnLowerings();     // LSTM, GRU, RNN; Expand
std::span<const OnnxLowering> SelectLowerings();  // Split, Where, comparisons, Range

}  // namespace edgeinfer
