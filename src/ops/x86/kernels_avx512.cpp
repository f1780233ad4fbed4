// AVX-512 (F + BW) kernels. Only this file is compiled with those flags, and the
// dispatcher calls it only on CPUs that report them.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "ops/cpu_kernels.h"
#include "ops/dtype.h"
#include "ops/x86/gemm_avx512.h"

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

// The least distance ahead of its loads at which each weight row is prefetched. Without a
// prefetch, a 50280 x 768 f32 product on 2 Xeon cores (family 6 model 207) read 20-21 GB/s
// for one vector and 10 GB/s for eight in 4 x 4 tiles. With one 4-16 KB ahead it read
// 26-27 GB/s, and 17-18 GB/s for eight in 2 x 8 tiles.
constexpr int kPrefetchBytes = 8192;

// One tile of ROWS weight rows times VECTORS input vectors, one accumulator per pair:
// each weight load serves VECTORS products and each input load ROWS products. Every
// (row, vector) pair gets the same operations in the same order whatever the tile shape
// (16-wide multiply-adds over k, the same reduction, then a scalar tail), so results
// never depend on how many vectors share a call.
template <int ROWS, int VECTORS, typename T, typename Load, typename Widen>
inline void gemv_tile(const T* W, const float* x, int64_t cols, int64_t r0, int64_t b0, float* y,
                      int64_t y_stride, Load load, Widen widen) {
  __m512 acc[ROWS][VECTORS];
  for (int i = 0; i < ROWS; ++i)
    for (int j = 0; j < VECTORS; ++j) acc[i][j] = _mm512_setzero_ps();

  // Each row prefetches the same k of the next tile's rows, or 8 KB ahead if that is closer.
  const int64_t ahead = std::max<int64_t>(ROWS * cols * static_cast<int64_t>(sizeof(T)), kPrefetchBytes);
  const int64_t cols16 = cols / 16 * 16;
  for (int64_t k = 0; k < cols16; k += 16) {
    __m512 w[ROWS];
    for (int i = 0; i < ROWS; ++i) {
      w[i] = load(W + (r0 + i) * cols + k);
      _mm_prefetch(reinterpret_cast<const char*>(W + (r0 + i) * cols + k) + ahead, _MM_HINT_T0);
    }
    for (int j = 0; j < VECTORS; ++j) {
      __m512 xv = _mm512_loadu_ps(x + (b0 + j) * cols + k);
      for (int i = 0; i < ROWS; ++i) acc[i][j] = _mm512_fmadd_ps(w[i], xv, acc[i][j]);
    }
  }

  for (int i = 0; i < ROWS; ++i) {
    const T* row = W + (r0 + i) * cols;
    for (int j = 0; j < VECTORS; ++j) {
      const float* xj = x + (b0 + j) * cols;
      float sum = _mm512_reduce_add_ps(acc[i][j]);
      for (int64_t k = cols16; k < cols; ++k) sum += widen(row[k]) * xj[k];
      y[(b0 + j) * y_stride + r0 + i] = sum;
    }
  }
}

// Tiles of ROWS rows by 8, 4 or 1 vectors. Two rows by 8 vectors take 16 accumulators,
// 2 weight registers and one input register of the 32 vector registers.
template <int ROWS, typename T, typename Load, typename Widen>
inline void gemv_row_tile(const T* W, const float* x, int64_t cols, int64_t r0, int64_t n_x,
                          float* y, int64_t y_stride, Load load, Widen widen) {
  int64_t b = 0;
  for (; b + 8 <= n_x; b += 8) gemv_tile<ROWS, 8>(W, x, cols, r0, b, y, y_stride, load, widen);
  for (; b + 4 <= n_x; b += 4) gemv_tile<ROWS, 4>(W, x, cols, r0, b, y, y_stride, load, widen);
  for (; b < n_x; ++b) gemv_tile<ROWS, 1>(W, x, cols, r0, b, y, y_stride, load, widen);
}

constexpr int64_t kMinVectorsForRowPairs = 8;

