// Forward and backward of the causal depthwise conv1d followed by SiLU. dx is
// overwritten; the weight and bias gradients accumulate. Threads own disjoint channel
// ranges, so no gradient is shared between them.
#include "train/conv1d_grad.h"

#include <algorithm>
#include <vector>

#include "ops/activations.h"

namespace mambacpp::train {

namespace {

int64_t channel_grain(int64_t channels, const ThreadPool& pool) {
  int64_t per_thread = (channels + pool.size() - 1) / pool.size();
  return std::max<int64_t>(8, (per_thread + 7) / 8 * 8);
}

}  // namespace

void conv1d_silu_forward(const Conv1dShape& s, const float* x, int64_t ldx, const float* w,
                         const float* bias, float* pre, float* out, ThreadPool& pool) {
  const int64_t L = s.seq_len, C = s.channels, K = s.width;
  pool.parallel_for(C, channel_grain(C, pool), [&](int64_t c0, int64_t c1) {
    for (int64_t b = 0; b < s.batch; ++b) {
      const float* xb = x + b * L * ldx;
      for (int64_t t = 0; t < L; ++t) {
        const int64_t row = (b * L + t) * C;
        for (int64_t c = c0; c < c1; ++c) {
          float acc = bias != nullptr ? bias[c] : 0.0f;
          for (int64_t k = std::max<int64_t>(0, K - 1 - t); k < K; ++k) {
            acc += w[c * K + k] * xb[(t - K + 1 + k) * ldx + c];
          }
          pre[row + c] = acc;
          out[row + c] = silu(acc);
        }
      }
    }
  });
}

void conv1d_silu_backward(const Conv1dShape& s, const float* x, int64_t ldx, const float* w,
                          const float* pre, const float* dout, float* dx, int64_t lddx,
                          float* dw, float* dbias, ThreadPool& pool) {
  const int64_t L = s.seq_len, C = s.channels, K = s.width;
  pool.parallel_for(C, channel_grain(C, pool), [&](int64_t c0, int64_t c1) {
    const int64_t n = c1 - c0;
    std::vector<float> dpre(static_cast<size_t>(L * n));
    for (int64_t b = 0; b < s.batch; ++b) {
      const float* xb = x + b * L * ldx;
      float* dxb = dx + b * L * lddx;

      // Through the SiLU.
      for (int64_t t = 0; t < L; ++t) {
        const int64_t row = (b * L + t) * C;
        for (int64_t c = c0; c < c1; ++c) {
          float p = pre[row + c];
          dpre[t * n + (c - c0)] = dout[row + c] * silu_derivative(p);
        }
      }

      // x[s] feeds pre[s + K − 1 − k] through tap k.
      for (int64_t t = 0; t < L; ++t) {
        for (int64_t c = c0; c < c1; ++c) {
          float acc = 0.0f;
          for (int64_t k = 0; k < K; ++k) {
            int64_t out_t = t + K - 1 - k;
            if (out_t < L) acc += w[c * K + k] * dpre[out_t * n + (c - c0)];
          }
          dxb[t * lddx + c] = acc;
        }
      }

      for (int64_t t = 0; t < L; ++t) {
        for (int64_t c = c0; c < c1; ++c) {
          float d = dpre[t * n + (c - c0)];
          if (dbias != nullptr) dbias[c] += d;
          for (int64_t k = std::max<int64_t>(0, K - 1 - t); k < K; ++k) {
            dw[c * K + k] += d * xb[(t - K + 1 + k) * ldx + c];
          }
        }
      }
    }
  });
}

}  // namespace mambacpp::train
