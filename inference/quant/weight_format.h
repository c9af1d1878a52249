// Weight tensors in the graph and their blobs: how a tensor's dtype and logical dims map to a
// kernel weight format (quant_types.h) and to the exact bytes of its blob.
//
// A weight of logical dims [N, d1, ..., dr] (Gemm B stored [N, K] with transB = 1, Conv W
// [M, C/group, k...]) is the matrix W [N, K] with K = d1 * ... * dr: row n holds output channel
// n's inputs in the float tensor's own order. Its dtype says how the rows are stored:
//   float32        dense float, [N][K]
//   float16        dense IEEE binary16, [N][K] (WeightFormat::kFp16)
//   qint8_channel  WeightFormat::kInt8: int8 q[N][Kp] + float scales[N] + int32 row_sums[N]
//   qint4_block    WeightFormat::kQ4: BlockQ4x8[ceil(N/8)][ceil(K/32)]
// The .eim writer and reader, ValidateGraph and the converter all size blobs with WeightBlobBytes
// (through ConstantBytes for the reader and writer), so a file that loads is safe to run.
#pragma once

#include <cstdint>

#include "common/status.h"
#include "inference/quant/quant_types.h"
#include "inference/tensor.h"

namespace edgeinfer::quant {

// The kernel format a weight dtype is stored in: kFloat16 -> kFp16, kQInt8Channel -> kInt8,
// kQInt4Block -> kQ4. False for every other dtype (float32 included: no quantized kernel).
bool WeightFormatOf(DType t, WeightFormat* out);
// The dtype of a weight stored in `f`.
DType WeightDType(WeightFormat f);

// The precision a weight dtype runs at, as recorded in a node's `precision` attribute and shown
// by the tools: float32 "fp32", float16 "fp16", qint8_channel "int8", qint4_block "int4";
// nullptr for other dtypes.
const char* WeightPrecisionName(DType t);

// N and K of a weight of logical `dims` as above: rank >= 2, every dim literal and positive.
// Returns InvalidArgument naming what is wrong.
Status WeightMatrix(const Dims& dims, int64_t* n, int64_t* k);

// Bytes of the blob of a packed weight dtype (IsPackedWeight) with logical `dims`: the dims pass
// WeightMatrix and K <= kMaxQuantK (what the kernels accept; checked here so that every blob that
// loads can be run). Returns InvalidArgument for a dense dtype or dims that break these rules.
Result<uint64_t> WeightBlobBytes(DType t, const Dims& dims);

}  // namespace edgeinfer::quant