template <typename T, typename Load, typename Widen>
void gemv_rows(const T* W, const float* x, int64_t cols, int64_t row_begin, int64_t row_end,
               float* y, int64_t n_x, int64_t y_stride, Load load, Widen widen) {
  // Two-row tiles pay off only from 8 vectors up: with 4, one-row tiles read 21-22 GB/s
  // and 4 x 4 tiles 18 (the Xeon above, 2 threads). On an AMD EPYC with AVX-512, streaming
  // four rows at once read about 30% slower than one row for few vectors. The tile shape
  // never changes a result.
  int64_t r = row_begin;
  if (n_x >= kMinVectorsForRowPairs)
    for (; r + 2 <= row_end; r += 2) gemv_row_tile<2>(W, x, cols, r, n_x, y, y_stride, load, widen);
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
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(out + i, load_bf16(src + i));
  for (; i < n; ++i) out[i] = widen_bf16(src[i]);
}

void widen_f16_array(const uint16_t* src, int64_t n, float* out) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(out + i, load_f16(src + i));
  for (; i < n; ++i) out[i] = f16_to_f32(src[i]);
}

// exp(x) = 2^n * e^r with n = round(x / ln 2) and |r| <= ln(2) / 2; e^r by its Taylor
// polynomial of degree 7, whose truncation error r^8 / 8! is below 6e-9. x is clamped to
// [-87.3, 88.3] so 2^n stays a normal float.
__m512 exp_vector(__m512 x) {
  x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.3f)), _mm512_set1_ps(88.3f));
  __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                  _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.0f / 5040);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

// Calls fn(i, mask) for each run of 16 lanes in [0, n), the mask selecting the lanes
// below n (all 16 but in the last run).
template <typename Fn>
void for_each_vector(int64_t n, Fn fn) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 mask = n - i >= 16 ? static_cast<__mmask16>(0xffff)
                                       : static_cast<__mmask16>((1u << (n - i)) - 1);
    fn(i, mask);
  }
}

void exp_f32(const float* x, int64_t n, float* out) {
  for_each_vector(n, [&](int64_t i, __mmask16 mask) {
    _mm512_mask_storeu_ps(out + i, mask, exp_vector(_mm512_maskz_loadu_ps(mask, x + i)));
  });
}

// ln(w) for normal w > 0, as the AVX2 set computes it: w = 2^e * m with m in
// [sqrt(2)/2, sqrt(2)], and ln(m) = 2 * atanh(s) with s = (m - 1) / (m + 1), |s| < 0.172,
// by its series to s^11 (truncation below 4e-10 relative).
__m512 log_vector(__m512 w) {
  const __m512i bits = _mm512_castps_si512(w);
  __m512 e = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_srli_epi32(bits, 23), _mm512_set1_epi32(127)));
  __m512 m = _mm512_castsi512_ps(_mm512_or_si512(_mm512_and_si512(bits, _mm512_set1_epi32(0x007fffff)),
                                                 _mm512_set1_epi32(0x3f800000)));
  const __mmask16 above = _mm512_cmp_ps_mask(m, _mm512_set1_ps(1.41421356f), _CMP_GT_OQ);
  m = _mm512_mask_mul_ps(m, above, m, _mm512_set1_ps(0.5f));
  e = _mm512_mask_add_ps(e, above, e, _mm512_set1_ps(1.0f));

  const __m512 s = _mm512_div_ps(_mm512_sub_ps(m, _mm512_set1_ps(1.0f)), _mm512_add_ps(m, _mm512_set1_ps(1.0f)));
  const __m512 s2 = _mm512_mul_ps(s, s);
  __m512 p = _mm512_set1_ps(1.0f / 11);
  p = _mm512_fmadd_ps(p, s2, _mm512_set1_ps(1.0f / 9));
  p = _mm512_fmadd_ps(p, s2, _mm512_set1_ps(1.0f / 7));
  p = _mm512_fmadd_ps(p, s2, _mm512_set1_ps(1.0f / 5));
  p = _mm512_fmadd_ps(p, s2, _mm512_set1_ps(1.0f / 3));
  p = _mm512_fmadd_ps(p, s2, _mm512_set1_ps(1.0f));
  const __m512 log_m = _mm512_mul_ps(_mm512_add_ps(s, s), p);

  // e * ln 2 with ln 2 split in two parts, so e * 0.693145751953125 is exact.
  return _mm512_fmadd_ps(e, _mm512_set1_ps(1.42860682e-6f),
                         _mm512_fmadd_ps(e, _mm512_set1_ps(0.693145751953125f), log_m));
}

