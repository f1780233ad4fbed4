#pragma once

#include <cstdint>

#include "mambacpp/thread_pool.h"

namespace mambacpp::train {

// y [M, N] = x [M, K] · W^T + b, with W [N, K] and b [N] (b may be null). Rows of x are
// `ldx` floats apart. Overwrites y.
void linear_forward(const float* x, int64_t ldx, int64_t M, int64_t K, const float* W,
                    const float* b, int64_t N, float* y, ThreadPool& pool);

// The gradients of linear_forward for dy [M, N]. Overwrites dx [M, K] (rows `lddx` apart)
// when dx is not null, and adds dy^T · x into dW [N, K] and the column sums of dy into db
// [N] when db is not null.
void linear_backward(const float* x, int64_t ldx, const float* dy, int64_t M, int64_t K,
                     const float* W, int64_t N, float* dx, int64_t lddx, float* dW, float* db,
                     ThreadPool& pool);

}  // namespace mambacpp::train
