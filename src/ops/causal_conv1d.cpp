#include "ops/causal_conv1d.h"

#include <vector>

#include "ops/activations.h"

namespace mambacpp {

namespace {
// Channels a thread takes at a time.
constexpr int64_t kChannelGrain = 16;
// The longest conv window kept on the stack; longer ones use the heap.
constexpr int64_t kMaxStackWindow = 16;
}  // namespace

void causal_conv1d(const float* x, int64_t x_stride, int64_t L, int64_t C, int64_t K,
                   const float* weight, const float* bias, float* conv_state, bool apply_silu,
                   float* out, ThreadPool& pool) {
  pool.parallel_for(C, kChannelGrain, [&](int64_t c_begin, int64_t c_end) {
    float stack_window[kMaxStackWindow];
    std::vector<float> heap_window;
    float* window = stack_window;
    if (K > kMaxStackWindow) {
      heap_window.resize(static_cast<size_t>(K));
      window = heap_window.data();
    }

    for (int64_t c = c_begin; c < c_end; ++c) {
      float* state = conv_state + c * K;
      const float* w = weight + c * K;
      for (int64_t k = 0; k < K; ++k) window[k] = state[k];

      for (int64_t t = 0; t < L; ++t) {
        for (int64_t k = 0; k + 1 < K; ++k) window[k] = window[k + 1];
        window[K - 1] = x[t * x_stride + c];

        float sum = bias ? bias[c] : 0.0f;
        for (int64_t k = 0; k < K; ++k) sum += w[k] * window[k];
        out[t * C + c] = apply_silu ? silu(sum) : sum;
      }

      for (int64_t k = 0; k < K; ++k) state[k] = window[k];
    }
  });
}

}  // namespace mambacpp
