// Dense (fully connected on pre-packed weights): the op table entries.
#include "inference/op.h"

namespace edgeinfer {

std::span<const OpDef> DenseOps() { return {}; }

}  // namespace edgeinfer
