#include "ops/gated_rms_norm.h"

#include <cmath>

#include "mambacpp/error.h"
#include "ops/activations.h"
#include "ops/silu.h"

namespace mambacpp {

namespace {

// Rows a thread takes at a time.
constexpr int64_t kRowGrain = 4;

void normalize_rows(float* y, const float* z, int64_t z_stride, int64_t row_begin, int64_t row_end,
                    int64_t D, int64_t groups, const float* weight, float eps,
                    bool norm_before_gate) {
  const int64_t group_size = D / groups;
  for (int64_t m = row_begin; m < row_end; ++m) {
    float* row = y + m * D;
    const float* gate = z + m * z_stride;
    if (!norm_before_gate) multiply_by_silu(row, gate, D);

    for (int64_t g = 0; g < groups; ++g) {
      float* v = row + g * group_size;
      double sum_squares = 0.0;
      for (int64_t d = 0; d < group_size; ++d) sum_squares += static_cast<double>(v[d]) * v[d];
      const float inv_rms =
          1.0f / std::sqrt(static_cast<float>(sum_squares / group_size) + eps);
      const float* w = weight + g * group_size;
      for (int64_t d = 0; d < group_size; ++d) v[d] = v[d] * inv_rms * w[d];
    }

    if (norm_before_gate) multiply_by_silu(row, gate, D);
  }
}

}  // namespace

void gated_rms_norm(float* y, const float* z, int64_t z_stride, int64_t M, int64_t D,
                    int64_t groups, const float* weight, float eps, bool norm_before_gate,
                    ThreadPool& pool) {
  MAMBACPP_CHECK(groups > 0 && D % groups == 0);
  pool.parallel_for(M, kRowGrain, [&](int64_t begin, int64_t end) {
    normalize_rows(y, z, z_stride, begin, end, D, groups, weight, eps, norm_before_gate);
  });
}

void gated_rms_norm_reference(float* y, const float* z, int64_t z_stride, int64_t M, int64_t D,
                              int64_t groups, const float* weight, float eps,
                              bool norm_before_gate) {
  MAMBACPP_CHECK(groups > 0 && D % groups == 0);
  const int64_t group_size = D / groups;
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t g = 0; g < groups; ++g) {
      const int64_t first = m * D + g * group_size;
      const int64_t first_gate = m * z_stride + g * group_size;
      double sum_squares = 0.0;
      for (int64_t d = 0; d < group_size; ++d) {
        double v = y[first + d];
        if (!norm_before_gate) v *= silu(z[first_gate + d]);
        sum_squares += v * v;
      }
      const double inv_rms = 1.0 / std::sqrt(sum_squares / group_size + eps);
      for (int64_t d = 0; d < group_size; ++d) {
        double v = y[first + d];
        double gate = silu(z[first_gate + d]);
        y[first + d] = norm_before_gate
                           ? static_cast<float>(v * inv_rms * weight[g * group_size + d] * gate)
                           : static_cast<float>(v * gate * inv_rms * weight[g * group_size + d]);
      }
    }
  }
}

}  // namespace mambacpp
