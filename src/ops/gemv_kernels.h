#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mambacpp {

// Row kernels of a matrix-vector product: for each row r in [row_begin, row_end),
// y[r] = sum_k W[r, k] * x[k] over k < cols, with W row-major (row stride = cols) in the
// named dtype and all arithmetic in f32. One set per instruction set; all sets give the
// same results up to f32 summation order.
struct GemvKernels {
  const char* isa;
  void (*f32)(const float* W, const float* x, int64_t cols, int64_t row_begin, int64_t row_end,
              float* y);
  void (*bf16)(const uint16_t* W, const float* x, int64_t cols, int64_t row_begin,
               int64_t row_end, float* y);
  void (*f16)(const uint16_t* W, const float* x, int64_t cols, int64_t row_begin,
              int64_t row_end, float* y);
};

// The plain C++ kernels every other set is tested against.
const GemvKernels& gemv_kernels_scalar();

// Every kernel set this CPU can run, scalar first.
std::vector<const GemvKernels*> available_gemv_kernels();

// The fastest set this CPU runs, chosen once at first use. The environment variable
// MAMBACPP_ISA (scalar, avx2, avx512) picks a slower one, for tests and comparisons.
const GemvKernels& active_gemv_kernels();

}  // namespace mambacpp
