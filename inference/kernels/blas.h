// The one door to OpenBLAS for the FP32 ops: row-major GEMM with the vector cases routed to GEMV.
#pragma once

#include <cstdint>

namespace edgeinfer {

// C[m,n] = alpha * op(A) * op(B) + beta * C, row-major; op(A) is A ([m,k], lda) or A^T (A is
// [k,m]), likewise op(B). With beta == 0, C is not read (it may hold garbage or NaN).
// m == 1 and n == 1 go to cblas_sgemv: OpenBLAS 0.3.21's sgemm is several times slower there.
// Tolerates k == 0 (C = beta * C) and m above INT_MAX rows (split into calls) for !trans_a.
void Sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
           int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

}  // namespace edgeinfer
