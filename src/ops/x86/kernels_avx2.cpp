// AVX2 + FMA + F16C kernels. Only this file is compiled with those flags, and the
// dispatcher calls it only on CPUs that report them.
#include <immintrin.h>

#include <cmath>
#include <cstring>

#include "ops/cpu_kernels.h"
#include "ops/dtype.h"

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

// One tile of ROWS weight rows times VECTORS input vectors, one accumulator per pair:
// each weight load serves VECTORS products and each input load ROWS products. Every
// (row, vector) pair gets the same operations in the same order whatever the tile shape
// (8-wide multiply-adds over k, the same reduction, then a scalar tail), so results
// never depend on how many vectors share a call.
template <int ROWS, int VECTORS, typename T, typename Load, typename Widen>
inline void gemv_tile(const T* W, const float* x, int64_t cols, int64_t r0, int64_t b0, float* y,
                      int64_t y_stride, Load load, Widen widen) {
  __m256 acc[ROWS][VECTORS];
  for (int i = 0; i < ROWS; ++i)
    for (int j = 0; j < VECTORS; ++j) acc[i][j] = _mm256_setzero_ps();

  const int64_t cols8 = cols / 8 * 8;
  for (int64_t k = 0; k < cols8; k += 8) {
    __m256 w[ROWS];
    for (int i = 0; i < ROWS; ++i) w[i] = load(W + (r0 + i) * cols + k);
    for (int j = 0; j < VECTORS; ++j) {
      __m256 xv = _mm256_loadu_ps(x + (b0 + j) * cols + k);
      for (int i = 0; i < ROWS; ++i) acc[i][j] = _mm256_fmadd_ps(w[i], xv, acc[i][j]);
    }
  }

  for (int i = 0; i < ROWS; ++i) {
    const T* row = W + (r0 + i) * cols;
    for (int j = 0; j < VECTORS; ++j) {
      const float* xj = x + (b0 + j) * cols;
      float sum = horizontal_sum(acc[i][j]);
      for (int64_t k = cols8; k < cols; ++k) sum += widen(row[k]) * xj[k];
      y[(b0 + j) * y_stride + r0 + i] = sum;
    }
  }
}

// Tiles of 4 rows by up to 2 vectors: 8 accumulators, 4 weight registers and one input
// register fit the 16 vector registers.
template <int ROWS, typename T, typename Load, typename Widen>
inline void gemv_row_tile(const T* W, const float* x, int64_t cols, int64_t r0, int64_t n_x,
                          float* y, int64_t y_stride, Load load, Widen widen) {
  int64_t b = 0;
  for (; b + 2 <= n_x; b += 2) gemv_tile<ROWS, 2>(W, x, cols, r0, b, y, y_stride, load, widen);
  for (; b < n_x; ++b) gemv_tile<ROWS, 1>(W, x, cols, r0, b, y, y_stride, load, widen);
}

constexpr int64_t kMinVectorsForRowTiles = 8;

template <typename T, typename Load, typename Widen>
void gemv_rows(const T* W, const float* x, int64_t cols, int64_t row_begin, int64_t row_end,
               float* y, int64_t n_x, int64_t y_stride, Load load, Widen widen) {
  // Four-row tiles pay off only for larger batches: with few vectors, streaming four rows
  // at once read memory about 30% slower than one row at a time (one thread, 50280 x 768
  // f32 weights, AMD EPYC with AVX-512). The tile shape never changes a result.
  int64_t r = row_begin;
  if (n_x >= kMinVectorsForRowTiles)
    for (; r + 4 <= row_end; r += 4) gemv_row_tile<4>(W, x, cols, r, n_x, y, y_stride, load, widen);
  for (; r < row_end; ++r) gemv_row_tile<1>(W, x, cols, r, n_x, y, y_stride, load, widen);
}

