// Forward and backward of the causal depthwise conv1d followed by SiLU. dx is
// overwritten; the weight and bias gradients accumulate. Threads own disjoint channel
// ranges, so no gradient is shared between them. Inner loops run over contiguous
// channels, with the weight transposed to [width, channels] first.
#include "train/conv1d_grad.h"

#include <algorithm>

#include "ops/activations.h"
#include "ops/scratch.h"

namespace mambacpp::train {

namespace {

int64_t channel_grain(int64_t channels, const ThreadPool& pool) {
  int64_t per_thread = (channels + pool.size() - 1) / pool.size();
  return std::max<int64_t>(16, (per_thread + 15) / 16 * 16);
}

// taps [K, n] = w[c0 .. c0 + n, K] transposed.
float* transposed_taps(ScratchFrame& scratch, const float* w, int64_t c0, int64_t n, int64_t K) {
  float* taps = scratch.take<float>(K * n);
  for (int64_t j = 0; j < n; ++j) {
    for (int64_t k = 0; k < K; ++k) taps[k * n + j] = w[(c0 + j) * K + k];
  }
  return taps;
}

}  // namespace

void conv1d_silu_forward(const Conv1dShape& s, const float* x, int64_t ldx, const float* w,
                         const float* bias, float* pre, float* out, ThreadPool& pool) {
  const int64_t L = s.seq_len, C = s.channels, K = s.width;
  pool.parallel_for(C, channel_grain(C, pool), [&](int64_t c0, int64_t c1) {
    const int64_t n = c1 - c0;
    ScratchFrame scratch;
    const float* taps = transposed_taps(scratch, w, c0, n, K);

    for (int64_t b = 0; b < s.batch; ++b) {
      const float* xb = x + b * L * ldx + c0;
      for (int64_t t = 0; t < L; ++t) {
        float* p = pre + (b * L + t) * C + c0;
        for (int64_t j = 0; j < n; ++j) p[j] = bias != nullptr ? bias[c0 + j] : 0.0f;

        // Tap k reads the input K - 1 - k tokens back; inputs before t = 0 are zeros.
        for (int64_t k = std::max<int64_t>(0, K - 1 - t); k < K; ++k) {
          const float* xr = xb + (t - K + 1 + k) * ldx;
          const float* tk = taps + k * n;
          for (int64_t j = 0; j < n; ++j) p[j] += tk[j] * xr[j];
        }

        float* o = out + (b * L + t) * C + c0;
        for (int64_t j = 0; j < n; ++j) o[j] = silu(p[j]);
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
    ScratchFrame scratch;
    const float* taps = transposed_taps(scratch, w, c0, n, K);
    float* dpre = scratch.take<float>(L * n);         // [L, n] for one sequence
    float* dtaps = scratch.take_zeroed<float>(K * n);  // [K, n], summed over all sequences
    float* dbias_sum = scratch.take_zeroed<float>(n);

    for (int64_t b = 0; b < s.batch; ++b) {
      const float* xb = x + b * L * ldx + c0;
      float* dxb = dx + b * L * lddx + c0;

      // Through the SiLU.
      for (int64_t t = 0; t < L; ++t) {
        const int64_t row = (b * L + t) * C + c0;
        for (int64_t j = 0; j < n; ++j) dpre[t * n + j] = dout[row + j] * silu_derivative(pre[row + j]);
      }

      // x[t] feeds pre[t + K - 1 - k] through tap k.
      for (int64_t t = 0; t < L; ++t) {
        float* dxr = dxb + t * lddx;
        std::fill(dxr, dxr + n, 0.0f);
        for (int64_t k = 0; k < K; ++k) {
          const int64_t out_t = t + K - 1 - k;
          if (out_t >= L) continue;
          const float* tk = taps + k * n;
          const float* d = dpre + out_t * n;
          for (int64_t j = 0; j < n; ++j) dxr[j] += tk[j] * d[j];
        }
      }

      for (int64_t t = 0; t < L; ++t) {
        const float* d = dpre + t * n;
        for (int64_t j = 0; j < n; ++j) dbias_sum[j] += d[j];
        for (int64_t k = std::max<int64_t>(0, K - 1 - t); k < K; ++k) {
          const float* xr = xb + (t - K + 1 + k) * ldx;
          float* dt = dtaps + k * n;
          for (int64_t j = 0; j < n; ++j) dt[j] += d[j] * xr[j];
        }
      }
    }

    for (int64_t j = 0; j < n; ++j) {
      for (int64_t k = 0; k < K; ++k) dw[(c0 + j) * K + k] += dtaps[k * n + j];
      if (dbias != nullptr) dbias[c0 + j] += dbias_sum[j];
    }
  });
}

}  // namespace mambacpp::train
