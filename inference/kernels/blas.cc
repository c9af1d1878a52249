#include "inference/kernels/blas.h"

#include <cblas.h>

#include <algorithm>
#include <climits>

namespace edgeinfer {

namespace {

// y (n entries, stride inc) = beta * y, without reading y when beta == 0.
void ScaleVector(float* y, int64_t n, int64_t inc, float beta) {
  for (int64_t i = 0; i < n; ++i) y[i * inc] = beta == 0.f ? 0.f : beta * y[i * inc];
}

// One row of C: c = alpha * a * op(B) + beta * c, with a's k entries inc_a apart.
void RowTimesMatrix(bool trans_b, int64_t n, int64_t k, float alpha, const float* a, int64_t inc_a,
                    const float* b, int64_t ldb, float beta, float* c) {
  // sgemv scales y by beta first; with beta == 0 some BLAS builds compute 0 * NaN.
  if (beta == 0.f) ScaleVector(c, n, 1, 0.f);
  if (trans_b) {  // B is [n, k]: c = B a
    cblas_sgemv(CblasRowMajor, CblasNoTrans, static_cast<int>(n), static_cast<int>(k), alpha, b,
                static_cast<int>(ldb), a, static_cast<int>(inc_a), beta, c, 1);
  } else {  // B is [k, n]: c = B^T a
    cblas_sgemv(CblasRowMajor, CblasTrans, static_cast<int>(k), static_cast<int>(n), alpha, b,
                static_cast<int>(ldb), a, static_cast<int>(inc_a), beta, c, 1);
  }
}

// One column of C (ldc apart): c = alpha * op(A) * b + beta * c, with b's entries inc_b apart.
void MatrixTimesColumn(bool trans_a, int64_t m, int64_t k, float alpha, const float* a, int64_t lda,
                       const float* b, int64_t inc_b, float beta, float* c, int64_t ldc) {
  if (beta == 0.f) ScaleVector(c, m, ldc, 0.f);
  if (trans_a) {  // A is [k, m]
    cblas_sgemv(CblasRowMajor, CblasTrans, static_cast<int>(k), static_cast<int>(m), alpha, a,
                static_cast<int>(lda), b, static_cast<int>(inc_b), beta, c, static_cast<int>(ldc));
  } else {
    cblas_sgemv(CblasRowMajor, CblasNoTrans, static_cast<int>(m), static_cast<int>(k), alpha, a,
                static_cast<int>(lda), b, static_cast<int>(inc_b), beta, c, static_cast<int>(ldc));
  }
}

}  // namespace

void Sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
           int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {
    for (int64_t i = 0; i < m; ++i) ScaleVector(c + i * ldc, n, 1, beta);
    return;
  }
  if (m == 1) {
    RowTimesMatrix(trans_b, n, k, alpha, a, trans_a ? lda : 1, b, ldb, beta, c);
    return;
  }
  if (n == 1) {
    MatrixTimesColumn(trans_a, m, k, alpha, a, lda, b, trans_b ? 1 : ldb, beta, c, ldc);
    return;
  }
  // BLAS takes int sizes; a flattened MatMul/Gemm M can exceed that, rows are independent.
  const int64_t max_rows = trans_a ? m : INT_MAX;
  for (int64_t row = 0; row < m; row += max_rows) {
    const int64_t rows = std::min(max_rows, m - row);
    const float* a_rows = trans_a ? a + row : a + row * lda;
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, static_cast<int>(rows), static_cast<int>(n),
                static_cast<int>(k), alpha, a_rows, static_cast<int>(lda), b, static_cast<int>(ldb),
                beta, c + row * ldc, static_cast<int>(ldc));
  }
}

}  // namespace edgeinfer
