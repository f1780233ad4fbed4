// AVX2 + FMA + F16C kernels. Only this file is compiled with those flags, and the
// dispatcher calls it only on CPUs that report them.
#include <immintrin.h>

#include <algorithm>
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

// How far ahead of its loads each weight row is prefetched, as in the AVX-512 set (see
// kernels_avx512.cpp for the measurements behind it).
constexpr int kPrefetchBytes = 8192;

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
    for (int i = 0; i < ROWS; ++i) {
      w[i] = load(W + (r0 + i) * cols + k);
      _mm_prefetch(reinterpret_cast<const char*>(W + (r0 + i) * cols + k) + kPrefetchBytes, _MM_HINT_T0);
    }
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

// Tiles of ROWS rows by up to 2 vectors: at 4 rows, 8 accumulators, 4 weight registers
// and one input register fit the 16 vector registers.
template <int ROWS, typename T, typename Load, typename Widen>
inline void gemv_row_tile(const T* W, const float* x, int64_t cols, int64_t r0, int64_t n_x,
                          float* y, int64_t y_stride, Load load, Widen widen) {
  int64_t b = 0;
  for (; b + 2 <= n_x; b += 2) gemv_tile<ROWS, 2>(W, x, cols, r0, b, y, y_stride, load, widen);
  for (; b < n_x; ++b) gemv_tile<ROWS, 1>(W, x, cols, r0, b, y, y_stride, load, widen);
}

// One row against up to 8 vectors per tile: 8 accumulators, and each weight load serves
// 8 products while the inputs come from L1.
template <typename T, typename Load, typename Widen>
inline void gemv_row_wide(const T* W, const float* x, int64_t cols, int64_t r, int64_t n_x,
                          float* y, int64_t y_stride, Load load, Widen widen) {
  int64_t b = 0;
  for (; b + 8 <= n_x; b += 8) gemv_tile<1, 8>(W, x, cols, r, b, y, y_stride, load, widen);
  for (; b + 4 <= n_x; b += 4) gemv_tile<1, 4>(W, x, cols, r, b, y, y_stride, load, widen);
  gemv_row_tile<1>(W, x + b * cols, cols, r, n_x - b, y + b * y_stride, y_stride, load, widen);
}

// Tile shapes measured with 2 threads on an AMD EPYC with AVX2 (mamba-130m and
// mamba2-130m decode, alternating runs). From 8 vectors up, one row by 8 vectors beat
// 4 rows by 2 by 10-40% (f32 and bf16). Below 8, four-row tiles raised one sequence's
// f32 decode by 10-25% over one-row tiles, but lowered bf16 and f16 decode by 5-20%, so
// half-precision weights keep one-row tiles there. The tile shape never changes a result.
template <typename T, typename Load, typename Widen>
void gemv_rows(const T* W, const float* x, int64_t cols, int64_t row_begin, int64_t row_end,
               float* y, int64_t n_x, int64_t y_stride, bool four_row_tiles, Load load,
               Widen widen) {
  int64_t r = row_begin;
  if (n_x >= 8) {
    for (; r < row_end; ++r) gemv_row_wide(W, x, cols, r, n_x, y, y_stride, load, widen);
    return;
  }

  if (four_row_tiles)
    for (; r + 4 <= row_end; r += 4) gemv_row_tile<4>(W, x, cols, r, n_x, y, y_stride, load, widen);
  for (; r < row_end; ++r) gemv_row_tile<1>(W, x, cols, r, n_x, y, y_stride, load, widen);
}