void gemv_f32(const float* W, const float* x, int64_t cols, int64_t rb, int64_t re, float* y,
              int64_t n_x, int64_t y_stride) {
  gemv_rows(W, x, cols, rb, re, y, n_x, y_stride, load_f32, [](float v) { return v; });
}
void gemv_bf16(const uint16_t* W, const float* x, int64_t cols, int64_t rb, int64_t re, float* y,
               int64_t n_x, int64_t y_stride) {
  gemv_rows(W, x, cols, rb, re, y, n_x, y_stride, load_bf16, widen_bf16);
}
void gemv_f16(const uint16_t* W, const float* x, int64_t cols, int64_t rb, int64_t re, float* y,
              int64_t n_x, int64_t y_stride) {
  gemv_rows(W, x, cols, rb, re, y, n_x, y_stride, load_f16, f16_to_f32);
}

void widen_bf16_array(const uint16_t* src, int64_t n, float* out) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, load_bf16(src + i));
  for (; i < n; ++i) out[i] = widen_bf16(src[i]);
}

void widen_f16_array(const uint16_t* src, int64_t n, float* out) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, load_f16(src + i));
  for (; i < n; ++i) out[i] = f16_to_f32(src[i]);
}

// exp(x) = 2^n * e^r with n = round(x / ln 2) and |r| <= ln(2) / 2; e^r by its Taylor
// polynomial of degree 7, whose truncation error r^8 / 8! is below 6e-9. x is clamped to
// [-87.3, 88] so 2^n, built in the exponent bits, stays a normal float.
__m256 exp_vector(__m256 x) {
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.0f));
  __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                             _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.0f / 5040);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  __m256i exponent =
      _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(exponent));
}

float exp_local(float v) {
  float in[8] = {v}, out[8];
  _mm256_storeu_ps(out, exp_vector(_mm256_loadu_ps(in)));
  return out[0];
}

void exp_f32(const float* x, int64_t n, float* out) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, exp_vector(_mm256_loadu_ps(x + i)));
  for (; i < n; ++i) out[i] = exp_local(x[i]);
}

// Scalar helpers local to this file (see widen_bf16 for why they are not shared).
float softplus_local(float v) { return v > 20.0f ? v : ::log1pf(::expf(v)); }
float silu_local(float v) { return v / (1.0f + ::expf(-v)); }

// The scan vectorized over the state dimension, 8 states per vector. A d_state that is
// not a multiple of 8 finishes with scalar steps that use the same exp.
void selective_scan_channels(const SelectiveScanArgs& a, float* ssm_state, float* y,
                             int64_t c_begin, int64_t c_end) {
  const int64_t N8 = a.N / 8 * 8;
  for (int64_t c = c_begin; c < c_end; ++c) {
    float* h = ssm_state + c * a.N;
    const float* A = a.A + c * a.N;

    for (int64_t t = 0; t < a.L; ++t) {
      float dt = softplus_local(a.delta[t * a.E + c] + a.delta_bias[c]);
      float x = a.x[t * a.E + c];
      const float* B = a.B + t * a.bc_stride;
      const float* C = a.C + t * a.bc_stride;

      __m256 dt_v = _mm256_set1_ps(dt);
      __m256 dt_x = _mm256_set1_ps(dt * x);
      __m256 acc = _mm256_setzero_ps();
      for (int64_t n = 0; n < N8; n += 8) {
        __m256 dA = exp_vector(_mm256_mul_ps(dt_v, _mm256_loadu_ps(A + n)));
        __m256 h_v = _mm256_fmadd_ps(dA, _mm256_loadu_ps(h + n),
                                     _mm256_mul_ps(dt_x, _mm256_loadu_ps(B + n)));
        _mm256_storeu_ps(h + n, h_v);
        acc = _mm256_fmadd_ps(h_v, _mm256_loadu_ps(C + n), acc);
      }
      float out = horizontal_sum(acc);
      for (int64_t n = N8; n < a.N; ++n) {
        h[n] = exp_local(dt * A[n]) * h[n] + dt * x * B[n];
        out += h[n] * C[n];
      }

      out += a.D[c] * x;
      y[t * a.E + c] = out * silu_local(a.z[t * a.z_stride + c]);
    }
  }
}

const CpuKernels kAvx2{"avx2", gemv_f32, gemv_bf16, gemv_f16, selective_scan_channels,
                        widen_bf16_array, widen_f16_array, exp_f32};

}  // namespace

const CpuKernels& cpu_kernels_avx2() { return kAvx2; }

}  // namespace mambacpp
