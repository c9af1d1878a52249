#include "inference/onnx/shape_fold.h"

#include <gtest/gtest.h>

namespace edgeinfer {

void PrintTo(const SymInt& v, std::ostream* os) { *os << v.ToString(); }

namespace {

constexpr int64_t B = kBatchDim;

TEST(OnnxShapeFold, ArithmeticKeepsTheBatchSymbolic) {
  auto b = SymInt::Batch(1);
  EXPECT_EQ(*SymArith(SymOp::kAdd, b, b), SymInt::Batch(2));
  EXPECT_EQ(*SymArith(SymOp::kMul, b, SymInt::Lit(16)), SymInt::Batch(16));
  EXPECT_EQ(*SymArith(SymOp::kDiv, SymInt::Batch(784), b), SymInt::Lit(784));
  EXPECT_EQ(*SymArith(SymOp::kDiv, SymInt::Batch(4), SymInt::Lit(2)), SymInt::Batch(2));
  EXPECT_EQ(*SymArith(SymOp::kSub, b, b), SymInt::Lit(0));
  EXPECT_EQ(*SymArith(SymOp::kDiv, SymInt::Lit(-7), SymInt::Lit(2)), SymInt::Lit(-3));
  EXPECT_FALSE(SymArith(SymOp::kMul, b, b).ok());
  EXPECT_FALSE(SymArith(SymOp::kAdd, b, SymInt::Lit(1)).ok());
  EXPECT_FALSE(SymArith(SymOp::kDiv, SymInt::Batch(3), SymInt::Lit(2)).ok());
  EXPECT_FALSE(SymArith(SymOp::kDiv, SymInt::Lit(3), SymInt::Lit(0)).ok());
}

TEST(OnnxShapeFold, ReshapeResolvesZeroAndMinusOne) {
  std::vector<SymInt> t = {SymInt::Batch(1), SymInt::Lit(-1)};
  EXPECT_EQ(*ResolveReshape({B, 1, 28, 28}, t, false), (Dims{B, 784}));
  t = {SymInt::Lit(0), SymInt::Lit(-1)};
  EXPECT_EQ(*ResolveReshape({B, 1, 28, 28}, t, false), (Dims{B, 784}));
  t = {SymInt::Lit(-1), SymInt::Lit(28)};
  EXPECT_EQ(*ResolveReshape({B, 1, 28, 28}, t, false), (Dims{-28, 28}));
  t = {SymInt::Lit(4), SymInt::Lit(0)};
  EXPECT_EQ(*ResolveReshape({2, 0, 2}, t, true), (Dims{4, 0}));
  t = {SymInt::Lit(-1), SymInt::Lit(-1)};
  EXPECT_FALSE(ResolveReshape({B, 4}, t, false).ok());
  t = {SymInt::Lit(3), SymInt::Lit(-1)};
  EXPECT_FALSE(ResolveReshape({B, 4}, t, false).ok());  // 4B / 3 is not a dim
  t = {SymInt::Batch(1), SymInt::Lit(5)};
  EXPECT_FALSE(ResolveReshape({B, 4}, t, false).ok());  // counts differ
}

TEST(OnnxShapeFold, FlattenSqueezeUnsqueeze) {
  EXPECT_EQ(*FlattenDims({B, 3, 4, 5}, 1), (Dims{B, 60}));
  EXPECT_EQ(*FlattenDims({B, 3, 4, 5}, 2), (Dims{-3, 20}));
  EXPECT_EQ(*FlattenDims({B, 3, 4, 5}, 0), (Dims{1, -60}));
  EXPECT_EQ(*FlattenDims({B, 3, 4, 5}, -1), (Dims{-12, 5}));
  EXPECT_FALSE(FlattenDims({B, 3}, 3).ok());
  EXPECT_EQ(*SqueezeDims({B, 64, 1}, {2}), (Dims{B, 64}));
  EXPECT_EQ(*SqueezeDims({B, 1, 64, 1}, {}), (Dims{B, 64}));
  EXPECT_FALSE(SqueezeDims({B, 64, 1}, {0}).ok());  // the batch is not known to be 1
  EXPECT_FALSE(SqueezeDims({B, 64, 1}, {1}).ok());
  EXPECT_EQ(*UnsqueezeDims({B, 64}, {1, -1}), (Dims{B, 1, 64, 1}));
  EXPECT_EQ(*UnsqueezeDims({}, {0}), (Dims{1}));
  EXPECT_FALSE(UnsqueezeDims({B, 64}, {1, 1}).ok());
}

TEST(OnnxShapeFold, KnownIntOps) {
  KnownInts shape = KnownInts::Vector({SymInt::Batch(1), SymInt::Lit(1), SymInt::Lit(28)});
  KnownInts idx{{}, {SymInt::Lit(0)}};
  KnownInts g = *KnownGather(shape, idx, 0);
  EXPECT_TRUE(g.shape.empty());
  EXPECT_EQ(g.values[0], SymInt::Batch(1));
  KnownInts last = *KnownGather(shape, KnownInts{{}, {SymInt::Lit(-1)}}, 0);
  EXPECT_EQ(last.values[0], SymInt::Lit(28));
  EXPECT_FALSE(KnownGather(shape, KnownInts{{}, {SymInt::Lit(3)}}, 0).ok());

  KnownInts cat = *KnownConcat(
      {KnownInts::Vector({SymInt::Batch(1)}), KnownInts::Vector({SymInt::Lit(-1)})}, 0);
  EXPECT_EQ(cat.shape, (Dims{2}));
  EXPECT_EQ(cat.values[1], SymInt::Lit(-1));

  KnownInts tail = *KnownSlice(shape, 1, INT64_MAX, 1);
  EXPECT_EQ(tail.values.size(), 2u);
  KnownInts rev = *KnownSlice(shape, -1, INT64_MIN, -1);
  EXPECT_EQ(rev.values[2], SymInt::Batch(1));

  KnownInts prod = *KnownArith(SymOp::kMul, tail, KnownInts{{}, {SymInt::Lit(2)}});
  EXPECT_EQ(prod.values[1], SymInt::Lit(56));
  EXPECT_FALSE(KnownArith(SymOp::kMul, shape, shape).ok());  // B x B
  EXPECT_FALSE(shape.Literals().ok());
}

}  // namespace
}  // namespace edgeinfer