void gemv_f32(const float* W, const float* x, int64_t cols, int64_t rb, int64_t re, float* y,
              int64_t n_x, int64_t y_stride) {
  gemv_rows(W, x, cols, rb, re, y, n_x, y_stride, true, load_f32, [](float v) { return v; });
}
void gemv_bf16(const uint16_t* W, const float* x, int64_t cols, int64_t rb, int64_t re, float* y,
               int64_t n_x, int64_t y_stride) {
  gemv_rows(W, x, cols, rb, re, y, n_x, y_stride, false, load_bf16, widen_bf16);
}
void gemv_f16(const uint16_t* W, const float* x, int64_t cols, int64_t rb, int64_t re, float* y,
              int64_t n_x, int64_t y_stride) {
  gemv_rows(W, x, cols, rb, re, y, n_x, y_stride, false, load_f16, f16_to_f32);
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

// Loads lanes [0, width) of 8 floats at p and sets the other lanes to zero.
__m256 load_lanes(const float* p, int width) {
  if (width == 8) return _mm256_loadu_ps(p);
  float lanes[8] = {};
  for (int j = 0; j < width; ++j) lanes[j] = p[j];
  return _mm256_loadu_ps(lanes);
}

void store_lanes(float* p, __m256 v, int width) {
  if (width == 8) {
    _mm256_storeu_ps(p, v);
    return;
  }
  float lanes[8];
  _mm256_storeu_ps(lanes, v);
  for (int j = 0; j < width; ++j) p[j] = lanes[j];
}

// Computes log(w) for finite w >= 1 as e ln 2 + log(m), with w = 2^e * m and m in
// [sqrt(1/2), sqrt(2)). log(m) = 2 atanh(s) with s = (m - 1) / (m + 1) and |s| <= 0.172,
// summed to s^11, so the first dropped term is below 6e-11 of the sum.
__m256 log_vector(__m256 w) {
  const __m256i bits = _mm256_castps_si256(w);
  __m256 e = _mm256_cvtepi32_ps(
      _mm256_sub_epi32(_mm256_srli_epi32(bits, 23), _mm256_set1_epi32(127)));
  __m256 m = _mm256_castsi256_ps(_mm256_or_si256(
      _mm256_and_si256(bits, _mm256_set1_epi32(0x007fffff)), _mm256_set1_epi32(0x3f800000)));
  const __m256 above = _mm256_cmp_ps(m, _mm256_set1_ps(1.41421356f), _CMP_GT_OQ);
  m = _mm256_blendv_ps(m, _mm256_mul_ps(m, _mm256_set1_ps(0.5f)), above);
  e = _mm256_add_ps(e, _mm256_and_ps(above, _mm256_set1_ps(1.0f)));

  const __m256 s = _mm256_div_ps(_mm256_sub_ps(m, _mm256_set1_ps(1.0f)),
                                 _mm256_add_ps(m, _mm256_set1_ps(1.0f)));
  const __m256 s2 = _mm256_mul_ps(s, s);
  __m256 p = _mm256_set1_ps(1.0f / 11);
  p = _mm256_fmadd_ps(p, s2, _mm256_set1_ps(1.0f / 9));
  p = _mm256_fmadd_ps(p, s2, _mm256_set1_ps(1.0f / 7));
  p = _mm256_fmadd_ps(p, s2, _mm256_set1_ps(1.0f / 5));
  p = _mm256_fmadd_ps(p, s2, _mm256_set1_ps(1.0f / 3));
  p = _mm256_fmadd_ps(p, s2, _mm256_set1_ps(1.0f));
  const __m256 log_m = _mm256_mul_ps(_mm256_add_ps(s, s), p);

  // e * ln 2 with ln 2 split in two parts, so e * 0.693145751953125 is exact.
  return _mm256_fmadd_ps(e, _mm256_set1_ps(1.42860682e-6f),
                         _mm256_fmadd_ps(e, _mm256_set1_ps(0.693145751953125f), log_m));
}

// softplus(v) = log1p(exp(v)), or v above 20 as PyTorch's threshold does. log1p(u) is
// log(w) - ((w - 1) - u) / w with w = 1 + u, which keeps the rounding of 1 + u out of the
// result, so tiny u give u.
__m256 softplus_vector(__m256 v) {
  const __m256 u = exp_vector(_mm256_min_ps(v, _mm256_set1_ps(20.0f)));
  const __m256 w = _mm256_add_ps(_mm256_set1_ps(1.0f), u);
  const __m256 rounding = _mm256_sub_ps(_mm256_sub_ps(w, _mm256_set1_ps(1.0f)), u);
  const __m256 log1p_u = _mm256_sub_ps(log_vector(w), _mm256_div_ps(rounding, w));
  return _mm256_blendv_ps(log1p_u, v, _mm256_cmp_ps(v, _mm256_set1_ps(20.0f), _CMP_GT_OQ));
}

void softplus_f32(const float* x, int64_t n, float* out) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, softplus_vector(_mm256_loadu_ps(x + i)));
  if (i < n) {
    const int width = static_cast<int>(n - i);
    store_lanes(out + i, softplus_vector(load_lanes(x + i, width)), width);
  }
}

