// AVX2 + FMA + F16C row kernels; this file alone is compiled with those flags, and the
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

float horizontal_sum(__m256 v) {
  __m128 lo = _mm256_castps256_ps128(v);
  __m128 hi = _mm256_extractf128_ps(v, 1);
  lo = _mm_add_ps(lo, hi);
  lo = _mm_hadd_ps(lo, lo);
  lo = _mm_hadd_ps(lo, lo);
  return _mm_cvtss_f32(lo);
}

inline __m256 load_f32(const float* p) { return _mm256_loadu_ps(p); }

inline __m256 load_bf16(const uint16_t* p) {
  __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

inline __m256 load_f16(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

// Four accumulators hide the FMA latency; the tail past a multiple of 8 is scalar.
template <typename T, typename Load, typename Widen>
void gemv_rows(const T* W, const float* x, int64_t cols, int64_t row_begin, int64_t row_end,
               float* y, Load load, Widen widen) {
  int64_t cols32 = cols / 32 * 32;
  int64_t cols8 = cols / 8 * 8;
  for (int64_t r = row_begin; r < row_end; ++r) {
    const T* row = W + r * cols;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    __m256 acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k < cols32; k += 32) {
      acc0 = _mm256_fmadd_ps(load(row + k), _mm256_loadu_ps(x + k), acc0);
      acc1 = _mm256_fmadd_ps(load(row + k + 8), _mm256_loadu_ps(x + k + 8), acc1);
      acc2 = _mm256_fmadd_ps(load(row + k + 16), _mm256_loadu_ps(x + k + 16), acc2);
      acc3 = _mm256_fmadd_ps(load(row + k + 24), _mm256_loadu_ps(x + k + 24), acc3);
    }
    for (; k < cols8; k += 8) acc0 = _mm256_fmadd_ps(load(row + k), _mm256_loadu_ps(x + k), acc0);
    float sum = horizontal_sum(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
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

const GemvKernels kAvx2{"avx2", gemv_f32, gemv_bf16, gemv_f16};

}  // namespace

const GemvKernels& gemv_kernels_avx2() { return kAvx2; }

}  // namespace mambacpp
