// The bf16 matrix product on Intel AMX tiles (AMX-TILE + AMX-BF16). Only this file is
// compiled with those flags. The dispatcher offers the "amx" set only after the kernel
// has granted this process the tile state (see amx_usable()).
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>

#include "ops/cpu_kernels.h"
#include "ops/x86/bf16_inputs.h"

namespace mambacpp {

const CpuKernels& cpu_kernels_avx512();

namespace {

// Tile shapes: every tile is 16 rows of 64 bytes. A weight tile is 16 weight rows by
// 32 k (bf16). An input tile is 16 k-pairs by 16 input vectors, each entry the two bf16
// of one pair, the layout TDPBF16PS reads its second operand in. An accumulator tile is
// 16 weight rows by 16 input vectors (f32). Tiles 0-3 accumulate, 4-5 hold weights and
// 6-7 inputs.
constexpr int kTileRows = 16;
constexpr int kTileK = 32;
constexpr int kTileBytes = 1024;

struct TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t bytes_per_row[16] = {};
  uint8_t rows[16] = {};
};

void load_tile_config() {
  TileConfig config;
  for (int t = 0; t < 8; ++t) {
    config.bytes_per_row[t] = 64;
    config.rows[t] = kTileRows;
  }
  _tile_loadconfig(&config);
}

// Rounds x (n_x rows of `cols` f32) to bf16 and lays it out as input tiles. Tile
// (m_block, k_block) starts at (m_block * k_blocks + k_block) * 512 uint16. Its entry
// [pair][vector][0..1] is elements 2 * pair and 2 * pair + 1 of that k block. Vectors past
// n_x and k past cols are zero.
void pack_inputs(const float* x, int64_t cols, int64_t n_x, int64_t k_blocks, uint16_t* packed) {
  const int64_t m_blocks = (n_x + kTileRows - 1) / kTileRows;
  std::memset(packed, 0, static_cast<size_t>(m_blocks * k_blocks) * kTileBytes);

  for (int64_t m = 0; m < n_x; ++m) {
    const float* row = x + m * cols;
    uint32_t* block_base =
        reinterpret_cast<uint32_t*>(packed) + (m / kTileRows) * k_blocks * 256 + m % kTileRows;
    for (int64_t kb = 0; kb < k_blocks; ++kb) {
      // Lane p = element 2p of the k block in its low half and 2p + 1 in its high half.
      alignas(64) uint32_t pairs[16];
      _mm512_store_si512(pairs, load_as_bf16(row + kb * kTileK, cols - kb * kTileK));
      uint32_t* tile = block_base + kb * 256;
      for (int p = 0; p < 16; ++p) tile[p * kTileRows] = pairs[p];
    }
  }
}

// Weight rows [r0, r0 + rows) with rows <= 16, copied into a 16-row block whose row
// stride is k_blocks * 32, zero beyond `rows` and `cols`. Whole weight tiles can then be
// read from it without reading past the matrix.
void pad_weight_rows(const uint16_t* W, int64_t cols, int64_t r0, int64_t rows, int64_t k_blocks,
                     uint16_t* out) {
  const int64_t stride = k_blocks * kTileK;
  std::memset(out, 0, static_cast<size_t>(kTileRows * stride) * sizeof(uint16_t));
  for (int64_t i = 0; i < rows; ++i)
    std::memcpy(out + i * stride, W + (r0 + i) * cols, static_cast<size_t>(cols) * sizeof(uint16_t));
}

// Stores accumulator tile `tile` (weight rows by vectors) transposed into y, keeping the
// first `rows` rows and `vectors` vectors. The tile number must be a literal in the
// instruction, hence the switch.
void store_tile(int tile, float* y, int64_t y_stride, int64_t r0, int64_t m0, int64_t rows,
                int64_t vectors) {
  alignas(64) float c[kTileRows][kTileRows];
  switch (tile) {
    case 0: _tile_stored(0, c, 64); break;
    case 1: _tile_stored(1, c, 64); break;
    case 2: _tile_stored(2, c, 64); break;
    default: _tile_stored(3, c, 64); break;
  }
  for (int64_t m = 0; m < vectors; ++m)
    for (int64_t i = 0; i < rows; ++i) y[(m0 + m) * y_stride + r0 + i] = c[i][m];
}

// Multiplies one or two blocks of 16 weight rows (a0, a1, row stride a_stride elements) by
// one or two blocks of 16 vectors, over k blocks [0, k_blocks). Every accumulator sums its
// k blocks in the same order whatever N_BLOCKS and M_BLOCKS are. With prefetch_next, the
// same k block of the rows after these is prefetched, one cache line per row, because
// those rows are read next.
template <int N_BLOCKS, int M_BLOCKS>
void tile_product(const uint16_t* a0, const uint16_t* a1, int64_t a_stride, const uint16_t* b0,
                  const uint16_t* b1, int64_t k_blocks, bool prefetch_next) {
  const int64_t a_bytes = a_stride * static_cast<int64_t>(sizeof(uint16_t));
  const char* next_rows = reinterpret_cast<const char*>(a0 + N_BLOCKS * kTileRows * a_stride);
  _tile_zero(0);
  if constexpr (N_BLOCKS == 2) _tile_zero(1);
  if constexpr (M_BLOCKS == 2) _tile_zero(2);
  if constexpr (N_BLOCKS == 2 && M_BLOCKS == 2) _tile_zero(3);
  for (int64_t kb = 0; kb < k_blocks; ++kb) {
    if (prefetch_next)
      for (int i = 0; i < N_BLOCKS * kTileRows; ++i)
        _mm_prefetch(next_rows + i * a_bytes + kb * kTileK * 2, _MM_HINT_T0);
    _tile_loadd(4, a0 + kb * kTileK, a_bytes);
    _tile_loadd(6, b0 + kb * 512, 64);
    _tile_dpbf16ps(0, 4, 6);
    if constexpr (N_BLOCKS == 2) {
      _tile_loadd(5, a1 + kb * kTileK, a_bytes);
      _tile_dpbf16ps(1, 5, 6);
    }
    if constexpr (M_BLOCKS == 2) {
      _tile_loadd(7, b1 + kb * 512, 64);
      _tile_dpbf16ps(2, 4, 7);
      if constexpr (N_BLOCKS == 2) _tile_dpbf16ps(3, 5, 7);
    }
  }
}

struct ProductShape {
  int64_t k_blocks;
  int64_t n_x;
  int64_t y_stride;
};

// Computes rows [r0, r0 + rows) of the product for all vectors, rows <= 16 * n_blocks
// (n_blocks 1 or 2). The weight rows start at a, with row stride a_stride. The next rows
// are prefetched during the last pass over the vectors, the one right before they are read.
void product_rows(const ProductShape& s, const uint16_t* a, int64_t a_stride, int n_blocks,
                  const uint16_t* packed, int64_t r0, int64_t rows, float* y) {
  const uint16_t* a1 = a + kTileRows * a_stride;
  const int64_t rows0 = min_i64(rows, kTileRows);
  const int64_t rows1 = rows - rows0;
  for (int64_t m0 = 0; m0 < s.n_x; m0 += 2 * kTileRows) {
    const uint16_t* b0 = packed + (m0 / kTileRows) * s.k_blocks * 512;
    const uint16_t* b1 = b0 + s.k_blocks * 512;
    const int64_t vec0 = min_i64(kTileRows, s.n_x - m0);
    const int64_t vec1 = min_i64(kTileRows, s.n_x - m0 - vec0);
    const bool last_pass = m0 + 2 * kTileRows >= s.n_x;
    if (n_blocks == 2 && vec1 > 0) {
      tile_product<2, 2>(a, a1, a_stride, b0, b1, s.k_blocks, last_pass);
    } else if (n_blocks == 2) {
      tile_product<2, 1>(a, a1, a_stride, b0, b1, s.k_blocks, last_pass);
    } else if (vec1 > 0) {
      tile_product<1, 2>(a, a1, a_stride, b0, b1, s.k_blocks, last_pass);
    } else {
      tile_product<1, 1>(a, a1, a_stride, b0, b1, s.k_blocks, last_pass);
    }
    store_tile(0, y, s.y_stride, r0, m0, rows0, vec0);
    if (n_blocks == 2) store_tile(1, y, s.y_stride, r0 + kTileRows, m0, rows1, vec0);
    if (vec1 > 0) store_tile(2, y, s.y_stride, r0, m0 + kTileRows, rows0, vec1);
    if (n_blocks == 2 && vec1 > 0) store_tile(3, y, s.y_stride, r0 + kTileRows, m0 + kTileRows, rows1, vec1);
  }
}

void matmul_bf16(const uint16_t* W, const float* x, int64_t cols, int64_t row_begin,
                 int64_t row_end, float* y, int64_t n_x, int64_t y_stride) {
  if (row_end <= row_begin || n_x <= 0) return;
  const int64_t k_blocks = (cols + kTileK - 1) / kTileK;
  const ProductShape shape{k_blocks, n_x, y_stride};

  thread_local ThreadBuffer<uint16_t> packed_buffer;
  thread_local ThreadBuffer<uint16_t> padded_buffer;
  const int64_t m_blocks = (n_x + kTileRows - 1) / kTileRows;
  uint16_t* packed = packed_buffer.reserve(static_cast<size_t>(m_blocks * k_blocks * 512));
  uint16_t* padded = padded_buffer.reserve(static_cast<size_t>(kTileRows * k_blocks * kTileK));
  pack_inputs(x, cols, n_x, k_blocks, packed);

  load_tile_config();

  // Weight tiles read 32 k at a time straight from W while whole 32-k blocks fit in each
  // row. Otherwise each block of 16 rows is first copied into a zero-padded block.
  const bool read_in_place = cols % kTileK == 0;
  int64_t r = row_begin;
  if (read_in_place) {
    for (; r + 2 * kTileRows <= row_end; r += 2 * kTileRows)
      product_rows(shape, W + r * cols, cols, 2, packed, r, 2 * kTileRows, y);
  }
  for (; r < row_end; r += kTileRows) {
    const int64_t rows = min_i64(kTileRows, row_end - r);
    if (read_in_place && rows == kTileRows) {
      product_rows(shape, W + r * cols, cols, 1, packed, r, rows, y);
    } else {
      pad_weight_rows(W, cols, r, rows, k_blocks, padded);
      product_rows(shape, padded, k_blocks * kTileK, 1, packed, r, rows, y);
    }
  }

  _tile_release();
}

constexpr int kXFeatureTileData = 18;
constexpr long kArchRequestXCompPerm = 0x1023;

}  // namespace

bool amx_usable() {
  static const bool usable = [] {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) == 0) return false;
    const bool amx_bf16 = (edx >> 22) & 1;
    const bool amx_tile = (edx >> 24) & 1;
    if (!amx_bf16 || !amx_tile) return false;
    // Linux hands out the tile state only to processes that ask for it.
    return syscall(SYS_arch_prctl, kArchRequestXCompPerm, kXFeatureTileData) == 0;
  }();
  return usable;
}

const CpuKernels& cpu_kernels_amx() {
  static const CpuKernels kernels = [] {
    CpuKernels k = cpu_kernels_avx512();
    k.isa = "amx";
    k.matmul_bf16 = matmul_bf16;
    k.matmul_bf16_for_prefill = true;
    return k;
  }();
  return kernels;
}

}  // namespace mambacpp