// silu(z) = z / (1 + exp(-z)), lane by lane.
__m256 silu_vector(__m256 z) {
  return _mm256_div_ps(z, _mm256_add_ps(_mm256_set1_ps(1.0f), exp_vector(_mm256_sub_ps(_mm256_setzero_ps(), z))));
}

void silu_f32(const float* v, const float* gate, int64_t n, float* out) {
  for (int64_t i = 0; i < n; i += 8) {
    const int width = static_cast<int>(std::min<int64_t>(8, n - i));
    __m256 s = silu_vector(load_lanes(gate + i, width));
    if (v != nullptr) s = _mm256_mul_ps(load_lanes(v + i, width), s);
    store_lanes(out + i, s, width);
  }
}

// Scalar helpers local to this file (see widen_bf16 for why they are not shared).
float softplus_local(float v) { return v > 20.0f ? v : ::log1pf(::expf(v)); }
float silu_local(float v) { return v / (1.0f + ::expf(-v)); }

// The scan for 8 channels at a time, vectorized over channels. The N state vectors stay
// in registers (or L1, where N exceeds the 16 registers) across the tokens. Each state
// step is one exp and two multiply-adds with B and C broadcast, so there is no horizontal
// sum, y is stored 8 channels at a time, and softplus runs in vectors too.
template <int N>
void scan_channel_block(const SelectiveScanArgs& a, float* ssm_state, float* y, int64_t c0,
                        int width) {
  __m256 h[N], A[N];
  for (int n = 0; n < N; ++n) {
    float h_lanes[8] = {}, A_lanes[8] = {};
    for (int j = 0; j < width; ++j) {
      h_lanes[j] = ssm_state[(c0 + j) * N + n];
      A_lanes[j] = a.A[(c0 + j) * N + n];
    }
    h[n] = _mm256_loadu_ps(h_lanes);
    A[n] = _mm256_loadu_ps(A_lanes);
  }
  const __m256 D = load_lanes(a.D + c0, width);
  const __m256 bias = load_lanes(a.delta_bias + c0, width);

  for (int64_t t = 0; t < a.L; ++t) {
    const __m256 dt = softplus_vector(_mm256_add_ps(load_lanes(a.delta + t * a.E + c0, width), bias));
    const __m256 x = load_lanes(a.x + t * a.E + c0, width);
    const __m256 dt_x = _mm256_mul_ps(dt, x);
    const float* B = a.B + t * a.bc_stride;
    const float* C = a.C + t * a.bc_stride;

    __m256 out = _mm256_setzero_ps();
    for (int n = 0; n < N; ++n) {
      __m256 dA = exp_vector(_mm256_mul_ps(dt, A[n]));
      h[n] = _mm256_fmadd_ps(dA, h[n], _mm256_mul_ps(dt_x, _mm256_set1_ps(B[n])));
      out = _mm256_fmadd_ps(h[n], _mm256_set1_ps(C[n]), out);
    }
    out = _mm256_fmadd_ps(D, x, out);

    // y = out * silu(z), silu(z) = z / (1 + exp(-z))
    const __m256 gate = silu_vector(load_lanes(a.z + t * a.z_stride + c0, width));
    store_lanes(y + t * a.E + c0, _mm256_mul_ps(out, gate), width);
  }

  for (int n = 0; n < N; ++n) {
    float h_lanes[8];
    _mm256_storeu_ps(h_lanes, h[n]);
    for (int j = 0; j < width; ++j) ssm_state[(c0 + j) * N + n] = h_lanes[j];
  }
}

