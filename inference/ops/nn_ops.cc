// Conv, Gemm, MatMul, pooling and batch norm: the op table entries (filled in by the kernels).
#include "inference/op.h"

namespace edgeinfer {

std::span<const OpDef> NnOps() { return {}; }

}  // namespace edgeinfer
