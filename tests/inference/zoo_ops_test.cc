// The ops a model-zoo sweep of torch exports added (Where, Expand, Resize, ConvTranspose, Max,
// Min) against plain references on odd shapes, and their infer refusing what a hostile .eim
// could ask for (infer runs again at load).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "inference/op.h"
#include "tests/inference/op_test_util.h"

namespace edgeinfer {
namespace {

using testing::Numel;
using testing::RandomFloats;
using testing::RunSingleOp;
using testing::TestTensor;
using Ints = std::vector<int64_t>;

constexpr float kInf = std::numeric_limits<float>::infinity();

Status Infer(const std::string& op, const Attrs& attrs, const std::vector<Dims>& in_dims,
             Dims* out_dims = nullptr) {
  std::vector<TestTensor> in;
  for (const Dims& d : in_dims) in.push_back({d, {0.f}});
  Graph g = testing::MakeSingleOpGraph(op, attrs, in, 1);
  std::vector<TensorDesc> outs(1);
  Status s = FindOp(op)->infer(g.nodes[0], g, &outs);
  if (s.ok() && out_dims) *out_dims = outs[0].dims;
  return s;
}

// Row-major index of `at` (output coordinates) into a tensor of `dims` broadcast to the output.
int64_t BroadcastIndex(const Dims& dims, const Dims& out, const std::vector<int64_t>& at) {
  int64_t idx = 0;
  const size_t off = out.size() - dims.size();
  for (size_t i = 0; i < dims.size(); ++i) idx = idx * dims[i] + (dims[i] == 1 ? 0 : at[i + off]);
  return idx;
}

std::vector<int64_t> Coords(int64_t e, const Dims& out) {
  std::vector<int64_t> at(out.size());
  for (size_t i = out.size(); i-- > 0;) {
    at[i] = e % out[i];
    e /= out[i];
  }
  return at;
}

TEST(WhereExpandTest, WhereMatchesReferenceUnderBroadcasting) {
  struct Case {
    Dims c, x, y, out;
  };
  const Case cases[] = {
      {{3, 5}, {2, 3, 5}, {1}, {2, 3, 5}},
      {{1, 5}, {3, 1}, {2, 1, 1}, {2, 3, 5}},
      {{7}, {7}, {7}, {7}},
      {{2, 1, 3}, {1, 4, 1}, {}, {2, 4, 3}},
  };
  uint32_t seed = 1;
  for (const Case& k : cases) {
    std::vector<float> c = RandomFloats(Numel(k.c), seed++);
    for (float& v : c) v = v > 0.f ? 1.f : 0.f;
    TestTensor cond{k.c, c, true}, x{k.x, RandomFloats(Numel(k.x), seed++)},
        y{k.y, RandomFloats(Numel(k.y), seed++)};
    std::vector<TestTensor> out;
    ASSERT_TRUE(RunSingleOp("Where", {}, {cond, x, y}, &out).ok());
    ASSERT_EQ(out[0].dims, k.out);
    for (int64_t e = 0; e < Numel(k.out); ++e) {
      const auto at = Coords(e, k.out);
      const float want = c[BroadcastIndex(k.c, k.out, at)] != 0.f
                             ? x.data[BroadcastIndex(k.x, k.out, at)]
                             : y.data[BroadcastIndex(k.y, k.out, at)];
      ASSERT_EQ(out[0].data[e], want) << "element " << e;
    }
  }
  EXPECT_FALSE(Infer("Where", {}, {{3}, {4}, {1}}).ok());
  EXPECT_FALSE(Infer("Where", {}, {{3}, {3}}).ok());
}

TEST(WhereExpandTest, ExpandMatchesReferenceAndKeepsTheBatch) {
  struct Case {
    Dims in, shape;
  };
  const Case cases[] = {{{1, 1, 3}, {4, 2, 3}}, {{3, 1}, {2, 3, 5}}, {{1}, {6}}, {{2, 3}, {2, 3}}};
  uint32_t seed = 9;
  for (const Case& k : cases) {
    TestTensor x{k.in, RandomFloats(Numel(k.in), seed++)};
    Attrs a;
    a.Set("shape", k.shape);
    std::vector<TestTensor> out;
    ASSERT_TRUE(RunSingleOp("Expand", a, {x}, &out).ok());
    ASSERT_EQ(out[0].dims, k.shape);
    for (int64_t e = 0; e < Numel(k.shape); ++e)
      ASSERT_EQ(out[0].data[e], x.data[BroadcastIndex(k.in, k.shape, Coords(e, k.shape))]);
  }
  Attrs batch;
  batch.Set("shape", Dims{kBatchDim, 1, 3});
  Dims dims;
  ASSERT_TRUE(Infer("Expand", batch, {{1, 1, 3}}, &dims).ok());
  EXPECT_EQ(dims, (Dims{kBatchDim, 1, 3}));
  Attrs shrink;  // the shape must be the broadcast result, not smaller
  shrink.Set("shape", Dims{3});
  EXPECT_FALSE(Infer("Expand", shrink, {{2, 3}}).ok());
  EXPECT_FALSE(Infer("Expand", {}, {{2, 3}}).ok());  // shape is required
}

Attrs ResizeAttrs(const std::string& mode, const std::string& coord, Ints sizes,
                  std::vector<float> scales, const std::string& nearest = "round_prefer_floor") {
  Attrs a;
  a.Set("mode", mode);
  a.Set("coordinate_transformation_mode", coord);
  a.Set("nearest_mode", nearest);
  a.Set("sizes", sizes);
  a.Set("scales", scales);
  return a;
}

// torch's F.interpolate(mode="linear", align_corners=False) in 1-D, written out.
std::vector<float> Linear1d(const std::vector<float>& x, int64_t in, int64_t out) {
  std::vector<float> y(out);
  const double scale = static_cast<double>(out) / in;
  for (int64_t o = 0; o < out; ++o) {
    double s = std::max(0.0, (o + 0.5) / scale - 0.5);
    int64_t i0 = std::min<int64_t>(static_cast<int64_t>(s), in - 1);
    int64_t i1 = std::min<int64_t>(i0 + 1, in - 1);
    double w = s - i0;
    y[o] = static_cast<float>(x[i0] * (1 - w) + x[i1] * w);
  }
  return y;
}

TEST(ResizeTest, LinearAndNearestOnOddSizes) {
  for (auto [in, out] : {std::pair<int64_t, int64_t>{5, 13}, {7, 3}, {1, 4}, {4, 4}}) {
    SCOPED_TRACE(std::to_string(in) + " -> " + std::to_string(out));
    TestTensor x{{2, 3, in}, RandomFloats(6 * in, static_cast<uint32_t>(in * 31 + out))};
    std::vector<TestTensor> y;
    const float scale = static_cast<float>(static_cast<double>(out) / in);
    ASSERT_TRUE(
        RunSingleOp("Resize", ResizeAttrs("linear", "half_pixel", {out}, {scale}), {x}, &y).ok());
    ASSERT_EQ(y[0].dims, (Dims{2, 3, out}));
    for (int p = 0; p < 6; ++p) {
      std::vector<float> row(x.data.begin() + p * in, x.data.begin() + (p + 1) * in);
      testing::ExpectNear(
          std::vector<float>(y[0].data.begin() + p * out, y[0].data.begin() + (p + 1) * out),
          Linear1d(row, in, out), 1e-5f, 1e-6f);
    }
    // Nearest, asymmetric + floor (torch's "nearest"): source floor(o * in / out).
    ASSERT_TRUE(RunSingleOp("Resize", ResizeAttrs("nearest", "asymmetric", {out}, {scale}, "floor"),
                            {x}, &y)
                    .ok());
    for (int p = 0; p < 6; ++p)
      for (int64_t o = 0; o < out; ++o)
        ASSERT_EQ(y[0].data[p * out + o],
                  x.data[p * in +
                         std::min<int64_t>(in - 1, static_cast<int64_t>(std::floor(o / scale)))]);
  }
}

TEST(ResizeTest, NearestDoesNotLeakNonFiniteNeighbours) {
  TestTensor x{{1, 1, 2, 2}, {1.f, kInf, 3.f, 4.f}};
  std::vector<TestTensor> y;
  ASSERT_TRUE(RunSingleOp("Resize",
                          ResizeAttrs("nearest", "asymmetric", {4, 4}, {2.f, 2.f}, "floor"), {x},
                          &y)
                  .ok());
  EXPECT_EQ(y[0].data[0], 1.f);
  EXPECT_EQ(y[0].data[1], 1.f);
  EXPECT_EQ(y[0].data[2], kInf);
  EXPECT_EQ(y[0].data[8], 3.f);
}

TEST(ResizeTest, InferRefusesBadAttributes) {
  const Dims x = {kBatchDim, 2, 4, 4};
  Dims out;
  ASSERT_TRUE(
      Infer("Resize", ResizeAttrs("linear", "half_pixel", {8, 6}, {2.f, 1.5f}), {x}, &out).ok());
  EXPECT_EQ(out, (Dims{kBatchDim, 2, 8, 6}));
  EXPECT_FALSE(Infer("Resize", ResizeAttrs("cubic", "half_pixel", {8, 8}, {2, 2}), {x}).ok());
  EXPECT_FALSE(
      Infer("Resize", ResizeAttrs("linear", "tf_crop_and_resize", {8, 8}, {2, 2}), {x}).ok());
  EXPECT_FALSE(Infer("Resize", ResizeAttrs("linear", "half_pixel", {8}, {2}), {x}).ok());
  EXPECT_FALSE(Infer("Resize", ResizeAttrs("linear", "half_pixel", {0, 8}, {2, 2}), {x}).ok());
  EXPECT_FALSE(
      Infer("Resize", ResizeAttrs("linear", "half_pixel", {8, 8}, {std::nanf(""), 2}), {x}).ok());
  EXPECT_FALSE(Infer("Resize", ResizeAttrs("linear", "half_pixel", {8, 8}, {-2, 2}), {x}).ok());
  EXPECT_FALSE(
      Infer("Resize", ResizeAttrs("nearest", "half_pixel", {8, 8}, {2, 2}, "up"), {x}).ok());
  EXPECT_FALSE(Infer("Resize", ResizeAttrs("linear", "half_pixel", {8}, {2}), {{2, 8}}).ok());
  EXPECT_FALSE(
      Infer("Resize", ResizeAttrs("linear", "half_pixel", {8}, {2}), {{2, 3, kBatchDim}}).ok());
}

// ConvTranspose written out: every input element scatters its kernel window into the output.
std::vector<float> NaiveConvTranspose(const TestTensor& x, const TestTensor& w,
                                      const std::vector<float>& bias, const Dims& out, Ints stride,
                                      Ints dil, Ints pads, int64_t group) {
  const bool two_d = x.dims.size() == 4;
  const int64_t c = x.dims[1], ih = two_d ? x.dims[2] : 1, iw = x.dims.back();
  const int64_t m = out[1], oh = two_d ? out[2] : 1, ow = out.back();
  const int64_t kh = two_d ? w.dims[2] : 1, kw = w.dims.back(), mg = m / group, cg = c / group;
  const int64_t sh = two_d ? stride[0] : 1, sw = stride.back(), dh = two_d ? dil[0] : 1,
                dw = dil.back(), pt = two_d ? pads[0] : 0, pl = two_d ? pads[1] : pads[0];
  std::vector<float> y(Numel(out));
  for (int64_t n = 0; n < x.dims[0]; ++n)
    for (int64_t o = 0; o < m; ++o)
      for (int64_t i = 0; i < oh * ow; ++i) y[(n * m + o) * oh * ow + i] = bias[o];
  for (int64_t n = 0; n < x.dims[0]; ++n)
    for (int64_t ci = 0; ci < c; ++ci)
      for (int64_t iy = 0; iy < ih; ++iy)
        for (int64_t ix = 0; ix < iw; ++ix)
          for (int64_t oc = 0; oc < mg; ++oc)
            for (int64_t ky = 0; ky < kh; ++ky)
              for (int64_t kx = 0; kx < kw; ++kx) {
                const int64_t oy = iy * sh - pt + ky * dh, ox = ix * sw - pl + kx * dw;
                if (oy < 0 || oy >= oh || ox < 0 || ox >= ow) continue;
                const int64_t mo = (ci / cg) * mg + oc;
                y[((n * m + mo) * oh + oy) * ow + ox] +=
                    x.data[((n * c + ci) * ih + iy) * iw + ix] *
                    w.data[((ci * mg + oc) * kh + ky) * kw + kx];
              }
  return y;
}

TEST(ConvTransposeTest, MatchesTheScatterReference) {
  struct Case {
    Dims x, w;
    Ints stride, dil, pads, out_pad;
    int64_t group;
  };
  const Case cases[] = {
      {{2, 3, 5, 4}, {3, 2, 3, 3}, {2, 2}, {1, 1}, {1, 1, 1, 1}, {1, 1}, 1},
      {{1, 4, 3, 3}, {4, 3, 2, 3}, {2, 1}, {1, 2}, {0, 1, 1, 0}, {0, 0}, 2},
      {{3, 2, 7}, {2, 5, 4}, {3}, {1}, {2, 1}, {2}, 1},
      {{1, 6, 5}, {6, 1, 3}, {1}, {2}, {0, 0}, {0}, 6},
      {{1, 1, 2, 2}, {1, 1, 3, 3}, {3, 3}, {1, 1}, {0, 0, -1, -1}, {0, 0}, 1},  // output_shape
  };
  uint32_t seed = 40;
  for (const Case& k : cases) {
    const size_t spatial = k.x.size() - 2;
    TestTensor x{k.x, RandomFloats(Numel(k.x), seed++)};
    TestTensor w{k.w, RandomFloats(Numel(k.w), seed++), true};
    const int64_t m = k.w[1] * k.group;
    TestTensor b{{m}, RandomFloats(m, seed++), true};
    Attrs a;
    a.Set("kernel_shape", Ints(k.w.begin() + 2, k.w.end()));
    a.Set("strides", k.stride);
    a.Set("dilations", k.dil);
    a.Set("pads", k.pads);
    a.Set("output_padding", k.out_pad);
    a.Set("group", k.group);
    std::vector<TestTensor> out;
    Status s = RunSingleOp("ConvTranspose", a, {x, w, b}, &out);
    ASSERT_TRUE(s.ok()) << s.ToString();
    Dims want_dims = {k.x[0], m};
    for (size_t i = 0; i < spatial; ++i)
      want_dims.push_back(k.stride[i] * (k.x[2 + i] - 1) + k.out_pad[i] +
                          (k.w[2 + i] - 1) * k.dil[i] + 1 - k.pads[i] - k.pads[i + spatial]);
    ASSERT_EQ(out[0].dims, want_dims);
    Ints begin(k.pads.begin(), k.pads.begin() + spatial);
    testing::ExpectNear(
        out[0].data, NaiveConvTranspose(x, w, b.data, want_dims, k.stride, k.dil, begin, k.group),
        1e-5f, 1e-5f);
  }
}

TEST(ConvTransposeTest, InferRefusesBadGeometry) {
  Attrs a;
  a.Set("kernel_shape", Ints{3});
  a.Set("strides", Ints{2});
  a.Set("pads", Ints{0, 0});
  a.Set("output_padding", Ints{1});
  Dims out;
  ASSERT_TRUE(Infer("ConvTranspose", a, {{kBatchDim, 4, 5}, {4, 2, 3}}, &out).ok());
  EXPECT_EQ(out, (Dims{kBatchDim, 2, 12}));
  EXPECT_FALSE(Infer("ConvTranspose", a, {{kBatchDim, 4, 5}, {3, 2, 3}}).ok());       // C mismatch
  EXPECT_FALSE(Infer("ConvTranspose", a, {{kBatchDim, 4, 5}, {4, 2, 5}}).ok());       // kernel
  EXPECT_FALSE(Infer("ConvTranspose", a, {{kBatchDim, 4, 5}, {4, 2, 3}, {3}}).ok());  // bias
  Attrs bad = a;
  bad.Set("output_padding", Ints{2});  // must be below the stride
  EXPECT_FALSE(Infer("ConvTranspose", bad, {{kBatchDim, 4, 5}, {4, 2, 3}}).ok());
  bad = a;
  bad.Set("strides", Ints{0});
  EXPECT_FALSE(Infer("ConvTranspose", bad, {{kBatchDim, 4, 5}, {4, 2, 3}}).ok());
  bad = a;
  bad.Set("pads", Ints{9, 9});  // nothing left of the output
  EXPECT_FALSE(Infer("ConvTranspose", bad, {{kBatchDim, 4, 5}, {4, 2, 3}}).ok());
  bad = a;
  bad.Set("group", int64_t{3});  // 4 channels do not split into 3 groups
  EXPECT_FALSE(Infer("ConvTranspose", bad, {{kBatchDim, 4, 5}, {4, 2, 3}}).ok());
  EXPECT_FALSE(Infer("ConvTranspose", a, {{kBatchDim, 4, kBatchDim}, {4, 2, 3}}).ok());
}

TEST(MaxMinTest, BroadcastAndPropagateNaN) {
  const float nan = std::nanf("");
  TestTensor a{{2, 3}, {1, nan, 3, -1, 5, -kInf}};
  TestTensor b{{3}, {2, 0, nan}};
  std::vector<TestTensor> out;
  ASSERT_TRUE(RunSingleOp("Max", {}, {a, b}, &out).ok());
  EXPECT_EQ(out[0].data[0], 2.f);
  EXPECT_TRUE(std::isnan(out[0].data[1]));
  EXPECT_TRUE(std::isnan(out[0].data[2]));
  EXPECT_EQ(out[0].data[3], 2.f);
  EXPECT_EQ(out[0].data[4], 5.f);
  ASSERT_TRUE(RunSingleOp("Min", {}, {a, b}, &out).ok());
  EXPECT_EQ(out[0].data[0], 1.f);
  EXPECT_TRUE(std::isnan(out[0].data[1]));
  EXPECT_EQ(out[0].data[3], -1.f);
  EXPECT_EQ(out[0].data[4], 0.f);
  EXPECT_TRUE(std::isnan(out[0].data[5]));
}

TEST(SliceStepTest, StridedAndReversedRangesAndRefusals) {
  TestTensor x{{2, 7, 3}, RandomFloats(42, 77)};
  struct Case {
    int64_t start, end, step;
  };
  for (const Case& k : {Case{0, 7, 2}, Case{1, 6, 3}, Case{6, -1, -1}, Case{5, 0, -2}}) {
    Attrs a;
    a.Set("axis", int64_t{1});
    a.Set("start", k.start);
    a.Set("end", k.end);
    a.Set("step", k.step);
    std::vector<TestTensor> out;
    Status st = RunSingleOp("Slice", a, {x}, &out);
    ASSERT_TRUE(st.ok()) << st.ToString();
    std::vector<int64_t> rows;
    for (int64_t i = k.start; k.step > 0 ? i < k.end : i > k.end; i += k.step) rows.push_back(i);
    ASSERT_EQ(out[0].dims, (Dims{2, static_cast<int64_t>(rows.size()), 3}));
    size_t e = 0;
    for (int64_t n = 0; n < 2; ++n)
      for (int64_t r : rows)
        for (int64_t c = 0; c < 3; ++c) ASSERT_EQ(out[0].data[e++], x.data[(n * 7 + r) * 3 + c]);
  }
  for (const Case& k : {Case{0, 7, 0}, Case{7, 0, -1}, Case{0, 8, 2}, Case{3, 3, 1}}) {
    Attrs a;
    a.Set("axis", int64_t{1});
    a.Set("start", k.start);
    a.Set("end", k.end);
    a.Set("step", k.step);
    EXPECT_FALSE(Infer("Slice", a, {{2, 7, 3}}).ok()) << k.start << " " << k.end << " " << k.step;
  }
}

}  // namespace
}  // namespace edgeinfer
