#include "inference/op.h"

namespace edgeinfer {

namespace {
template <class F>
void ForEachOp(F f) {
  for (const OpDef& op : NnOps()) f(op);
  for (const OpDef& op : BasicOps()) f(op);
  for (const OpDef& op : DenseOps()) f(op);
  for (const OpDef& op : StaticInt8Ops()) f(op);
  for (const OpDef& op : MathOps()) f(op);
  for (const OpDef& op : RnnOps()) f(op);
}
}  // namespace

const OpDef* FindOp(std::string_view name) {
  const OpDef* found = nullptr;
  ForEachOp([&](const OpDef& op) {
    if (!found && name == op.name) found = &op;
  });
  return found;
}

std::vector<const OpDef*> AllOps() {
  std::vector<const OpDef*> ops;
  ForEachOp([&](const OpDef& op) { ops.push_back(&op); });
  return ops;
}

}  // namespace edgeinfer
