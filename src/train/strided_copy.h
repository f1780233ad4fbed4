#pragma once

#include <cstdint>

namespace mambacpp::train {

// Copies columns [src_col, src_col + cols) of M rows that are `src_ld` floats apart into
// columns [dst_col, dst_col + cols) of rows `dst_ld` floats apart. The mixers use it to
// split a projection's output into its parts and to join gradients back.
inline void copy_columns(const float* src, int64_t src_ld, int64_t src_col, int64_t M, int64_t cols,
                         float* dst, int64_t dst_ld, int64_t dst_col) {
  for (int64_t m = 0; m < M; ++m) {
    const float* from = src + m * src_ld + src_col;
    float* to = dst + m * dst_ld + dst_col;
    for (int64_t c = 0; c < cols; ++c) to[c] = from[c];
  }
}

}  // namespace mambacpp::train
