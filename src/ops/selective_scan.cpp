#include "ops/selective_scan.h"

#include <cmath>

#include "ops/activations.h"

namespace mambacpp {

namespace {
constexpr int64_t kChannelGrain = 8;
}  // namespace

void selective_scan(const SelectiveScanArgs& a, float* ssm_state, float* y, ThreadPool& pool) {
  pool.parallel_for(a.E, kChannelGrain, [&](int64_t c_begin, int64_t c_end) {
    for (int64_t c = c_begin; c < c_end; ++c) {
      float* h = ssm_state + c * a.N;
      const float* A = a.A + c * a.N;

      for (int64_t t = 0; t < a.L; ++t) {
        float dt = softplus(a.delta[t * a.E + c] + a.delta_bias[c]);
        float x = a.x[t * a.E + c];
        const float* B = a.B + t * a.bc_stride;
        const float* C = a.C + t * a.bc_stride;

        float dt_x = dt * x;
        float out = 0.0f;
        for (int64_t n = 0; n < a.N; ++n) {
          h[n] = std::exp(dt * A[n]) * h[n] + dt_x * B[n];
          out += h[n] * C[n];
        }

        out += a.D[c] * x;
        y[t * a.E + c] = out * silu(a.z[t * a.z_stride + c]);
      }
    }
  });
}

}  // namespace mambacpp
