#include "inference/tensor.h"

#include <gtest/gtest.h>

namespace edgeinfer {
namespace {

TEST(TensorTest, ResolvesBatchMultiples) {
  Shape s = Resolve({kBatchDim, 3, -16}, 4);
  ASSERT_EQ(s.rank, 3);
  EXPECT_EQ(s[0], 4);
  EXPECT_EQ(s[1], 3);
  EXPECT_EQ(s[2], 64);
  EXPECT_EQ(s.NumElements(), 4 * 3 * 64);
  EXPECT_EQ(DimsToString({kBatchDim, 3, -16}), "[B, 3, 16B]");
}

TEST(TensorTest, DTypeNamesRoundTrip) {
  for (DType t : {DType::kFloat32, DType::kFloat16, DType::kInt8, DType::kUInt8, DType::kInt32,
                  DType::kInt64}) {
    DType parsed;
    ASSERT_TRUE(ParseDType(DTypeName(t), &parsed));
    EXPECT_EQ(parsed, t);
  }
  DType parsed;
  EXPECT_FALSE(ParseDType("float64", &parsed));
}

}  // namespace
}  // namespace edgeinfer
