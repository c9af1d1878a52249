// Element-wise, softmax and layout ops: the op table entries (filled in by the kernels).
#include "inference/op.h"

namespace edgeinfer {

std::span<const OpDef> BasicOps() { return {}; }

}  // namespace edgeinfer
