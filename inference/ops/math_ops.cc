// Reductions, unary math and activations, LayerNormalization and Pad: the op table.
#include "inference/op.h"
#include "inference/ops/math_ops_internal.h"

namespace edgeinfer {

std::span<const OpDef> MathOps() {
  using namespace math_ops;  // NOLINT: the table names every op's functions
  static const OpDef kOps[] = {
      {"ReduceMean", InferReduce, CreateReduce},
      {"ReduceSum", InferReduce, CreateReduce},
      {"ReduceMax", InferReduce, CreateReduce},
      {"ReduceMin", InferReduce, CreateReduce},
      {"ReduceProd", InferReduce, CreateReduce},
      {"ReduceL1", InferReduce, CreateReduce},
      {"ReduceL2", InferReduce, CreateReduce},
      {"ReduceSumSquare", InferReduce, CreateReduce},
      {"ReduceLogSum", InferReduce, CreateReduce},
      {"ReduceLogSumExp", InferReduce, CreateReduce},
      {"Erf", InferUnaryMath, CreateUnaryMath},
      {"Exp", InferUnaryMath, CreateUnaryMath},
      {"Log", InferUnaryMath, CreateUnaryMath},
      {"Sqrt", InferUnaryMath, CreateUnaryMath},
      {"Abs", InferUnaryMath, CreateUnaryMath},
      {"Neg", InferUnaryMath, CreateUnaryMath},
      {"Reciprocal", InferUnaryMath, CreateUnaryMath},
      {"Floor", InferUnaryMath, CreateUnaryMath},
      {"Ceil", InferUnaryMath, CreateUnaryMath},
      {"Round", InferUnaryMath, CreateUnaryMath},
      {"Sign", InferUnaryMath, CreateUnaryMath},
      {"Sin", InferUnaryMath, CreateUnaryMath},
      {"Cos", InferUnaryMath, CreateUnaryMath},
      {"HardSigmoid", InferUnaryMath, CreateUnaryMath},
      {"HardSwish", InferUnaryMath, CreateUnaryMath},
      {"Elu", InferUnaryMath, CreateUnaryMath},
      {"Selu", InferUnaryMath, CreateUnaryMath},
      {"Celu", InferUnaryMath, CreateUnaryMath},
      {"Softplus", InferUnaryMath, CreateUnaryMath},
      {"Softsign", InferUnaryMath, CreateUnaryMath},
      {"ThresholdedRelu", InferUnaryMath, CreateUnaryMath},
      {"Gelu", InferUnaryMath, CreateUnaryMath},
      {"LayerNormalization", InferLayerNorm, CreateLayerNorm},
      {"Pad", InferPad, CreatePad},
      {"Resize", InferResize, CreateResize},
  };
  return kOps;
}

}  // namespace edgeinfer
