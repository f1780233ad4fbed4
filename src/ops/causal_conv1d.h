#pragma once

#include <cstdint>
#include <span>

#include "mambacpp/thread_pool.h"

namespace mambacpp {

// Causal depthwise conv1d over L tokens that continues from a window of earlier inputs:
//   out[t, c] = bias[c] + sum_k weight[c, k] * window_t[c, k],
// where window_t contains the last K raw inputs up to and including x[t, c], newest at
// k = K - 1. `conv_state` [C, K] holds the window before x[0] on entry (zeros for a new
// sequence) and the window after x[L-1] on return, so a prompt fed whole, in pieces or
// one token at a time gives the same outputs and state.
// x [L, C] has row stride `x_stride`; out [L, C] is contiguous; bias may be null.
// With `apply_silu`, out = silu(out).
void causal_conv1d(const float* x, int64_t x_stride, int64_t L, int64_t C, int64_t K,
                   const float* weight, const float* bias, float* conv_state, bool apply_silu,
                   float* out, ThreadPool& pool);

// One sequence's tokens for causal_conv1d_many: x [L, C] (row stride shared by all
// segments), its conv_state [C, K] and out [L, C].
struct ConvSegment {
  const float* x;
  int64_t L;
  float* conv_state;
  float* out;
};

// causal_conv1d for several sequences in one pass over the pool, as a decode step of a
// batch needs: each segment continues its own conv_state.
void causal_conv1d_many(std::span<const ConvSegment> segments, int64_t x_stride, int64_t C,
                        int64_t K, const float* weight, const float* bias, bool apply_silu,
                        ThreadPool& pool);

}  // namespace mambacpp
