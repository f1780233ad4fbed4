// Forward and backward of a linear layer with OpenBLAS sgemm, one single-threaded call
// per pool thread on disjoint slices. The weight and bias gradients accumulate; dx is
// overwritten.
#include "train/linear_grad.h"

#include <cblas.h>

#include <algorithm>

#include "ops/blas.h"

namespace mambacpp::train {

namespace {

// Slices of at least 16 rows, one per thread when the work allows it.
int64_t grain_for(int64_t n, const ThreadPool& pool) {
  int64_t per_thread = (n + pool.size() - 1) / pool.size();
  return std::max<int64_t>(16, (per_thread + 15) / 16 * 16);
}

}  // namespace

void linear_forward(const float* x, int64_t ldx, int64_t M, int64_t K, const float* W,
                    const float* b, int64_t N, float* y, ThreadPool& pool) {
  if (M == 0 || N == 0) return;
  prepare_blas();

  // Split the output columns (weight rows): each slice reads all of x once.
  pool.parallel_for(N, grain_for(N, pool), [&](int64_t n0, int64_t n1) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, n1 - n0, K, 1.0f, x, ldx,
                W + n0 * K, K, 0.0f, y + n0, N);
    if (b == nullptr) return;
    for (int64_t m = 0; m < M; ++m) {
      float* row = y + m * N;
      for (int64_t n = n0; n < n1; ++n) row[n] += b[n];
    }
  });
}

void linear_backward(const float* x, int64_t ldx, const float* dy, int64_t M, int64_t K,
                     const float* W, int64_t N, float* dx, int64_t lddx, float* dW, float* db,
                     ThreadPool& pool) {
  if (M == 0) return;
  prepare_blas();

  // dx = dy · W, split over rows of dx.
  if (dx != nullptr) {
    pool.parallel_for(M, grain_for(M, pool), [&](int64_t m0, int64_t m1) {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m1 - m0, K, N, 1.0f, dy + m0 * N, N,
                  W, K, 0.0f, dx + m0 * lddx, lddx);
    });
  }

  // dW += dy^T · x and db += column sums of dy, split over weight rows.
  pool.parallel_for(N, grain_for(N, pool), [&](int64_t n0, int64_t n1) {
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n1 - n0, K, M, 1.0f, dy + n0, N, x, ldx,
                1.0f, dW + n0 * K, K);
    if (db == nullptr) return;
    for (int64_t m = 0; m < M; ++m) {
      const float* row = dy + m * N;
      for (int64_t n = n0; n < n1; ++n) db[n] += row[n];
    }
  });
}

}  // namespace mambacpp::train