// softplus(v) = log1p(exp(v)), or v above 20 as PyTorch's threshold does. log1p(u) is
// log(w) - ((w - 1) - u) / w with w = 1 + u, which keeps the rounding of 1 + u out of the
// result, so tiny u give u.
__m512 softplus_vector(__m512 v) {
  const __m512 u = exp_vector(_mm512_min_ps(v, _mm512_set1_ps(20.0f)));
  const __m512 w = _mm512_add_ps(_mm512_set1_ps(1.0f), u);
  const __m512 rounding = _mm512_sub_ps(_mm512_sub_ps(w, _mm512_set1_ps(1.0f)), u);
  const __m512 log1p_u = _mm512_sub_ps(log_vector(w), _mm512_div_ps(rounding, w));
  return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, _mm512_set1_ps(20.0f), _CMP_GT_OQ), log1p_u, v);
}

// silu(z) = z / (1 + exp(-z)).
__m512 silu_vector(__m512 z) {
  return _mm512_div_ps(z, _mm512_add_ps(_mm512_set1_ps(1.0f), exp_vector(_mm512_sub_ps(_mm512_setzero_ps(), z))));
}

// Scalar helpers local to this file (see widen_bf16 for why they are not shared).
float softplus_local(float v) { return v > 20.0f ? v : ::log1pf(::expf(v)); }
float silu_local(float v) { return v / (1.0f + ::expf(-v)); }

// The scan for 16 channels at a time, vectorized over channels. The N state vectors stay
// in registers across the tokens (gathered from and scattered back to the row-major
// state), and each state step is one exp and two multiply-adds with B and C broadcast.
template <int N>
void scan_channel_block(const SelectiveScanArgs& a, float* ssm_state, float* y, int64_t c0,
                        int width) {
  const __mmask16 mask = static_cast<__mmask16>((1u << width) - 1);
  // Lane j reads element n of channel c0 + j at (c0 + j) * N + n.
  const __m512i lane_offsets = _mm512_mullo_epi32(
      _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0), _mm512_set1_epi32(N));
  __m512 h[N], A[N];
  for (int n = 0; n < N; ++n) {
    h[n] = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), mask, lane_offsets, ssm_state + c0 * N + n, 4);
    A[n] = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), mask, lane_offsets, a.A + c0 * N + n, 4);
  }
  const __m512 D = _mm512_maskz_loadu_ps(mask, a.D + c0);
  const __m512 bias = _mm512_maskz_loadu_ps(mask, a.delta_bias + c0);

  for (int64_t t = 0; t < a.L; ++t) {
    const __m512 dt = softplus_vector(_mm512_add_ps(_mm512_maskz_loadu_ps(mask, a.delta + t * a.E + c0), bias));
    const __m512 x = _mm512_maskz_loadu_ps(mask, a.x + t * a.E + c0);
    const __m512 dt_x = _mm512_mul_ps(dt, x);
    const float* B = a.B + t * a.bc_stride;
    const float* C = a.C + t * a.bc_stride;

    __m512 out = _mm512_setzero_ps();
    for (int n = 0; n < N; ++n) {
      __m512 dA = exp_vector(_mm512_mul_ps(dt, A[n]));
      h[n] = _mm512_fmadd_ps(dA, h[n], _mm512_mul_ps(dt_x, _mm512_set1_ps(B[n])));
      out = _mm512_fmadd_ps(h[n], _mm512_set1_ps(C[n]), out);
    }
    out = _mm512_fmadd_ps(D, x, out);

    const __m512 gate = silu_vector(_mm512_maskz_loadu_ps(mask, a.z + t * a.z_stride + c0));
    _mm512_mask_storeu_ps(y + t * a.E + c0, mask, _mm512_mul_ps(out, gate));
  }

  for (int n = 0; n < N; ++n)
    _mm512_mask_i32scatter_ps(ssm_state + c0 * N + n, mask, lane_offsets, h[n], 4);
}

