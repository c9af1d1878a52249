#include "inference/ops/activation.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "inference/ops/fast_erf.h"

namespace edgeinfer {

namespace {
struct ActivationName {
  Activation::Kind kind;
  const char* name;
};
constexpr ActivationName kNames[] = {
    {Activation::Kind::kNone, ""},
    {Activation::Kind::kRelu, "Relu"},
    {Activation::Kind::kLeakyRelu, "LeakyRelu"},
    {Activation::Kind::kSigmoid, "Sigmoid"},
    {Activation::Kind::kTanh, "Tanh"},
    {Activation::Kind::kClip, "Clip"},
    {Activation::Kind::kGelu, "Gelu"},
    {Activation::Kind::kHardSwish, "HardSwish"},
};
}  // namespace

const char* Activation::Name(Kind k) {
  for (const auto& e : kNames)
    if (e.kind == k) return e.name;
  return "?";
}

Result<Activation> Activation::FromAttrs(const Attrs& attrs) {
  Activation a;
  std::string name = attrs.GetString("activation");
  bool found = false;
  for (const auto& e : kNames) {
    if (name == e.name) {
      a.kind = e.kind;
      found = true;
    }
  }
  if (!found) return Status::Unsupported("unknown fused activation '" + name + "'");
  a.alpha = attrs.GetFloat("activation_alpha", 0.01f);
  a.min = attrs.GetFloat("activation_min", -std::numeric_limits<float>::infinity());
  a.max = attrs.GetFloat("activation_max", std::numeric_limits<float>::infinity());
  return a;
}

void Activation::ToAttrs(const Activation& a, Attrs* attrs) {
  attrs->Set("activation", std::string(Name(a.kind)));
  if (a.kind == Kind::kLeakyRelu) attrs->Set("activation_alpha", a.alpha);
  if (a.kind == Kind::kClip) {
    attrs->Set("activation_min", a.min);
    attrs->Set("activation_max", a.max);
  }
}

void Activation::Apply(float* x, size_t n) const {
  switch (kind) {
    case Kind::kNone:
      return;
    case Kind::kRelu:
      for (size_t i = 0; i < n; ++i) x[i] = x[i] < 0.f ? 0.f : x[i];  // NaN stays NaN
      return;
    case Kind::kLeakyRelu:
      for (size_t i = 0; i < n; ++i) x[i] = x[i] >= 0.f ? x[i] : x[i] * alpha;
      return;
    case Kind::kSigmoid:
      for (size_t i = 0; i < n; ++i) x[i] = 1.f / (1.f + std::exp(-x[i]));
      return;
    case Kind::kTanh:
      for (size_t i = 0; i < n; ++i) x[i] = std::tanh(x[i]);
      return;
    case Kind::kClip:
      for (size_t i = 0; i < n; ++i) x[i] = std::min(std::max(x[i], min), max);
      return;
    case Kind::kGelu:  // the same code as the standalone ops (unary_math.cc)
      return GeluRow(x, x, static_cast<int64_t>(n));
    case Kind::kHardSwish:
      return HardSwishRow(x, x, static_cast<int64_t>(n));
  }
}

}  // namespace edgeinfer
