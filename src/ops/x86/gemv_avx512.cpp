// AVX-512 (F + BW) row kernels; this file alone is compiled with those flags, and the
// dispatcher calls it only on CPUs that report them.
#include <immintrin.h>

#include <cstring>

#include "ops/dtype.h"
#include "ops/gemv_kernels.h"

namespace mambacpp {

namespace {

// A file-local copy of bf16 widening: an inline function shared with other files could
// be linked from this file's wider-ISA code into code that runs on any CPU.
float widen_bf16(uint16_t bits) {
  uint32_t u = static_cast<uint32_t>(bits) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

inline __m512 load_f32(const float* p) { return _mm512_loadu_ps(p); }

inline __m512 load_bf16(const uint16_t* p) {
  __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

inline __m512 load_f16(const uint16_t* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}

// Four accumulators hide the FMA latency; the tail past a multiple of 16 is scalar.
template <typename T, typename Load, typename Widen>
void gemv_rows(const T* W, const float* x, int64_t cols, int64_t row_begin, int64_t row_end,
               float* y, Load load, Widen widen) {
  int64_t cols64 = cols / 64 * 64;
  int64_t cols16 = cols / 16 * 16;
  for (int64_t r = row_begin; r < row_end; ++r) {
    const T* row = W + r * cols;
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    __m512 acc2 = _mm512_setzero_ps(), acc3 = _mm512_setzero_ps();
    int64_t k = 0;
    for (; k < cols64; k += 64) {
      acc0 = _mm512_fmadd_ps(load(row + k), _mm512_loadu_ps(x + k), acc0);
      acc1 = _mm512_fmadd_ps(load(row + k + 16), _mm512_loadu_ps(x + k + 16), acc1);
      acc2 = _mm512_fmadd_ps(load(row + k + 32), _mm512_loadu_ps(x + k + 32), acc2);
      acc3 = _mm512_fmadd_ps(load(row + k + 48), _mm512_loadu_ps(x + k + 48), acc3);
    }
    for (; k < cols16; k += 16) acc0 = _mm512_fmadd_ps(load(row + k), _mm512_loadu_ps(x + k), acc0);
    float sum = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc0, acc1), _mm512_add_ps(acc2, acc3)));
    for (; k < cols; ++k) sum += widen(row[k]) * x[k];
    y[r] = sum;
  }
}

void gemv_f32(const float* W, const float* x, int64_t cols, int64_t rb, int64_t re, float* y) {
  gemv_rows(W, x, cols, rb, re, y, load_f32, [](float v) { return v; });
}
void gemv_bf16(const uint16_t* W, const float* x, int64_t cols, int64_t rb, int64_t re, float* y) {
  gemv_rows(W, x, cols, rb, re, y, load_bf16, widen_bf16);
}
void gemv_f16(const uint16_t* W, const float* x, int64_t cols, int64_t rb, int64_t re, float* y) {
  gemv_rows(W, x, cols, rb, re, y, load_f16, f16_to_f32);
}

const GemvKernels kAvx512{"avx512", gemv_f32, gemv_bf16, gemv_f16};

}  // namespace

const GemvKernels& gemv_kernels_avx512() { return kAvx512; }

}  // namespace mambacpp
