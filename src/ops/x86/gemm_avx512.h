// The AVX-512 matrix product for prefill sizes, CpuKernels::gemm of the AVX-512 sets.
#pragma once

#include <cstdint>

#include "ops/cpu_kernels.h"
#include "ops/matrix.h"

namespace mambacpp {

void gemm_avx512(const float* x, int64_t M, const Matrix& W, RowChunks& rows, float* y,
                 int64_t y_stride);

}  // namespace mambacpp
