// The bf16 matrix product on AVX-512 BF16 (VDPBF16PS), for CPUs that have it without AMX
// (AMD Zen 4, Intel Cooper Lake). Only this file is compiled with those flags, and the
// dispatcher offers the "avx512bf16" set only on CPUs that report them.
//
// Measured on a Xeon (family 6 model 207) with this set forced, on mamba2-130m bf16. One
// sequence decoded at 76-81 tokens/s against 72-73 with the AVX-512 set, and eight at
// 252-260 against 242-251. A 512-token prefill ran at 466-478 against 762-789 with the
// weights widened for OpenBLAS sgemm, so prefill keeps an f32 product on widened weights
// (matmul_bf16_for_prefill), now the AVX-512 set's gemm.
// NOTE: not measured on a CPU without AMX, where this set is the one chosen.
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "ops/cpu_kernels.h"
#include "ops/x86/bf16_inputs.h"

namespace mambacpp {

const CpuKernels& cpu_kernels_avx512();

namespace {

// Each VDPBF16PS multiplies 32 bf16 weights by 32 bf16 inputs and adds the products in
// pairs to 16 f32 lanes.
constexpr int64_t kStepK = 32;

// How far ahead of its loads each weight row is prefetched, as in the AVX-512 set.
constexpr int kPrefetchBytes = 8192;

// One tile of ROWS weight rows times VECTORS input vectors (already rounded to bf16, row
// stride k_pad, zero past cols). Every (row, vector) pair gets the same operations in
// the same order whatever the tile shape, so results never depend on the batch.
template <int ROWS, int VECTORS>
inline void product_tile(const uint16_t* W, const uint16_t* xb, int64_t cols, int64_t k_pad,
                         int64_t r0, int64_t b0, float* y, int64_t y_stride) {
  __m512 acc[ROWS][VECTORS];
  for (int i = 0; i < ROWS; ++i)
    for (int j = 0; j < VECTORS; ++j) acc[i][j] = _mm512_setzero_ps();

  for (int64_t k = 0; k < cols; k += kStepK) {
    const int64_t left = cols - k;
    const __mmask32 mask = left >= kStepK ? ~__mmask32{0} : static_cast<__mmask32>((1u << left) - 1);
    __m512i w[ROWS];
    for (int i = 0; i < ROWS; ++i) {
      w[i] = _mm512_maskz_loadu_epi16(mask, W + (r0 + i) * cols + k);
      _mm_prefetch(reinterpret_cast<const char*>(W + (r0 + i) * cols + k) + kPrefetchBytes, _MM_HINT_T0);
    }
    for (int j = 0; j < VECTORS; ++j) {
      const __m512i xv = _mm512_load_si512(xb + (b0 + j) * k_pad + k);
      for (int i = 0; i < ROWS; ++i)
        acc[i][j] = _mm512_dpbf16_ps(acc[i][j], reinterpret_cast<__m512bh&>(w[i]),
                                     reinterpret_cast<const __m512bh&>(xv));
    }
  }

  for (int i = 0; i < ROWS; ++i)
    for (int j = 0; j < VECTORS; ++j) y[(b0 + j) * y_stride + r0 + i] = _mm512_reduce_add_ps(acc[i][j]);
}

// Tiles of ROWS rows by 8, 4 or 1 vectors: two rows by 8 vectors take 16 accumulators,
// 2 weight registers and one input register.
template <int ROWS>
inline void product_row_tile(const uint16_t* W, const uint16_t* xb, int64_t cols, int64_t k_pad,
                             int64_t r0, int64_t n_x, float* y, int64_t y_stride) {
  int64_t b = 0;
  for (; b + 8 <= n_x; b += 8) product_tile<ROWS, 8>(W, xb, cols, k_pad, r0, b, y, y_stride);
  for (; b + 4 <= n_x; b += 4) product_tile<ROWS, 4>(W, xb, cols, k_pad, r0, b, y, y_stride);
  for (; b < n_x; ++b) product_tile<ROWS, 1>(W, xb, cols, k_pad, r0, b, y, y_stride);
}

void matmul_bf16(const uint16_t* W, const float* x, int64_t cols, int64_t row_begin,
                 int64_t row_end, float* y, int64_t n_x, int64_t y_stride) {
  if (row_end <= row_begin || n_x <= 0) return;

  // x rounded to bf16, each row padded with zeros to whole 32-k steps.
  const int64_t k_pad = (cols + kStepK - 1) / kStepK * kStepK;
  thread_local ThreadBuffer<uint16_t> buffer;
  uint16_t* xb = buffer.reserve(static_cast<size_t>(n_x * k_pad));
  for (int64_t m = 0; m < n_x; ++m)
    for (int64_t k = 0; k < k_pad; k += kStepK)
      _mm512_store_si512(xb + m * k_pad + k, load_as_bf16(x + m * cols + k, min_i64(kStepK, cols - k)));

  int64_t r = row_begin;
  if (n_x >= 8)
    for (; r + 2 <= row_end; r += 2) product_row_tile<2>(W, xb, cols, k_pad, r, n_x, y, y_stride);
  for (; r < row_end; ++r) product_row_tile<1>(W, xb, cols, k_pad, r, n_x, y, y_stride);
}

}  // namespace

const CpuKernels& cpu_kernels_avx512bf16() {
  static const CpuKernels kernels = [] {
    CpuKernels k = cpu_kernels_avx512();
    k.isa = "avx512bf16";
    k.matmul_bf16 = matmul_bf16;
    return k;
  }();
  return kernels;
}

}  // namespace mambacpp
