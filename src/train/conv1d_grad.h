#pragma once

#include <cstdint>

#include "mambacpp/thread_pool.h"

namespace mambacpp::train {

// Shapes of a causal depthwise conv1d over `batch` sequences of `seq_len` tokens with
// `channels` channels and kernel width `width`.
struct Conv1dShape {
  int64_t batch, seq_len, channels, width;
};

// pre[b, t, c] = bias[c] + Σ_k w[c, k] · x[b, t − width + 1 + k, c] (zeros before t = 0),
// out = silu(pre). x rows are `ldx` floats apart; pre and out [batch, seq_len, channels]
// are contiguous. pre is kept for the backward pass. bias may be null.
void conv1d_silu_forward(const Conv1dShape& s, const float* x, int64_t ldx, const float* w,
                         const float* bias, float* pre, float* out, ThreadPool& pool);

// For dout [batch, seq_len, channels]: overwrites dx (rows `lddx` apart), adds into dw
// [channels, width] and dbias [channels] (dbias may be null).
void conv1d_silu_backward(const Conv1dShape& s, const float* x, int64_t ldx, const float* w,
                          const float* pre, const float* dout, float* dx, int64_t lddx,
                          float* dw, float* dbias, ThreadPool& pool);

}  // namespace mambacpp::train
