#include "inference/kernels/depthwise_conv.h"

#include "inference/kernels/vectorize.h"
#include "inference/kernels/window_reduce.h"

namespace edgeinfer {

namespace {

// Multiply-accumulate with the filter tap, starting from the bias.
struct FilterTaps {
  const float* filter;
  float bias;

  float Init() const { return bias; }
  void Tap(float* acc, float x, int64_t t) const { *acc += filter[t] * x; }
  template <class V>
  void InitV(V* acc) const {
    *acc = V{} + bias;
  }
  template <class V>
  void TapV(V* acc, const V& x, int64_t t) const {
    *acc += filter[t] * x;
  }
};

}  // namespace

EI_KERNEL_CLONES
void DepthwiseConvPlane(const float* in, const float* filter, float bias, const PlaneGeom& g,
                        float* out) {
  FilterTaps taps{filter, bias};
  window_internal::ReducePlane(in, g, taps, out);
}

}  // namespace edgeinfer
