#include "inference/ops/shape_util.h"

#include <limits>

namespace edgeinfer {

namespace {
std::string CannotBroadcast(const Dims& a, const Dims& b) {
  return "cannot broadcast " + DimsToString(a) + " with " + DimsToString(b);
}
}  // namespace

Status BroadcastDims(const Dims& a, const Dims& b, Dims* out) {
  const size_t rank = a.size() > b.size() ? a.size() : b.size();
  Dims result(rank);
  for (size_t i = 0; i < rank; ++i) {
    // Right-aligned: a missing leading dim behaves as 1.
    const int64_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    const int64_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    if (da == db || db == 1) {
      result[i] = da;
    } else if (da == 1) {
      result[i] = db;
    } else {
      return Status::InvalidArgument(CannotBroadcast(a, b));
    }
  }
  *out = std::move(result);
  return Status::Ok();
}

Status CountElements(const Dims& dims, SymbolicCount* out) {
  // INT64_MIN has no magnitude (and DimsToString cannot print it), so it is rejected first.
  for (int64_t d : dims) {
    if (d == std::numeric_limits<int64_t>::min()) {
      return Status::InvalidArgument("invalid dim " + std::to_string(d));
    }
  }
  SymbolicCount c;
  for (int64_t d : dims) {
    const int64_t magnitude = d < 0 ? -d : d;
    if (d < 0) ++c.batch_power;
    if (magnitude != 0 && c.coeff > std::numeric_limits<int64_t>::max() / magnitude) {
      return Status::InvalidArgument("element count of " + DimsToString(dims) + " overflows int64");
    }
    c.coeff *= magnitude;
  }
  *out = c;
  return Status::Ok();
}

int64_t NumElements(const Dims& dims, int64_t batch) {
  int64_t n = 1;
  for (int64_t d : dims) n *= ResolveDim(d, batch);
  return n;
}

void BroadcastStrides(const Shape& in, int out_rank, int64_t* strides) {
  const int offset = out_rank - in.rank;
  int64_t stride = 1;
  for (int i = out_rank - 1; i >= 0; --i) {
    const int j = i - offset;
    if (j < 0 || in.d[j] == 1) {
      strides[i] = 0;
    } else {
      strides[i] = stride;
      stride *= in.d[j];
    }
  }
}

}  // namespace edgeinfer
