// Shape arithmetic shared by the op infer functions and kernels: numpy broadcasting of symbolic
// dims (infer time) and of concrete shapes (run time, allocation-free), and element counts.
//
// Symbolic dims follow tensor.h: d >= 0 is a literal size, d < 0 means (-d) x batch.
#pragma once

#include <cstdint>

#include "common/status.h"
#include "inference/tensor.h"

namespace edgeinfer {

// Numpy (multidirectional) broadcasting of symbolic dims, aligned from the right. Per axis:
// equal dims -> that dim; 1 vs anything -> the other; anything else (3 vs 4, 4 vs B, B vs 2B)
// is an error, since a literal n > 1 matches the batch only for one batch size.
// Returns InvalidArgument "cannot broadcast [B, 3] with [4]"; callers prefix the node.
Status BroadcastDims(const Dims& a, const Dims& b, Dims* out);

// The element count of symbolic dims: coeff x batch^batch_power (e.g. [B, 3, 2B] is 6 x B^2).
struct SymbolicCount {
  int64_t coeff = 1;
  int batch_power = 0;
  bool operator==(const SymbolicCount& o) const {
    return coeff == o.coeff && batch_power == o.batch_power;
  }
};

// Validates each dim (no INT64_MIN) and that the coefficient does not overflow int64.
// Returns InvalidArgument naming the dims on failure.
Status CountElements(const Dims& dims, SymbolicCount* out);

// Concrete element count of `dims` at `batch` (dims already validated by CountElements).
int64_t NumElements(const Dims& dims, int64_t batch);

// Row-major element strides of `in` as seen from a broadcast output of rank `out_rank`
// (in.rank <= out_rank, right-aligned): 0 on axes where `in` has size 1 or is missing.
// Writes out_rank entries into `strides`. No allocation; usable from Kernel::Run.
void BroadcastStrides(const Shape& in, int out_rank, int64_t* strides);

}  // namespace edgeinfer
