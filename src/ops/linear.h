#pragma once

#include <cstdint>

#include "ops/matrix.h"
#include "mambacpp/thread_pool.h"

namespace mambacpp {

// y [M, N] = x [M, K] · W^T (+ bias [N]), with W [N, K] in f32, f16 or bf16 and f32
// accumulation. Up to 16 rows (decode, also of a batch of sequences) run the dispatched
// matrix-vector kernels split by weight rows over the pool, so each row of y is the same
// whatever M is. More rows (prefill) run the kernel set's gemm (AVX-512). Its threads
// take chunks of weight rows as they finish, or split the tokens for weights of few rows,
// and a token's row of y is the same for every M above 16. Sets without a gemm run
// OpenBLAS sgemm on slices of the weight rows, one per pool thread, on bf16/f16 weights
// after widening blocks of rows to f32.
// On a CPU whose kernel set has a bf16 product (AVX-512 BF16, AMX), bf16 weights take it
// instead, with x rounded to bf16 and f32 accumulation: at every M with AMX, and up to
// 16 rows with AVX-512 BF16.
// `bias` may be null. x and y must not overlap.
void linear(const float* x, int64_t M, const Matrix& W, const float* bias, float* y,
            ThreadPool& pool);

// The scalar twin of linear(): plain loops, no BLAS, no SIMD, rounding x to bf16 where
// linear() does.
void linear_reference(const float* x, int64_t M, const Matrix& W, const float* bias, float* y);

}  // namespace mambacpp
