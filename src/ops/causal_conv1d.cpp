#include "ops/causal_conv1d.h"

#include <algorithm>

#include "ops/silu.h"
#include "ops/scratch.h"

namespace mambacpp {

namespace {
// Channels a thread takes at a time: a multiple of the widest vector, so the inner loops
// over channels vectorize, and for short inputs enough channels that the work outweighs
// handing it to another thread.
constexpr int64_t kChannelGrain = 64;
constexpr int64_t kMinWorkPerThread = 16384;

// Computes one token (a decode step) with the same taps in the same order as
// conv_channels(), then shifts each channel's window by one in place. Summing first keeps
// the loads clear of stores just made to the same bytes, which stalled them (a third of
// this function's samples when the shift came first).
void conv_channels_one_token(const ConvSegment& seg, int64_t K, const float* weight,
                             const float* bias, bool apply_silu, int64_t c_begin, int64_t c_end) {
  for (int64_t c = c_begin; c < c_end; ++c) {
    float* window = seg.conv_state + c * K;
    const float* taps = weight + c * K;
    const float x = seg.x[c];
    float sum = bias ? bias[c] : 0.0f;
    for (int64_t k = 0; k + 1 < K; ++k) sum += taps[k] * window[k + 1];
    sum += taps[K - 1] * x;
    seg.out[c] = sum;

    for (int64_t k = 0; k + 1 < K; ++k) window[k] = window[k + 1];
    window[K - 1] = x;
  }
  if (apply_silu) silu_in_place(seg.out + c_begin, c_end - c_begin);
}

// Works on blocks of channels with the channel index innermost, so every inner loop
// runs over contiguous memory. The window [K - 1 + L, block] is the state's K - 1 newest
// inputs (copied to `history`) followed by the new ones, read from x where they are.
// `taps` [K, block] is the weight transposed.
void conv_channels(const ConvSegment& seg, int64_t x_stride, int64_t C, int64_t K,
                   const float* weight, const float* bias, bool apply_silu, int64_t c_begin,
                   int64_t c_end) {
  if (seg.L == 1) {
    conv_channels_one_token(seg, K, weight, bias, apply_silu, c_begin, c_end);
    return;
  }
  const int64_t L = seg.L, width = c_end - c_begin;
  const float* x = seg.x;
  float* conv_state = seg.conv_state;
  float* out = seg.out;
  ScratchFrame scratch;
  float* history = scratch.take<float>((K - 1) * width);  // the state's K - 1 newest inputs
  float* taps = scratch.take<float>(K * width);

  for (int64_t j = 0; j < width; ++j) {
    const int64_t c = c_begin + j;
    for (int64_t k = 0; k < K; ++k) taps[k * width + j] = weight[c * K + k];
    for (int64_t k = 1; k < K; ++k) history[(k - 1) * width + j] = conv_state[c * K + k];
  }

  // Row i of the window: history's for i < K - 1, then x's rows.
  auto window_row = [&](int64_t i) -> const float* {
    return i < K - 1 ? history + i * width : x + (i - (K - 1)) * x_stride + c_begin;
  };

  // out[t, c] = bias[c] + sum_k taps[k, c] * window[t + k, c]
  for (int64_t t = 0; t < L; ++t) {
    float* row = out + t * C + c_begin;
    for (int64_t j = 0; j < width; ++j) row[j] = bias ? bias[c_begin + j] : 0.0f;
    for (int64_t k = 0; k < K; ++k) {
      const float* w = taps + k * width;
      const float* in = window_row(t + k);
      for (int64_t j = 0; j < width; ++j) row[j] += w[j] * in[j];
    }
    if (apply_silu) silu_in_place(row, width);
  }

  // The new state is the last K inputs, oldest first.
  for (int64_t j = 0; j < width; ++j) {
    const int64_t c = c_begin + j;
    for (int64_t k = 0; k < K; ++k) {
      int64_t pos = L + k;  // index into [state's K columns, then L inputs]
      conv_state[c * K + k] = pos < K ? conv_state[c * K + pos] : x[(pos - K) * x_stride + c];
    }
  }
}

}  // namespace

void causal_conv1d_many(std::span<const ConvSegment> segments, int64_t x_stride, int64_t C,
                        int64_t K, const float* weight, const float* bias, bool apply_silu,
                        ThreadPool& pool) {
  if (segments.empty()) return;
  int64_t max_L = 1;
  for (const ConvSegment& s : segments) max_L = std::max(max_L, s.L);
  const int64_t grain = (std::max(kChannelGrain, kMinWorkPerThread / (max_L * K)) + kChannelGrain - 1) /
                        kChannelGrain * kChannelGrain;

  // Item i is channel i % C of segment i / C. A range may span several segments.
  const int64_t n_items = static_cast<int64_t>(segments.size()) * C;
  pool.parallel_for(n_items, grain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end;) {
      const int64_t s = i / C, c_begin = i % C;
      const int64_t c_end = std::min(C, c_begin + (end - i));
      conv_channels(segments[s], x_stride, C, K, weight, bias, apply_silu, c_begin, c_end);
      i += c_end - c_begin;
    }
  });
}

void causal_conv1d(const float* x, int64_t x_stride, int64_t L, int64_t C, int64_t K,
                   const float* weight, const float* bias, float* conv_state, bool apply_silu,
                   float* out, ThreadPool& pool) {
  const ConvSegment segment{x, L, conv_state, out};
  causal_conv1d_many({&segment, 1}, x_stride, C, K, weight, bias, apply_silu, pool);
}

}  // namespace mambacpp