// The scan vectorized over the state dimension: 16 states per vector, the last vector
// masked when d_state is not a multiple of 16. Used for state sizes without a
// channel-block kernel.
void scan_per_channel(const SelectiveScanArgs& a, float* ssm_state, float* y, int64_t c_begin,
                      int64_t c_end) {
  for (int64_t c = c_begin; c < c_end; ++c) {
    float* h = ssm_state + c * a.N;
    const float* A = a.A + c * a.N;

    for (int64_t t = 0; t < a.L; ++t) {
      float dt = softplus_local(a.delta[t * a.E + c] + a.delta_bias[c]);
      float x = a.x[t * a.E + c];
      const float* B = a.B + t * a.bc_stride;
      const float* C = a.C + t * a.bc_stride;

      __m512 dt_v = _mm512_set1_ps(dt);
      __m512 dt_x = _mm512_set1_ps(dt * x);
      __m512 acc = _mm512_setzero_ps();
      for (int64_t n = 0; n < a.N; n += 16) {
        __mmask16 mask = a.N - n >= 16 ? static_cast<__mmask16>(0xffff)
                                       : static_cast<__mmask16>((1u << (a.N - n)) - 1);
        __m512 dA = exp_vector(_mm512_mul_ps(dt_v, _mm512_maskz_loadu_ps(mask, A + n)));
        __m512 h_v = _mm512_fmadd_ps(dA, _mm512_maskz_loadu_ps(mask, h + n),
                                     _mm512_mul_ps(dt_x, _mm512_maskz_loadu_ps(mask, B + n)));
        _mm512_mask_storeu_ps(h + n, mask, h_v);
        acc = _mm512_fmadd_ps(h_v, _mm512_maskz_loadu_ps(mask, C + n), acc);
      }

      float out = _mm512_reduce_add_ps(acc) + a.D[c] * x;
      y[t * a.E + c] = out * silu_local(a.z[t * a.z_stride + c]);
    }
  }
}

// One token (a decode step) for 16 channels at a time. Softplus, the gate and the output
// are vectors over the channels. Each channel's state row is updated in place, 16 states
// per vector, so the state needs no gather or scatter.
void scan_one_token(const SelectiveScanArgs& a, float* ssm_state, float* y, int64_t c_begin,
                    int64_t c_end) {
  const int64_t N = a.N;
  const __mmask16 state_tail = static_cast<__mmask16>((1u << (N % 16)) - 1);
  for (int64_t c0 = c_begin; c0 < c_end; c0 += 16) {
    const int width = static_cast<int>(std::min<int64_t>(16, c_end - c0));
    const __mmask16 mask = static_cast<__mmask16>((1u << width) - 1);
    const __m512 x = _mm512_maskz_loadu_ps(mask, a.x + c0);
    const __m512 dt = softplus_vector(
        _mm512_add_ps(_mm512_maskz_loadu_ps(mask, a.delta + c0), _mm512_maskz_loadu_ps(mask, a.delta_bias + c0)));
    alignas(64) float dt_lanes[16], dt_x_lanes[16], out_lanes[16] = {};
    _mm512_store_ps(dt_lanes, dt);
    _mm512_store_ps(dt_x_lanes, _mm512_mul_ps(dt, x));

    for (int j = 0; j < width; ++j) {
      float* h = ssm_state + (c0 + j) * N;
      const float* A = a.A + (c0 + j) * N;
      const __m512 dt_j = _mm512_set1_ps(dt_lanes[j]);
      const __m512 dt_x_j = _mm512_set1_ps(dt_x_lanes[j]);
      __m512 acc = _mm512_setzero_ps();
      for (int64_t n = 0; n < N; n += 16) {
        const __mmask16 m = N - n >= 16 ? static_cast<__mmask16>(0xffff) : state_tail;
        const __m512 dA = exp_vector(_mm512_mul_ps(dt_j, _mm512_maskz_loadu_ps(m, A + n)));
        const __m512 h_n = _mm512_fmadd_ps(dA, _mm512_maskz_loadu_ps(m, h + n),
                                           _mm512_mul_ps(dt_x_j, _mm512_maskz_loadu_ps(m, a.B + n)));
        _mm512_mask_storeu_ps(h + n, m, h_n);
        acc = _mm512_fmadd_ps(h_n, _mm512_maskz_loadu_ps(m, a.C + n), acc);
      }
      out_lanes[j] = _mm512_reduce_add_ps(acc);
    }

    const __m512 D = _mm512_maskz_loadu_ps(mask, a.D + c0);
    const __m512 out = _mm512_fmadd_ps(D, x, _mm512_load_ps(out_lanes));
    const __m512 gate = silu_vector(_mm512_maskz_loadu_ps(mask, a.z + c0));
    _mm512_mask_storeu_ps(y + c0, mask, _mm512_mul_ps(out, gate));
  }
}

