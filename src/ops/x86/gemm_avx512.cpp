// The AVX-512 matrix product for prefill sizes (CpuKernels::gemm). Only this file and the
// other AVX-512 kernel files are compiled with those flags, and the dispatcher calls them
// only on CPUs that report them.
#include "ops/x86/gemm_avx512.h"

#include <immintrin.h>

#include <algorithm>
#include <array>
#include <span>
#include <utility>

#include "mambacpp/error.h"
#include "ops/dtype.h"
#include "ops/x86/thread_buffer.h"

namespace mambacpp {

namespace {

// Weight rows per panel: two 16-float vectors of y per token.
constexpr int64_t kPanelRows = 32;

// Rows of x per tile: 14 tokens times two vectors of weight rows keep 28 accumulators in
// the 32 vector registers. A tile stores each k's 14 inputs in 16 floats, so every
// store while packing is one whole aligned cache line.
constexpr int64_t kTileRows = 14;
constexpr int64_t kTileStride = 16;

__mmask16 first_lanes(int64_t n) {
  if (n >= 16) return 0xffff;
  return n <= 0 ? 0 : static_cast<__mmask16>((1u << n) - 1);
}

// Up to 16 values of a weight row, widened to f32, zero past `n`.
__m512 load_row(const Matrix& W, int64_t row, int64_t k, int64_t n) {
  const __mmask16 mask = first_lanes(n);
  const int64_t at = row * W.cols + k;
  if (W.dtype == DType::F32) return _mm512_maskz_loadu_ps(mask, static_cast<const float*>(W.data) + at);

  const __m256i half = _mm512_castsi512_si256(
      _mm512_maskz_loadu_epi16(mask, static_cast<const uint16_t*>(W.data) + at));
  if (W.dtype == DType::F16) return _mm512_cvtph_ps(half);
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(half), 16));
}

