// Tests of the quantized kernel layer (inference/quant): CPU level selection and its environment
// override, fp16 conversion against the hardware converters, the quantizers' error bounds, and
// every SIMD GEMM level the machine supports against the scalar reference (bit-exact for int8
// and q4, a derived float bound for fp16) and against a float GEMM (a bound derived from the
// scales), on odd shapes, extreme values and zeros.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "inference/quant/cpu_features.h"
#include "inference/quant/fp16.h"
#include "inference/quant/qgemm.h"
#include "inference/quant/qgemm_kernels.h"  // the NEON variants, tested one by one
#include "inference/quant/quant_types.h"
#include "inference/quant/quantize.h"
#include "tests/inference/cpu_levels.h"

namespace edgeinfer::quant {
namespace {

using testing::TestedLevels;

constexpr WeightFormat kFormats[] = {WeightFormat::kInt8, WeightFormat::kQ4, WeightFormat::kFp16};
constexpr float kEps = std::numeric_limits<float>::epsilon() / 2;  // unit roundoff, 2^-24

std::vector<float> Random(size_t n, uint32_t seed, float lo = -1.f, float hi = 1.f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

uint32_t Bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float FromBits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// A 64-byte aligned buffer (what the session's arena hands kernels).
class Aligned {
 public:
  explicit Aligned(size_t bytes) : storage_(bytes + 64, 0xCD) {}
  void* get() {
    const auto addr = reinterpret_cast<uintptr_t>(storage_.data());
    return storage_.data() + ((64 - addr % 64) % 64);
  }

 private:
  std::vector<uint8_t> storage_;
};

// Sets an environment variable for a scope and restores the previous value.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    const char* old = std::getenv(name);
    had_ = old != nullptr;
    if (had_) old_ = old;
    if (value != nullptr) {
      setenv(name, value, 1);
    } else {
      unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (had_) {
      setenv(name_, old_.c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }

 private:
  const char* name_;
  bool had_ = false;
  std::string old_;
};

// A quantized weight [n, k] with its float original.
struct Weights {
  Weights(WeightFormat f, int64_t n, int64_t k, std::vector<float> w)
      : format(f), n(n), k(k), floats(std::move(w)), blob(WeightBytes(f, n, k)) {
    QuantizeWeights(f, floats.data(), n, k, blob.get());
  }
  QuantWeights view() { return ViewWeights(format, n, k, blob.get()); }
  std::vector<float> Dequantized() {
    std::vector<float> out(static_cast<size_t>(n * k));
    DequantizeWeights(view(), out.data());
    return out;
  }

  WeightFormat format;
  int64_t n, k;
  std::vector<float> floats;
  Aligned blob;
};

struct Shape {
  int64_t m, k, n;
};

// Runs Y = X W^T + bias at `level` with row strides ldx >= k and ldy >= n.
std::vector<float> RunGemm(CpuLevel level, Weights& w, int64_t m, const std::vector<float>& x,
                           int64_t ldx, const float* bias, int64_t ldy) {
  const QGemmKernels kernels = SelectQGemm(w.format, level);
  EXPECT_EQ(kernels.level, level);
  QGemmProblem p;
  p.m = m;
  p.x = x.data();
  p.ldx = ldx;
  p.w = w.view();
  p.bias = bias;
  std::vector<float> y(static_cast<size_t>(m * ldy), -7.f);  // -7 marks "not written"
  p.y = y.data();
  p.ldy = ldy;
  Aligned scratch(ScratchBytes(w.format, m, w.k));
  RunQGemm(kernels, p, scratch.get());
  return y;
}

std::vector<float> RunGemm(CpuLevel level, Weights& w, int64_t m, const std::vector<float>& x,
                           const float* bias) {
  return RunGemm(level, w, m, x, w.k, bias, w.n);
}

// Quantized activation row as the kernels see it: codes and scale.
struct ActRow {
  std::vector<int8_t> q;
  float scale;
};
ActRow QuantizeAct(const float* x, int64_t k) {
  ActRow a;
  a.q.resize(static_cast<size_t>(Int8PaddedK(k)));
  a.scale = QuantizeActRow(x, k, a.q.data(), Int8PaddedK(k));
  return a;
}

// --- CPU levels and the environment override ---

TEST(QuantCpuFeatures, LevelNamesRoundTrip) {
  for (int i = 0; i < kNumCpuLevels; ++i) {
    const auto l = static_cast<CpuLevel>(i);
    CpuLevel parsed = CpuLevel::kScalar;
    ASSERT_TRUE(ParseCpuLevel(CpuLevelName(l), &parsed)) << CpuLevelName(l);
    EXPECT_EQ(parsed, l);
  }
  CpuLevel untouched = CpuLevel::kAvx2;
  EXPECT_FALSE(ParseCpuLevel("AVX2", &untouched));
  EXPECT_FALSE(ParseCpuLevel("", &untouched));
  EXPECT_EQ(untouched, CpuLevel::kAvx2);
}

TEST(QuantCpuFeatures, DetectedLevelIsSupportedAndBest) {
  EXPECT_TRUE(CpuSupports(CpuLevel::kScalar));
  const CpuLevel detected = DetectedCpuLevel();
  EXPECT_TRUE(CpuSupports(detected));
#if defined(__x86_64__)
  EXPECT_FALSE(CpuSupports(CpuLevel::kNeon));
  if (CpuSupports(CpuLevel::kAvx512Vnni)) {
    EXPECT_TRUE(CpuSupports(CpuLevel::kAvx2));
  }
  const CpuLevel expected = CpuSupports(CpuLevel::kAvx512Vnni) ? CpuLevel::kAvx512Vnni
                            : CpuSupports(CpuLevel::kAvx2)     ? CpuLevel::kAvx2
                                                               : CpuLevel::kScalar;
  EXPECT_EQ(detected, expected);
#elif defined(__aarch64__)
  EXPECT_EQ(detected, CpuLevel::kNeon);
  EXPECT_FALSE(CpuSupports(CpuLevel::kAvx2));
#endif
  std::printf("detected CPU level: %s\n", CpuLevelName(detected));
}

TEST(QuantCpuFeatures, EnvScalarForcesScalar) {
  ScopedEnv env(kCpuLevelEnv, "scalar");
  EXPECT_EQ(BestCpuLevel(), CpuLevel::kScalar);
  EXPECT_EQ(SelectQGemm(WeightFormat::kInt8, BestCpuLevel()).level, CpuLevel::kScalar);
}

TEST(QuantCpuFeatures, EnvHonoursEverySupportedLevel) {
  for (int i = 0; i < kNumCpuLevels; ++i) {
    const auto l = static_cast<CpuLevel>(i);
    if (!CpuSupports(l)) continue;
    ScopedEnv env(kCpuLevelEnv, CpuLevelName(l));
    EXPECT_EQ(BestCpuLevel(), l);
    bool ignored = true;
    EXPECT_EQ(ResolveCpuLevel(CpuLevelName(l), &ignored), l);
    EXPECT_FALSE(ignored);
  }
}

TEST(QuantCpuFeatures, EnvUnknownOrUnsupportedFallsBackToDetected) {
  std::vector<std::string> values = {"bogus", "AVX2", " scalar", "avx2 ", "-1"};
  for (int i = 0; i < kNumCpuLevels; ++i) {
    const auto l = static_cast<CpuLevel>(i);
    if (!CpuSupports(l)) values.push_back(CpuLevelName(l));  // higher or foreign: not honoured
  }
  for (const std::string& v : values) {
    ScopedEnv env(kCpuLevelEnv, v.c_str());
    EXPECT_EQ(BestCpuLevel(), DetectedCpuLevel()) << v;
    bool ignored = false;
    EXPECT_EQ(ResolveCpuLevel(v.c_str(), &ignored), DetectedCpuLevel()) << v;
    EXPECT_TRUE(ignored) << v;
  }
}

TEST(QuantCpuFeatures, EnvUnsetOrEmptyMeansDetected) {
  bool ignored = true;
  EXPECT_EQ(ResolveCpuLevel(nullptr, &ignored), DetectedCpuLevel());
  EXPECT_FALSE(ignored);
  EXPECT_EQ(ResolveCpuLevel("", &ignored), DetectedCpuLevel());
  EXPECT_FALSE(ignored);
  ScopedEnv env(kCpuLevelEnv, nullptr);
  EXPECT_EQ(BestCpuLevel(), DetectedCpuLevel());
}

TEST(QuantCpuFeatures, SelectFallsBackToScalarForLevelsThisCpuLacks) {
  for (WeightFormat f : kFormats) {
    for (int i = 0; i < kNumCpuLevels; ++i) {
      const auto l = static_cast<CpuLevel>(i);
      const QGemmKernels k = SelectQGemm(f, l);
      EXPECT_EQ(k.level, CpuSupports(l) ? l : CpuLevel::kScalar);
      EXPECT_NE(k.gemm, nullptr);
      EXPECT_EQ(k.quantize == nullptr, f == WeightFormat::kFp16);
    }
  }
}

// --- fp16 ---

TEST(QuantFp16, KnownValues) {
  EXPECT_EQ(Fp32ToFp16(1.f), 0x3C00);
  EXPECT_EQ(Fp32ToFp16(-2.f), 0xC000);
  EXPECT_EQ(Fp32ToFp16(-0.f), 0x8000);
  EXPECT_EQ(Fp32ToFp16(65504.f), 0x7BFF);
  EXPECT_EQ(Fp32ToFp16(65519.f), 0x7BFF);
  EXPECT_EQ(Fp32ToFp16(65520.f), 0x7C00);               // the tie rounds to even: infinity
  EXPECT_EQ(Fp32ToFp16(std::ldexp(1.f, -24)), 0x0001);  // smallest subnormal
  EXPECT_EQ(Fp32ToFp16(std::ldexp(1.f, -25)), 0x0000);  // tie to even: zero
  EXPECT_EQ(Fp32ToFp16(std::ldexp(3.f, -25)), 0x0002);  // tie to even: 2
  EXPECT_EQ(Fp32ToFp16(1.f + std::ldexp(1.f, -11)), 0x3C00);
  EXPECT_EQ(Fp32ToFp16(1.f + std::ldexp(3.f, -11)), 0x3C02);
  EXPECT_EQ(Fp16ToFp32(0x3555), 0.333251953125f);
  EXPECT_EQ(Fp16ToFp32(0x0001), std::ldexp(1.f, -24));
  EXPECT_TRUE(std::isinf(Fp16ToFp32(0xFC00)));
  EXPECT_TRUE(std::isnan(Fp16ToFp32(0x7E00)));
  EXPECT_TRUE(std::isnan(Fp16ToFp32(Fp32ToFp16(std::numeric_limits<float>::quiet_NaN()))));
}

TEST(QuantFp16, EveryHalfConvertsIdenticallyAtEveryLevelAndRoundTrips) {
  std::vector<uint16_t> halves(65536);
  for (uint32_t h = 0; h < 65536; ++h) halves[h] = static_cast<uint16_t>(h);
  for (CpuLevel level : TestedLevels()) {
    std::vector<float> f(halves.size());
    Fp16ToFp32Row(halves.data(), f.data(), static_cast<int64_t>(f.size()), level);
    std::vector<uint16_t> back(halves.size());
    Fp32ToFp16Row(f.data(), back.data(), static_cast<int64_t>(f.size()), level);
    for (uint32_t h = 0; h < 65536; ++h) {
      ASSERT_EQ(Bits(f[h]), Bits(Fp16ToFp32(halves[h]))) << CpuLevelName(level) << " " << h;
      const bool signalling_nan = (h & 0x7C00) == 0x7C00 && (h & 0x3FF) != 0 && !(h & 0x200);
      // Conversions quiet a signalling NaN (bit 9 set), as F16C and FCVT do; else exact.
      ASSERT_EQ(back[h], signalling_nan ? (h | 0x200) : h) << CpuLevelName(level) << " " << h;
    }
  }
}

TEST(QuantFp16, FloatToHalfMatchesScalarAtEveryLevel) {
  std::mt19937 rng(7);
  std::vector<float> in;
  for (int i = 0; i < 1 << 20; ++i) in.push_back(FromBits(rng()));
  // Every float in [2^-26, 2^17), all signs of rounding: subnormals, ties, overflow.
  for (uint32_t u = 0x32800000u; u < 0x48000000u; u += 257) {
    in.push_back(FromBits(u));
    in.push_back(-FromBits(u));
  }
  for (float v : {0.f, -0.f, std::numeric_limits<float>::infinity(), 65504.f, 65520.f, 1e-8f,
                  std::numeric_limits<float>::denorm_min(), std::numeric_limits<float>::max()}) {
    in.push_back(v);
  }
  std::vector<uint16_t> expected(in.size());
  for (size_t i = 0; i < in.size(); ++i) expected[i] = Fp32ToFp16(in[i]);
  for (CpuLevel level : TestedLevels()) {
    std::vector<uint16_t> out(in.size());
    Fp32ToFp16Row(in.data(), out.data(), static_cast<int64_t>(in.size()), level);
    for (size_t i = 0; i < in.size(); ++i) {
      ASSERT_EQ(out[i], expected[i]) << CpuLevelName(level) << " " << std::hex << Bits(in[i]);
    }
  }
}

// --- Quantizers ---

TEST(QuantQuantize, WeightBytesArePinned) {
  EXPECT_EQ(WeightBytes(WeightFormat::kInt8, 3, 33), 3u * 64 + 3 * 4 + 3 * 4);
  EXPECT_EQ(WeightBytes(WeightFormat::kQ4, 9, 33), 2u * 2 * 144);  // 2 row groups x 2 blocks
  EXPECT_EQ(WeightBytes(WeightFormat::kQ4, 2048, 784), 256u * 25 * 144);
  EXPECT_EQ(WeightBytes(WeightFormat::kFp16, 3, 33), 3u * 33 * 2);
  // <= 4.5 bits per weight when N and K are multiples of 8 and 32.
  EXPECT_EQ(WeightBytes(WeightFormat::kQ4, 64, 256) * 8, 64u * 256 * 9 / 2);
}

TEST(QuantQuantize, Int8RoundTripWithinHalfScale) {
  for (int64_t k : {1, 31, 32, 33, 100, 4096}) {
    const int64_t n = 5;
    Weights w(WeightFormat::kInt8, n, k, Random(static_cast<size_t>(n * k), 11, -3.f, 2.f));
    const std::vector<float> back = w.Dequantized();
    const QuantWeights v = w.view();
    const auto* q = static_cast<const int8_t*>(v.data);
    for (int64_t r = 0; r < n; ++r) {
      float amax = 0.f;
      int32_t sum = 0;
      for (int64_t i = 0; i < k; ++i) amax = std::max(amax, std::fabs(w.floats[r * k + i]));
      EXPECT_FLOAT_EQ(v.scales[r], amax / 127.f);
      for (int64_t i = 0; i < Int8PaddedK(k); ++i) {
        const int8_t c = q[r * Int8PaddedK(k) + i];
        ASSERT_GE(c, -127);
        if (i >= k) {
          ASSERT_EQ(c, 0) << "pad column " << i;
        }
        sum += c;
      }
      EXPECT_EQ(v.row_sums[r], sum);
      for (int64_t i = 0; i < k; ++i) {
        ASSERT_LE(std::fabs(back[r * k + i] - w.floats[r * k + i]), v.scales[r] * 0.5f * 1.0001f)
            << "k=" << k << " r=" << r << " i=" << i;
      }
    }
  }
}

TEST(QuantQuantize, Int8SaturationOutliersAndZeroRows) {
  const int64_t k = 40;
  std::vector<float> w(static_cast<size_t>(4 * k), 0.f);
  for (int64_t i = 0; i < k; ++i) {
    w[i] = (i % 2 ? 1.f : -1.f) * 0.75f;                          // row 0: every value at +-max
    w[k + i] = i == 7 ? 1000.f : 0.001f * static_cast<float>(i);  // row 1: one outlier
    w[3 * k + i] = 1e-35f;                                        // row 3: below the tiny limit
  }                                                               // row 2: all zero
  Weights q(WeightFormat::kInt8, 4, k, w);
  const QuantWeights v = q.view();
  const auto* codes = static_cast<const int8_t*>(v.data);
  const int64_t kp = Int8PaddedK(k);
  for (int64_t i = 0; i < k; ++i) EXPECT_EQ(codes[i], i % 2 ? 127 : -127);
  EXPECT_EQ(codes[kp + 7], 127);
  EXPECT_EQ(v.scales[2], 0.f);
  EXPECT_EQ(v.scales[3], 0.f);
  const std::vector<float> back = q.Dequantized();
  for (int64_t i = 0; i < k; ++i) {
    EXPECT_LE(std::fabs(back[k + i] - w[k + i]), v.scales[1] * 0.5f * 1.0001f);
    EXPECT_EQ(back[2 * k + i], 0.f);
    EXPECT_EQ(codes[3 * kp + i], 0);
  }
}

// Per-block bound |w - w'| <= |d| / 2 (the stored fp16 d), for K and N off the block and group.
TEST(QuantQuantize, Q4RoundTripWithinHalfBlockScale) {
  for (int64_t k : {1, 31, 32, 33, 95, 4096}) {
    for (int64_t n : {1, 7, 8, 9}) {
      Weights w(WeightFormat::kQ4, n, k, Random(static_cast<size_t>(n * k), 13, -2.f, 1.f));
      const std::vector<float> back = w.Dequantized();
      const auto* blocks = static_cast<const BlockQ4x8*>(w.view().data);
      const int64_t kb = Q4BlocksPerRow(k);
      for (int64_t r = 0; r < n; ++r) {
        for (int64_t i = 0; i < k; ++i) {
          const float d = Fp16ToFp32(blocks[r / 8 * kb + i / 32].d[r % 8]);
          ASSERT_LE(std::fabs(back[r * k + i] - w.floats[r * k + i]), std::fabs(d) * 0.5f)
              << "k=" << k << " n=" << n << " r=" << r << " i=" << i;
        }
      }
    }
  }
}

TEST(QuantQuantize, Q4ScaleSignFollowsTheLargerSide) {
  uint16_t d;
  uint8_t codes[kQ4BlockSize];
  // The negative side is larger: d > 0, the minimum gets code 0 (-8 d).
  const float neg[3] = {-8.f, 1.f, 7.f};
  QuantizeBlockQ4(neg, 3, &d, codes);
  EXPECT_EQ(Fp16ToFp32(d), 1.f);
  EXPECT_EQ(codes[0], 0);
  EXPECT_EQ(codes[2], 15);
  EXPECT_EQ(codes[31], 8);  // the rest of the block is zero
  // The positive side is larger: d < 0, the maximum gets code 0.
  const float pos[2] = {8.f, -3.f};
  QuantizeBlockQ4(pos, 2, &d, codes);
  EXPECT_EQ(Fp16ToFp32(d), -1.f);
  EXPECT_EQ(codes[0], 0);
  // Symmetric +-1: code 0 holds only one sign, so |d| = 1/7 keeps both within |d| / 2 (Q4_0's
  // d = -max / 8 would clamp +1 to 7 / 8, an error of d).
  const float sym[2] = {-1.f, 1.f};
  QuantizeBlockQ4(sym, 2, &d, codes);
  const float ds = Fp16ToFp32(d);
  EXPECT_NEAR(std::fabs(ds), 1.f / 7.f, 1e-3f);
  EXPECT_LE(std::fabs(ds * (codes[0] - 8) + 1.f), std::fabs(ds) / 2);
  EXPECT_LE(std::fabs(ds * (codes[1] - 8) - 1.f), std::fabs(ds) / 2);
}

TEST(QuantQuantize, Q4ZeroBlocksAndPadRowsAreZeroWithoutNan) {
  std::vector<float> w(static_cast<size_t>(3 * 64), 0.f);
  for (int i = 0; i < 32; ++i) w[64 + 32 + i] = 0.5f;  // row 1, block 1 non-zero
  Weights q(WeightFormat::kQ4, 3, 64, w);
  const auto* blocks = static_cast<const BlockQ4x8*>(q.view().data);
  EXPECT_EQ(blocks[0].d[0], 0);
  for (int r = 3; r < 8; ++r) EXPECT_EQ(blocks[1].d[r], 0) << "pad row " << r;
  const std::vector<float> back = q.Dequantized();
  for (size_t i = 0; i < back.size(); ++i) {
    ASSERT_FALSE(std::isnan(back[i]));
    EXPECT_NEAR(back[i], w[i], 0.5f / 14);
  }
}

TEST(QuantQuantize, Fp16WeightsRoundTripWithinHalfUlp) {
  Weights w(WeightFormat::kFp16, 3, 37, Random(3 * 37, 17, -100.f, 100.f));
  const std::vector<float> back = w.Dequantized();
  for (size_t i = 0; i < back.size(); ++i) {
    EXPECT_LE(std::fabs(back[i] - w.floats[i]), std::fabs(w.floats[i]) * std::ldexp(1.f, -11));
  }
}

TEST(QuantQuantize, ActivationRowBoundsPaddingAndZeros) {
  for (int64_t k : {1, 5, 32, 33, 1000}) {
    const std::vector<float> x = Random(static_cast<size_t>(k), 19, -4.f, 3.f);
    const ActRow a = QuantizeAct(x.data(), k);
    for (int64_t i = 0; i < k; ++i) {
      ASSERT_LE(std::fabs(a.scale * a.q[i] - x[i]), a.scale * 0.5f * 1.0001f);
      ASSERT_GE(a.q[i], -127);
    }
    for (size_t i = static_cast<size_t>(k); i < a.q.size(); ++i) ASSERT_EQ(a.q[i], 0);
  }
  const std::vector<float> zeros(70, 0.f);
  const ActRow z = QuantizeAct(zeros.data(), 70);
  EXPECT_EQ(z.scale, 0.f);
  for (int8_t c : z.q) EXPECT_EQ(c, 0);
  const float spikes[3] = {-5.f, 5.f, std::numeric_limits<float>::quiet_NaN()};
  const ActRow s = QuantizeAct(spikes, 3);
  EXPECT_EQ(s.q[0], -127);
  EXPECT_EQ(s.q[1], 127);
  EXPECT_EQ(s.q[2], -127);  // NaN: skipped by the max, coded as -127 (documented)
}

// Every level's activation quantizer writes the same scratch bytes as the scalar one, including
// rounding ties, NaN, infinities, huge and tiny values.
TEST(QuantQuantize, ActivationQuantizerIsBitExactAtEveryLevel) {
  const int64_t m = 6, k = 77;
  std::vector<float> x = Random(static_cast<size_t>(m * k), 23, -2.f, 2.f);
  for (int64_t i = 0; i < k; ++i) {
    x[i] = (static_cast<float>(i) - 38.f) * 2.f / 127.f * 0.75f;  // many exact .5 ties
    x[k + i] = i == 3 ? 1e30f : 1.f;
    x[2 * k + i] = i % 9 == 0 ? std::numeric_limits<float>::quiet_NaN() : x[2 * k + i];
    x[3 * k + i] = i == 5 ? std::numeric_limits<float>::infinity() : x[3 * k + i];
    x[4 * k + i] = 1e-33f * static_cast<float>(i);
  }
  for (WeightFormat f : {WeightFormat::kInt8, WeightFormat::kQ4}) {
    QGemmProblem p;
    p.m = m;
    p.x = x.data();
    p.ldx = k;
    p.w.format = f;
    p.w.k = k;
    const size_t bytes = ScratchBytes(f, m, k);
    Aligned expected(bytes);
    SelectQGemm(f, CpuLevel::kScalar).quantize(p, expected.get());
    for (CpuLevel level : TestedLevels()) {
      Aligned got(bytes);
      SelectQGemm(f, level).quantize(p, got.get());
      EXPECT_EQ(std::memcmp(got.get(), expected.get(), bytes), 0)
          << WeightFormatName(f) << " " << CpuLevelName(level);
    }
  }
}

TEST(QuantQuantize, ScratchLayoutFitsScratchBytes) {
  EXPECT_EQ(ScratchBytes(WeightFormat::kFp16, 16, 100), 0u);
  for (WeightFormat f : {WeightFormat::kInt8, WeightFormat::kQ4}) {
    for (int64_t m : {1, 3, 16}) {
      for (int64_t k : {1, 33, 784}) {
        std::vector<uint8_t> buf(ScratchBytes(f, m, k));
        const QuantizedActs a = ActsLayout(f, m, k, buf.data());
        const uint8_t* end = buf.data() + buf.size();
        EXPECT_LE(reinterpret_cast<const uint8_t*>(a.q + m * a.kp), end);
        EXPECT_LE(reinterpret_cast<const uint8_t*>(a.scales + m), end);
        if (f == WeightFormat::kQ4) {
          EXPECT_LE(reinterpret_cast<const uint8_t*>(a.corr + m * a.kp / 32), end);
        } else {
          EXPECT_EQ(a.corr, nullptr);
        }
      }
    }
  }
}

// --- GEMM: every level against the scalar reference ---

const Shape kShapes[] = {{1, 1, 1},     {1, 31, 1},   {1, 33, 7},   {3, 33, 5},
                         {4, 64, 8},    {5, 100, 9},  {17, 95, 13}, {16, 257, 24},
                         {2, 4096, 11}, {1, 784, 64}, {6, 1, 17},   {1, 4096, 3}};

// |fp16 level - fp16 reference|: both sum K products in float, in different orders.
float Fp16Bound(const Weights& w, const std::vector<float>& x, int64_t m, int64_t n, float bias) {
  double mag = 0;
  for (int64_t k = 0; k < w.k; ++k) {
    mag += std::fabs(Fp16ToFp32(Fp32ToFp16(w.floats[n * w.k + k])) * x[m * w.k + k]);
  }
  return static_cast<float>(2.0 * (w.k + 16) * kEps * mag + 2 * kEps * std::fabs(bias)) + 1e-30f;
}

TEST(QuantGemm, EveryLevelMatchesScalarReference) {
  uint32_t seed = 100;
  for (WeightFormat f : kFormats) {
    for (const Shape& s : kShapes) {
      Weights w(f, s.n, s.k, Random(static_cast<size_t>(s.n * s.k), ++seed));
      const std::vector<float> x = Random(static_cast<size_t>(s.m * s.k), ++seed, -3.f, 3.f);
      const std::vector<float> bias = Random(static_cast<size_t>(s.n), ++seed);
      const std::vector<float> ref = RunGemm(CpuLevel::kScalar, w, s.m, x, bias.data());
      for (CpuLevel level : TestedLevels()) {
        const std::vector<float> y = RunGemm(level, w, s.m, x, bias.data());
        for (int64_t i = 0; i < s.m; ++i) {
          for (int64_t j = 0; j < s.n; ++j) {
            const float a = y[i * s.n + j], r = ref[i * s.n + j];
            if (f == WeightFormat::kFp16) {
              ASSERT_LE(std::fabs(a - r), Fp16Bound(w, x, i, j, bias[j]));
            } else {  // exact integer sums, the same fused float steps
              ASSERT_EQ(Bits(a), Bits(r)) << WeightFormatName(f) << " " << CpuLevelName(level)
                                          << " m=" << s.m << " k=" << s.k << " n=" << s.n << " at "
                                          << i << "," << j << ": " << a << " vs " << r;
            }
          }
        }
      }
    }
  }
}

// The register tiling of the int8 and q4 kernels (rows of X in blocks, weight rows in blocks, the
// rows and columns left over, the M = 1 GEMV path): every M from 1 to 17 against N off every
// block size and K odd, short and long, at every level, bit-exact with the scalar reference. Each
// shape runs with signed activations and with non-negative ones (after a ReLU), which the AVX2
// int8 kernel feeds down a separate path; and with one negative code in the last row only, which
// must send the whole product down the signed path.
TEST(QuantGemm, EveryTileShapeMatchesScalarForSignedAndNonNegativeActivations) {
  enum class Sign { kMixed, kNonNegative, kLastNegative };
  const int64_t ns[] = {1, 2, 3, 5, 7, 9, 13};
  const int64_t ks[] = {1, 33, 95, 800, 2049};
  uint32_t seed = 500;
  int cases = 0;
  for (WeightFormat f : {WeightFormat::kInt8, WeightFormat::kQ4}) {
    for (int64_t m = 1; m <= 17; ++m) {
      const int64_t n = ns[m % 7], k = ks[m % 5];
      Weights w(f, n, k, Random(static_cast<size_t>(n * k), ++seed));
      const std::vector<float> bias = Random(static_cast<size_t>(n), ++seed);
      for (Sign sign : {Sign::kMixed, Sign::kNonNegative, Sign::kLastNegative}) {
        std::vector<float> x = Random(static_cast<size_t>(m * k), ++seed, -2.f, 2.f);
        if (sign != Sign::kMixed) {
          for (float& v : x) v = std::fabs(v);
        }
        if (sign == Sign::kLastNegative) x[(m - 1) * k + k / 2] = -1.5f;
        const std::vector<float> ref = RunGemm(CpuLevel::kScalar, w, m, x, bias.data());
        for (CpuLevel level : TestedLevels()) {
          const std::vector<float> y = RunGemm(level, w, m, x, bias.data());
          for (size_t i = 0; i < y.size(); ++i) {
            ASSERT_EQ(Bits(y[i]), Bits(ref[i]))
                << WeightFormatName(f) << " " << CpuLevelName(level) << " m=" << m << " k=" << k
                << " n=" << n << " sign=" << static_cast<int>(sign) << " at " << i;
          }
          ++cases;
        }
      }
    }
  }
  EXPECT_EQ(cases, static_cast<int>(2 * 17 * 3 * TestedLevels().size()));
}

// The same at the fashion MLP's batch-16 shapes (K a multiple of 32 and not, N of 2048 and 768
// off no block), where the tiles run their full length.
TEST(QuantGemm, Batch16ModelShapesMatchScalar) {
  const Shape shapes[] = {{16, 784, 70}, {16, 2048, 22}, {8, 768, 10}};
  uint32_t seed = 700;
  for (const Shape& s : shapes) {
    Weights w(WeightFormat::kInt8, s.n, s.k, Random(static_cast<size_t>(s.n * s.k), ++seed));
    for (bool relu : {false, true}) {
      std::vector<float> x = Random(static_cast<size_t>(s.m * s.k), ++seed, -3.f, 3.f);
      if (relu) {
        for (float& v : x) v = std::max(v, 0.f);
      }
      const std::vector<float> ref = RunGemm(CpuLevel::kScalar, w, s.m, x, nullptr);
      for (CpuLevel level : TestedLevels()) {
        const std::vector<float> y = RunGemm(level, w, s.m, x, nullptr);
        for (size_t i = 0; i < y.size(); ++i) {
          ASSERT_EQ(Bits(y[i]), Bits(ref[i])) << CpuLevelName(level) << " k=" << s.k << " " << i;
        }
      }
    }
  }
}

// Whole blocks of 4 weight rows (N a multiple of 4, so no single rows follow) at odd M (an odd
// last row after the 2-row tiles, or M = 1 alone), with and without bias and into strided Y, so
// that the vectorized dequantization of each tile shape writes exactly its outputs. The first
// tile of every block but the last prefetches the next block; N = 4 has no next block.
TEST(QuantGemm, WholeWeightBlocksAtOddMMatchScalar) {
  uint32_t seed = 900;
  int cases = 0;
  for (int64_t m : {1, 3, 7}) {
    for (int64_t n : {4, 8, 12}) {
      const int64_t k = 100 + 31 * m;
      Weights w(WeightFormat::kInt8, n, k, Random(static_cast<size_t>(n * k), ++seed));
      const std::vector<float> bias = Random(static_cast<size_t>(n), ++seed);
      for (bool relu : {false, true}) {
        std::vector<float> x = Random(static_cast<size_t>(m * k), ++seed, -3.f, 3.f);
        if (relu) {
          for (float& v : x) v = std::max(v, 0.f);
        }
        for (const float* b : {bias.data(), static_cast<const float*>(nullptr)}) {
          const int64_t ldy = n + 3;
          const std::vector<float> ref = RunGemm(CpuLevel::kScalar, w, m, x, k, b, ldy);
          for (CpuLevel level : TestedLevels()) {
            const std::vector<float> y = RunGemm(level, w, m, x, k, b, ldy);
            for (size_t i = 0; i < y.size(); ++i) {
              ASSERT_EQ(Bits(y[i]), Bits(ref[i]))
                  << CpuLevelName(level) << " m=" << m << " n=" << n << " relu=" << relu
                  << " bias=" << (b != nullptr) << " at " << i;
            }
            for (int64_t r = 0; r < m; ++r) {
              for (int64_t c = n; c < ldy; ++c) ASSERT_EQ(y[r * ldy + c], -7.f);  // untouched
            }
            ++cases;
          }
        }
      }
    }
  }
  EXPECT_EQ(cases, static_cast<int>(3 * 3 * 2 * 2 * TestedLevels().size()));
}

// Strided X and Y, no bias: only the n columns of each Y row are written.
TEST(QuantGemm, StridesWithoutBiasWriteOnlyTheOutput) {
  const Shape s = {5, 45, 10};
  const int64_t ldx = 50, ldy = 13;
  for (WeightFormat f : kFormats) {
    Weights w(f, s.n, s.k, Random(static_cast<size_t>(s.n * s.k), 31));
    const std::vector<float> x = Random(static_cast<size_t>(s.m * ldx), 32);
    std::vector<float> packed(static_cast<size_t>(s.m * s.k));
    for (int64_t i = 0; i < s.m; ++i) {
      std::copy_n(x.begin() + i * ldx, s.k, packed.begin() + i * s.k);
    }
    const std::vector<float> ref = RunGemm(CpuLevel::kScalar, w, s.m, packed, nullptr);
    for (CpuLevel level : TestedLevels()) {
      const std::vector<float> y = RunGemm(level, w, s.m, x, ldx, nullptr, ldy);
      for (int64_t i = 0; i < s.m; ++i) {
        for (int64_t j = 0; j < ldy; ++j) {
          if (j >= s.n) {
            ASSERT_EQ(y[i * ldy + j], -7.f) << "wrote past N at " << i << "," << j;
          } else {
            ASSERT_NEAR(y[i * ldy + j], ref[i * s.n + j], Fp16Bound(w, packed, i, j, 0.f));
          }
        }
      }
    }
  }
}

// Bound on |w' - w| for weight (n, k) from the format's scales: sw / 2 (int8), |d| / 2 (q4), half
// an fp16 ulp (fp16).
double WeightErrorBound(Weights& w, int64_t n, int64_t k) {
  const QuantWeights v = w.view();
  switch (w.format) {
    case WeightFormat::kInt8:
      return v.scales[n] / 2.0;
    case WeightFormat::kQ4: {
      const auto* blocks = static_cast<const BlockQ4x8*>(v.data);
      const BlockQ4x8& b = blocks[n / kQ4RowGroup * Q4BlocksPerRow(w.k) + k / kQ4BlockSize];
      return std::fabs(Fp16ToFp32(b.d[n % kQ4RowGroup])) / 2.0;
    }
    case WeightFormat::kFp16:
      return std::fabs(w.floats[n * w.k + k]) * std::ldexp(1.0, -11);
  }
  return 0;
}

// The quantized product against a float GEMM of the original weights, within the bound the
// scales give: |w'x' - wx| <= |w'| sx / 2 + |x| |w' - w| per product, plus float rounding.
TEST(QuantGemm, CloseToFloatGemmWithinScaleBound) {
  const Shape s = {3, 300, 21};
  for (WeightFormat f : kFormats) {
    Weights w(f, s.n, s.k, Random(static_cast<size_t>(s.n * s.k), 41, -0.5f, 0.5f));
    const std::vector<float> x = Random(static_cast<size_t>(s.m * s.k), 42, -2.f, 2.f);
    const std::vector<float> bias = Random(static_cast<size_t>(s.n), 43);
    const std::vector<float> wq = w.Dequantized();
    for (CpuLevel level : TestedLevels()) {
      const std::vector<float> y = RunGemm(level, w, s.m, x, bias.data());
      for (int64_t i = 0; i < s.m; ++i) {
        const ActRow a = QuantizeAct(&x[i * s.k], s.k);
        const double sx = f == WeightFormat::kFp16 ? 0.0 : a.scale;  // fp16 uses x as is
        for (int64_t j = 0; j < s.n; ++j) {
          double exact = bias[j], bound = 0, mag = std::fabs(bias[j]);
          for (int64_t k = 0; k < s.k; ++k) {
            const double xf = x[i * s.k + k], wqk = wq[j * s.k + k];
            exact += double{w.floats[j * s.k + k]} * xf;
            bound += std::fabs(wqk) * sx / 2 + std::fabs(xf) * WeightErrorBound(w, j, k);
            mag += std::fabs(wqk) * (std::fabs(xf) + sx);
          }
          bound = bound * 1.0001 + (2.0 * s.k + 16) * kEps * mag;
          ASSERT_LE(std::fabs(y[i * s.n + j] - exact), bound)
              << WeightFormatName(f) << " " << CpuLevelName(level) << " at " << i << "," << j;
        }
      }
    }
  }
}

// The largest sums the integer paths see, over K = 4096: int8 weights and activations all at
// +-127 (and x + 128 = 255 for VNNI); q4 codes 15 (and 0) against activations at 127, which fill
// the int16 block sums of the AVX2 kernel to 30480. The result must equal the exact product of
// the quantized values, so nothing saturated or wrapped, and be identical at every level.
TEST(QuantGemm, ExtremeValuesDoNotSaturate) {
  const int64_t k = 4096, n = 9;
  std::vector<float> x(static_cast<size_t>(2 * k));
  for (int64_t i = 0; i < k; ++i) {
    x[i] = i % 3 == 0 ? 2.f : -2.f;
    x[k + i] = 2.f;
  }
  for (WeightFormat f : {WeightFormat::kInt8, WeightFormat::kQ4}) {
    std::vector<float> wf(static_cast<size_t>(n * k));
    for (int64_t j = 0; j < n; ++j) {
      const float row_sign = j % 2 ? -1.f : 1.f;
      for (int64_t i = 0; i < k; ++i) {
        // int8: +-max everywhere. q4: one element per block slightly beyond the rest on the other
        // side, so the rest get code 15 (d > 0) or, for negated rows, 15 with d < 0.
        const float v = f == WeightFormat::kInt8 ? (i % 3 == 0 ? 0.25f : -0.25f)
                        : i % 32 == 0            ? -2.f / 7.f
                                                 : 0.25f;
        wf[j * k + i] = v * row_sign;
      }
    }
    Weights w(f, n, k, wf);
    const std::vector<float> wq = w.Dequantized();
    const std::vector<float> ref = RunGemm(CpuLevel::kScalar, w, 2, x, nullptr);
    for (int64_t m = 0; m < 2; ++m) {
      const ActRow a = QuantizeAct(&x[m * k], k);
      for (int64_t j = 0; j < n; ++j) {
        double exact = 0;
        for (int64_t i = 0; i < k; ++i) exact += double{wq[j * k + i]} * a.scale * a.q[i];
        EXPECT_NEAR(ref[m * n + j], exact, std::fabs(exact) * 1e-5 + 1e-6) << WeightFormatName(f);
      }
    }
    for (CpuLevel level : TestedLevels()) {
      const std::vector<float> y = RunGemm(level, w, 2, x, nullptr);
      for (size_t i = 0; i < y.size(); ++i) {
        ASSERT_EQ(Bits(y[i]), Bits(ref[i])) << WeightFormatName(f) << " " << CpuLevelName(level);
      }
    }
  }
}

TEST(QuantGemm, ZeroActivationsOrWeightsGiveBiasWithoutNan) {
  const Shape s = {5, 70, 11};
  const std::vector<float> bias = Random(static_cast<size_t>(s.n), 51);
  for (WeightFormat f : kFormats) {
    Weights zero_w(f, s.n, s.k, std::vector<float>(static_cast<size_t>(s.n * s.k), 0.f));
    Weights rand_w(f, s.n, s.k, Random(static_cast<size_t>(s.n * s.k), 52));
    const std::vector<float> zero_x(static_cast<size_t>(s.m * s.k), 0.f);
    const std::vector<float> rand_x = Random(static_cast<size_t>(s.m * s.k), 53);
    for (CpuLevel level : TestedLevels()) {
      for (auto [w, x] : {std::pair{&zero_w, &rand_x}, std::pair{&rand_w, &zero_x}}) {
        const std::vector<float> y = RunGemm(level, *w, s.m, *x, bias.data());
        for (int64_t i = 0; i < s.m; ++i) {
          for (int64_t j = 0; j < s.n; ++j) ASSERT_EQ(y[i * s.n + j], bias[j]);
        }
      }
    }
  }
}

// Bad activations (NaN, infinity) must not crash and are treated alike at every level.
TEST(QuantGemm, NonFiniteActivationsDoNotCrash) {
  const Shape s = {2, 40, 9};
  std::vector<float> x = Random(static_cast<size_t>(s.m * s.k), 61);
  x[3] = std::numeric_limits<float>::quiet_NaN();
  x[s.k + 5] = std::numeric_limits<float>::infinity();
  for (WeightFormat f : kFormats) {
    Weights w(f, s.n, s.k, Random(static_cast<size_t>(s.n * s.k), 62));
    for (CpuLevel level : TestedLevels()) {
      const std::vector<float> y = RunGemm(level, w, s.m, x, nullptr);
      EXPECT_EQ(y.size(), static_cast<size_t>(s.m * s.n));
    }
  }
}

// A layout pin independent of the quantizer: a hand-built block whose codes follow the
// documented byte/nibble positions, multiplied by a one-hot activation, picks out one weight.
TEST(QuantGemm, Q4KernelsReadTheDocumentedNibbleLayout) {
  BlockQ4x8 blk{};
  for (int r = 0; r < 8; ++r) blk.d[r] = Fp32ToFp16(static_cast<float>(r + 1));
  for (int c = 0; c < 4; ++c) {
    for (int r = 0; r < 8; ++r) {
      for (int i = 0; i < 4; ++i) {
        const int lo = (r + 4 * c + i) % 16, hi = (3 * r + 16 + 4 * c + i) % 16;
        blk.qs[32 * c + 4 * r + i] = static_cast<uint8_t>(lo | hi << 4);
      }
    }
  }
  auto code = [](int r, int j) { return j < 16 ? (r + j) % 16 : (3 * r + j) % 16; };
  for (int r = 0; r < 8; ++r) {
    for (int j = 0; j < 32; ++j) ASSERT_EQ(Q4Code(blk, r, j), code(r, j));
  }
  QGemmProblem p;
  p.m = 1;
  p.ldx = 32;
  p.w = ViewWeights(WeightFormat::kQ4, 8, 32, &blk);
  p.ldy = 8;
  for (CpuLevel level : TestedLevels()) {
    for (int j = 0; j < 32; ++j) {
      std::vector<float> x(32, 0.f), y(8, 0.f);
      x[j] = 1.f;
      p.x = x.data();
      p.y = y.data();
      Aligned scratch(ScratchBytes(WeightFormat::kQ4, 1, 32));
      RunQGemm(SelectQGemm(WeightFormat::kQ4, level), p, scratch.get());
      for (int r = 0; r < 8; ++r) {
        ASSERT_FLOAT_EQ(y[r], static_cast<float>((r + 1) * (code(r, j) - 8)))
            << CpuLevelName(level) << " row " << r << " element " << j;
      }
    }
  }
}

// Splitting N with SliceRows gives the same columns as the whole product.
TEST(QuantGemm, SlicedRowsMatchTheWholeProduct) {
  const Shape s = {3, 50, 21};
  for (WeightFormat f : kFormats) {
    Weights w(f, s.n, s.k, Random(static_cast<size_t>(s.n * s.k), 71));
    const std::vector<float> x = Random(static_cast<size_t>(s.m * s.k), 72);
    const std::vector<float> bias = Random(static_cast<size_t>(s.n), 73);
    const CpuLevel level = BestCpuLevel();
    const std::vector<float> whole = RunGemm(level, w, s.m, x, bias.data());
    const int64_t cut = 8;  // a multiple of 8, as kQ4 needs
    for (auto [begin, end] : {std::pair<int64_t, int64_t>{0, cut}, {cut, s.n}}) {
      QGemmProblem p;
      p.m = s.m;
      p.x = x.data();
      p.ldx = s.k;
      p.w = SliceRows(w.view(), begin, end);
      p.bias = bias.data() + begin;
      std::vector<float> y(static_cast<size_t>(s.m * (end - begin)));
      p.y = y.data();
      p.ldy = end - begin;
      Aligned scratch(ScratchBytes(f, s.m, s.k));
      RunQGemm(SelectQGemm(f, level), p, scratch.get());
      for (int64_t i = 0; i < s.m; ++i) {
        for (int64_t j = begin; j < end; ++j) {
          ASSERT_EQ(y[i * (end - begin) + j - begin], whole[i * s.n + j]) << WeightFormatName(f);
        }
      }
    }
  }
}

#if defined(__aarch64__)
// SelectQGemm picks one NEON variant per CPU; test the plain one on dotprod CPUs as well.
TEST(QuantGemm, NeonPlainAndDotProdVariantsMatchScalar) {
  const Shape s = {5, 100, 19};
  for (WeightFormat f : {WeightFormat::kInt8, WeightFormat::kQ4}) {
    Weights w(f, s.n, s.k, Random(static_cast<size_t>(s.n * s.k), 81));
    const std::vector<float> x = Random(static_cast<size_t>(s.m * s.k), 82);
    const std::vector<float> ref = RunGemm(CpuLevel::kScalar, w, s.m, x, nullptr);
    std::vector<GemmFn> variants = {f == WeightFormat::kInt8 ? neon::GemmInt8 : neon::GemmQ4};
    if (CpuHasArmDotProd()) {
      variants.push_back(f == WeightFormat::kInt8 ? neon::GemmInt8Dot : neon::GemmQ4Dot);
    }
    for (GemmFn gemm : variants) {
      QGemmProblem p;
      p.m = s.m;
      p.x = x.data();
      p.ldx = s.k;
      p.w = w.view();
      std::vector<float> y(static_cast<size_t>(s.m * s.n));
      p.y = y.data();
      p.ldy = s.n;
      Aligned scratch(ScratchBytes(f, s.m, s.k));
      neon::QuantizeActs(p, scratch.get());
      gemm(p, scratch.get());
      for (size_t i = 0; i < y.size(); ++i) ASSERT_EQ(Bits(y[i]), Bits(ref[i]));
    }
  }
}
#endif

}  // namespace
}  // namespace edgeinfer::quant
