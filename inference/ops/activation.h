// Activations that Conv, Gemm and element-wise ops apply to their output in place ("fused"),
// so the result is written once instead of being read back by a separate Relu node.
//
// Node attributes: activation = "" | "Relu" | "LeakyRelu" | "Sigmoid" | "Tanh" | "Clip" | "Gelu"
// (exact, with erf) | "HardSwish";
// activation_alpha (LeakyRelu slope, default 0.01); activation_min / activation_max (Clip bounds,
// default -inf / +inf).
#pragma once

#include <cstddef>
#include <string>

#include "common/status.h"
#include "inference/graph.h"

namespace edgeinfer {

struct Activation {
  enum class Kind { kNone, kRelu, kLeakyRelu, kSigmoid, kTanh, kClip, kGelu, kHardSwish };
  Kind kind = Kind::kNone;
  float alpha = 0.01f;
  float min = 0.f;
  float max = 0.f;

  // Reads the activation attributes of a node; an unknown name is an error naming it.
  static Result<Activation> FromAttrs(const Attrs& attrs);
  // Writes the attributes for `kind_name` onto `attrs` (used by the importer's fusion pass).
  static void ToAttrs(const Activation& a, Attrs* attrs);
  static const char* Name(Kind k);

  // Applies the activation to n contiguous floats in place.
  void Apply(float* data, size_t n) const;
  bool is_none() const { return kind == Kind::kNone; }
};

}  // namespace edgeinfer