// The scan vectorized over the state dimension, 8 states per vector. A d_state that is
// not a multiple of 8 finishes with scalar steps that use the same exp. Used for state
// sizes without a channel-block kernel.
void scan_per_channel(const SelectiveScanArgs& a, float* ssm_state, float* y, int64_t c_begin,
                      int64_t c_end) {
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

void selective_scan_channels(const SelectiveScanArgs& a, float* ssm_state, float* y,
                             int64_t c_begin, int64_t c_end) {
  if (a.N != 16 && a.N != 8) {
    scan_per_channel(a, ssm_state, y, c_begin, c_end);
    return;
  }
  for (int64_t c0 = c_begin; c0 < c_end; c0 += 8) {
    const int width = static_cast<int>(std::min<int64_t>(8, c_end - c0));
    if (a.N == 16) {
      scan_channel_block<16>(a, ssm_state, y, c0, width);
    } else {
      scan_channel_block<8>(a, ssm_state, y, c0, width);
    }
  }
}

// The Mamba-2 recurrence with each state row S[h, p, :] in vectors of 8 (the last one
// partial): one multiply-add updates 8 states, and a second accumulates S · C.
void ssd_recurrent_heads(const SsdScanArgs& a, float* ssm_state, float* y, int64_t h_begin,
                         int64_t h_end) {
  const int64_t P = a.P, N = a.N, HP = a.H * a.P, heads_per_group = a.H / a.G;
  const int tail = static_cast<int>(N % 8);
  for (int64_t h = h_begin; h < h_end; ++h) {
    const int64_t g = h / heads_per_group;
    float* S = ssm_state + h * P * N;
    for (int64_t t = 0; t < a.L; ++t) {
      const float dt = a.dt[t * a.H + h];
      const __m256 decay = _mm256_set1_ps(::expf(dt * a.A[h]));
      const float* B = a.B + t * a.bc_stride + g * N;
      const float* C = a.C + t * a.bc_stride + g * N;
      for (int64_t p = 0; p < P; ++p) {
        const float x = a.x[t * a.x_stride + h * P + p];
        const __m256 dt_x = _mm256_set1_ps(dt * x);
        float* S_row = S + p * N;
        __m256 acc = _mm256_setzero_ps();
        int64_t n = 0;
        for (; n + 8 <= N; n += 8) {
          const __m256 s = _mm256_fmadd_ps(_mm256_loadu_ps(S_row + n), decay,
                                           _mm256_mul_ps(dt_x, _mm256_loadu_ps(B + n)));
          _mm256_storeu_ps(S_row + n, s);
          acc = _mm256_fmadd_ps(s, _mm256_loadu_ps(C + n), acc);
        }
        if (tail > 0) {
          const __m256 s = _mm256_fmadd_ps(load_lanes(S_row + n, tail), decay,
                                           _mm256_mul_ps(dt_x, load_lanes(B + n, tail)));
          store_lanes(S_row + n, s, tail);
          acc = _mm256_fmadd_ps(s, load_lanes(C + n, tail), acc);
        }
        const float skip = a.D_has_hdim ? a.D[h * P + p] : a.D[h];
        y[t * HP + h * P + p] = horizontal_sum(acc) + skip * x;
      }
    }
  }
}

const CpuKernels kAvx2{"avx2",           gemv_f32,        gemv_bf16,    gemv_f16,
                       nullptr,         nullptr,         selective_scan_channels,
                       ssd_recurrent_heads,
                       widen_bf16_array, widen_f16_array, exp_f32,    softplus_f32,
                       silu_f32,        false};

}  // namespace

const CpuKernels& cpu_kernels_avx2() { return kAvx2; }

}  // namespace mambacpp
