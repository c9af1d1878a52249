#include "inference/onnx/onnx_tensor.h"

#include <gtest/gtest.h>

#include "tests/onnx/onnx_test_util.h"

namespace edgeinfer {
namespace {

using onnx::TensorProto;
using testing::FloatTensor;

TEST(OnnxTensor, FloatsFromRawAndTypedData) {
  EXPECT_EQ(*OnnxTensorFloats(FloatTensor("w", {2, 2}, {1, 2, 3, 4}, /*raw=*/true)),
            (std::vector<float>{1, 2, 3, 4}));
  EXPECT_EQ(*OnnxTensorFloats(FloatTensor("w", {3}, {5, 6, 7}, /*raw=*/false)),
            (std::vector<float>{5, 6, 7}));
  TensorProto scalar = FloatTensor("s", {}, {2.5f});
  EXPECT_EQ(*OnnxTensorFloats(scalar), (std::vector<float>{2.5f}));
}

TEST(OnnxTensor, DoubleAndHalfBecomeFloat) {
  TensorProto d;
  d.set_name("d");
  d.set_data_type(TensorProto::DOUBLE);
  d.add_dims(2);
  d.add_double_data(0.5);
  d.add_double_data(-2);
  EXPECT_EQ(*OnnxTensorFloats(d), (std::vector<float>{0.5f, -2.f}));
  TensorProto h;
  h.set_name("h");
  h.set_data_type(TensorProto::FLOAT16);
  h.add_dims(3);
  const uint16_t bits[] = {0x3c00, 0xc000, 0x3555};  // 1, -2, ~0.333
  h.set_raw_data(std::string(reinterpret_cast<const char*>(bits), sizeof(bits)));
  auto v = *OnnxTensorFloats(h);
  EXPECT_EQ(v[0], 1.f);
  EXPECT_EQ(v[1], -2.f);
  EXPECT_NEAR(v[2], 1.f / 3, 1e-3);
}

TEST(OnnxTensor, IntsFromInt64AndInt32) {
  EXPECT_EQ(*OnnxTensorInts(testing::IntTensor("s", {2}, {-1, 784})),
            (std::vector<int64_t>{-1, 784}));
  TensorProto t;
  t.set_name("i");
  t.set_data_type(TensorProto::INT32);
  t.add_dims(2);
  const int32_t raw[] = {7, -3};
  t.set_raw_data(std::string(reinterpret_cast<const char*>(raw), sizeof(raw)));
  EXPECT_EQ(*OnnxTensorInts(t), (std::vector<int64_t>{7, -3}));
}

TEST(OnnxTensor, RefusesExternalMismatchedAndWrongTypes) {
  TensorProto ext = FloatTensor("big", {4}, {});
  ext.clear_raw_data();
  ext.set_data_location(TensorProto::EXTERNAL);
  auto* kv = ext.add_external_data();
  kv->set_key("location");
  kv->set_value("weights.bin");
  auto r = OnnxTensorFloats(ext);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("big"), std::string::npos);
  EXPECT_NE(r.status().message().find("weights.bin"), std::string::npos);

  auto short_data = OnnxTensorFloats(FloatTensor("w", {2, 3}, {1, 2, 3}));
  ASSERT_FALSE(short_data.ok());
  EXPECT_NE(short_data.status().message().find("'w'"), std::string::npos);

  EXPECT_FALSE(OnnxTensorInts(FloatTensor("f", {1}, {1})).ok());
  TensorProto s;
  s.set_name("str");
  s.set_data_type(TensorProto::STRING);
  EXPECT_FALSE(OnnxTensorFloats(s).ok());
  EXPECT_EQ(OnnxTypeName(TensorProto::INT64), "INT64");
}

}  // namespace
}  // namespace edgeinfer
