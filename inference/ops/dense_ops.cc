// Dense (fully connected on pre-packed weights): the op table entries.
#include <memory>
#include <vector>

#include "inference/op.h"

namespace edgeinfer {

namespace dense {
// dense.cc
Status InferDense(const Node& node, const Graph& graph, std::vector<TensorDesc>* outs);
Result<std::unique_ptr<Kernel>> CreateDense(const Node& node, const Graph& graph);
}  // namespace dense

namespace {
constexpr OpDef kDenseOps[] = {
    {"Dense", dense::InferDense, dense::CreateDense},
};
}  // namespace

std::span<const OpDef> DenseOps() { return kDenseOps; }

}  // namespace edgeinfer