// Transposes 16 vectors in place: afterwards v[k] contains element k of every input vector.
void transpose_16x16(__m512 v[16]) {
  __m512 t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(v[2 * i], v[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(v[2 * i], v[2 * i + 1]);
  }

  // u[4i + j], 128-bit lane L: element 4L + j of inputs 4i .. 4i + 3.
  __m512 u[16];
  for (int i = 0; i < 4; ++i) {
    u[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
    u[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xee);
    u[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
    u[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xee);
  }

  // Gather lane L of u[j], u[4 + j], u[8 + j], u[12 + j] into v[4L + j].
  for (int j = 0; j < 4; ++j) {
    const __m512 even_lanes_low = _mm512_shuffle_f32x4(u[j], u[4 + j], 0x88);
    const __m512 odd_lanes_low = _mm512_shuffle_f32x4(u[j], u[4 + j], 0xdd);
    const __m512 even_lanes_high = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0x88);
    const __m512 odd_lanes_high = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0xdd);
    v[j] = _mm512_shuffle_f32x4(even_lanes_low, even_lanes_high, 0x88);
    v[8 + j] = _mm512_shuffle_f32x4(even_lanes_low, even_lanes_high, 0xdd);
    v[4 + j] = _mm512_shuffle_f32x4(odd_lanes_low, odd_lanes_high, 0x88);
    v[12 + j] = _mm512_shuffle_f32x4(odd_lanes_low, odd_lanes_high, 0xdd);
  }
}

// panel[k * 32 + i] = W[row_begin + i, k] as f32 for i < rows (at most 32), zero for the
// rows past them.
void pack_panel(const Matrix& W, int64_t row_begin, int64_t rows, float* panel) {
  const int64_t K = W.cols;
  for (int64_t k0 = 0; k0 < K; k0 += 16) {
    const int64_t n = std::min<int64_t>(16, K - k0);
    for (int64_t half = 0; half < 2; ++half) {
      __m512 v[16];
      for (int64_t i = 0; i < 16; ++i) {
        const int64_t r = half * 16 + i;
        v[i] = r < rows ? load_row(W, row_begin + r, k0, n) : _mm512_setzero_ps();
      }
      transpose_16x16(v);
      for (int64_t k = 0; k < n; ++k) _mm512_store_ps(panel + (k0 + k) * kPanelRows + half * 16, v[k]);
    }
  }
}

// y[i, 0..32) = Σ_k x_tile[k][i] panel[k][0..32) for the first ROWS rows of a tile, one
// fused multiply-add per k in k order. The masks select the y columns to write.
template <int ROWS>
void multiply_tile(const float* x_tile, const float* panel, int64_t K, float* y, int64_t y_stride,
                   __mmask16 low_mask, __mmask16 high_mask) {
  __m512 acc[ROWS][2];
  for (int i = 0; i < ROWS; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();

  for (int64_t k = 0; k < K; ++k) {
    const __m512 w_low = _mm512_load_ps(panel + k * kPanelRows);
    const __m512 w_high = _mm512_load_ps(panel + k * kPanelRows + 16);
#pragma GCC unroll 16
    for (int i = 0; i < ROWS; ++i) {
      const __m512 x = _mm512_set1_ps(x_tile[k * kTileStride + i]);
      acc[i][0] = _mm512_fmadd_ps(x, w_low, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(x, w_high, acc[i][1]);
    }
  }

  for (int i = 0; i < ROWS; ++i) {
    _mm512_mask_storeu_ps(y + i * y_stride, low_mask, acc[i][0]);
    _mm512_mask_storeu_ps(y + i * y_stride + 16, high_mask, acc[i][1]);
  }
}

using TileFn = void (*)(const float*, const float*, int64_t, float*, int64_t, __mmask16, __mmask16);

template <int... ROWS>
constexpr auto make_tile_table(std::integer_sequence<int, ROWS...>) {
  return std::array<TileFn, sizeof...(ROWS)>{&multiply_tile<ROWS + 1>...};
}

// kTileFns[n - 1] multiplies the first n rows of a tile.
constexpr auto kTileFns = make_tile_table(std::make_integer_sequence<int, kTileRows>{});

// Returns the bytes of the weight panel that starts at row r0 (up to 32 rows, contiguous
// in W), to prefetch while the panel before it is in use. It is empty past row_end.
std::span<const char> next_panel_bytes(const Matrix& W, int64_t r0, int64_t row_end) {
  const int64_t rows = std::max<int64_t>(0, std::min(kPanelRows, row_end - r0));
  const int64_t row_bytes = W.cols * static_cast<int64_t>(dtype_size(W.dtype));
  return {static_cast<const char*>(W.data) + r0 * row_bytes, static_cast<size_t>(rows * row_bytes)};
}

// tiles[t][k][i] = x[t * 14 + i, k] for the M rows of x [M, K] (i < 16), zero past row
// M and for i >= 14.
void pack_x_tiles(const float* x, int64_t M, int64_t K, float* tiles) {
  for (int64_t m0 = 0; m0 < M; m0 += kTileRows) {
    float* tile = tiles + m0 / kTileRows * kTileStride * K;
    const int64_t tile_rows = std::min(kTileRows, M - m0);
    for (int64_t k0 = 0; k0 < K; k0 += 16) {
      const int64_t n = std::min<int64_t>(16, K - k0);
      __m512 v[16];
      for (int64_t i = 0; i < 16; ++i)
        v[i] = i < tile_rows ? _mm512_maskz_loadu_ps(first_lanes(n), x + (m0 + i) * K + k0)
                             : _mm512_setzero_ps();
      transpose_16x16(v);
      for (int64_t k = 0; k < n; ++k) _mm512_store_ps(tile + (k0 + k) * kTileStride, v[k]);
    }
  }
}

// Multiplies every tile of x by one packed panel of `rows` weight rows, writing
// y[m, 0..rows) for the M rows, and prefetches `next` into the L2 cache meanwhile.
void multiply_panel(const float* x_tiles, int64_t M, const float* panel, int64_t K, int64_t rows,
                    float* y, int64_t y_stride, std::span<const char> next) {
  const __mmask16 low_mask = first_lanes(rows), high_mask = first_lanes(rows - 16);
  const int64_t n_tiles = (M + kTileRows - 1) / kTileRows;
  const int64_t lines_per_tile = (static_cast<int64_t>(next.size()) / 64 + n_tiles) / n_tiles;

  for (int64_t t = 0; t < n_tiles; ++t) {
    const int64_t m0 = t * kTileRows;
    for (int64_t line = t * lines_per_tile; line < (t + 1) * lines_per_tile; ++line)
      if (line * 64 < static_cast<int64_t>(next.size())) _mm_prefetch(next.data() + line * 64, _MM_HINT_T1);

    const int64_t tile_rows = std::min(kTileRows, M - m0);
    kTileFns[tile_rows - 1](x_tiles + t * kTileStride * K, panel, K, y + m0 * y_stride, y_stride,
                            low_mask, high_mask);
  }
}

}  // namespace

void gemm_avx512(const float* x, int64_t M, const Matrix& W, RowChunks& rows, float* y,
                 int64_t y_stride) {
  MAMBACPP_CHECK(W.dtype == DType::F32 || W.dtype == DType::BF16 || W.dtype == DType::F16);
  MAMBACPP_CHECK(M <= kGemmMaxTokens);
  if (M <= 0) return;
  static thread_local ThreadBuffer<float> panel_buffer, tile_buffer;
  const int64_t K = W.cols;
  float* panel = panel_buffer.reserve(kPanelRows * K);

  const int64_t n_tiles = (M + kTileRows - 1) / kTileRows;
  float* x_tiles = tile_buffer.reserve(n_tiles * kTileStride * K);
  pack_x_tiles(x, M, K, x_tiles);

  int64_t chunk_begin = 0, chunk_end = 0;
  while (rows.take(chunk_begin, chunk_end)) {
    for (int64_t r0 = chunk_begin; r0 < chunk_end; r0 += kPanelRows) {
      const int64_t panel_rows = std::min(kPanelRows, chunk_end - r0);
      pack_panel(W, r0, panel_rows, panel);
      multiply_panel(x_tiles, M, panel, K, panel_rows, y + r0, y_stride,
                     next_panel_bytes(W, r0 + panel_rows, chunk_end));
    }
  }
}

}  // namespace mambacpp