void selective_scan_channels(const SelectiveScanArgs& a, float* ssm_state, float* y,
                             int64_t c_begin, int64_t c_end) {
  if (a.L == 1) {
    scan_one_token(a, ssm_state, y, c_begin, c_end);
    return;
  }
  if (a.N != 16 && a.N != 8) {
    scan_per_channel(a, ssm_state, y, c_begin, c_end);
    return;
  }
  for (int64_t c0 = c_begin; c0 < c_end; c0 += 16) {
    const int width = static_cast<int>(std::min<int64_t>(16, c_end - c0));
    if (a.N == 16) {
      scan_channel_block<16>(a, ssm_state, y, c0, width);
    } else {
      scan_channel_block<8>(a, ssm_state, y, c0, width);
    }
  }
}

// The Mamba-2 recurrence with each state row S[h, p, :] in vectors of 16 (the last one
// masked): one multiply-add updates 16 states, and a second accumulates S · C.
void ssd_recurrent_heads(const SsdScanArgs& a, float* ssm_state, float* y, int64_t h_begin,
                         int64_t h_end) {
  const int64_t P = a.P, N = a.N, HP = a.H * a.P, heads_per_group = a.H / a.G;
  const __mmask16 tail = static_cast<__mmask16>((1u << (N % 16)) - 1);
  for (int64_t h = h_begin; h < h_end; ++h) {
    const int64_t g = h / heads_per_group;
    float* S = ssm_state + h * P * N;
    for (int64_t t = 0; t < a.L; ++t) {
      const float dt = a.dt[t * a.H + h];
      const __m512 decay = _mm512_set1_ps(::expf(dt * a.A[h]));
      const float* B = a.B + t * a.bc_stride + g * N;
      const float* C = a.C + t * a.bc_stride + g * N;
      for (int64_t p = 0; p < P; ++p) {
        const float x = a.x[t * a.x_stride + h * P + p];
        const __m512 dt_x = _mm512_set1_ps(dt * x);
        float* S_row = S + p * N;
        __m512 acc = _mm512_setzero_ps();
        int64_t n = 0;
        for (; n + 16 <= N; n += 16) {
          const __m512 s = _mm512_fmadd_ps(_mm512_loadu_ps(S_row + n), decay,
                                           _mm512_mul_ps(dt_x, _mm512_loadu_ps(B + n)));
          _mm512_storeu_ps(S_row + n, s);
          acc = _mm512_fmadd_ps(s, _mm512_loadu_ps(C + n), acc);
        }
        if (n < N) {
          const __m512 s = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, S_row + n), decay,
                                           _mm512_mul_ps(dt_x, _mm512_maskz_loadu_ps(tail, B + n)));
          _mm512_mask_storeu_ps(S_row + n, tail, s);
          acc = _mm512_fmadd_ps(s, _mm512_maskz_loadu_ps(tail, C + n), acc);
        }
        const float skip = a.D_has_hdim ? a.D[h * P + p] : a.D[h];
        y[t * HP + h * P + p] = _mm512_reduce_add_ps(acc) + skip * x;
      }
    }
  }
}

void softplus_f32(const float* x, int64_t n, float* out) {
  for_each_vector(n, [&](int64_t i, __mmask16 mask) {
    _mm512_mask_storeu_ps(out + i, mask, softplus_vector(_mm512_maskz_loadu_ps(mask, x + i)));
  });
}

void silu_f32(const float* v, const float* gate, int64_t n, float* out) {
  for_each_vector(n, [&](int64_t i, __mmask16 mask) {
    __m512 s = silu_vector(_mm512_maskz_loadu_ps(mask, gate + i));
    if (v != nullptr) s = _mm512_mul_ps(_mm512_maskz_loadu_ps(mask, v + i), s);
    _mm512_mask_storeu_ps(out + i, mask, s);
  });
}

const CpuKernels kAvx512{"avx512",        gemv_f32,         gemv_bf16, gemv_f16,
                          nullptr,         gemm_avx512,      selective_scan_channels,
                          ssd_recurrent_heads,
                          widen_bf16_array, widen_f16_array, exp_f32,  softplus_f32,
                          silu_f32,        false};

}  // namespace

const CpuKernels& cpu_kernels_avx512() { return kAvx512; }

}  // namespace mambacpp
