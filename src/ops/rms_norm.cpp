#include "ops/rms_norm.h"

#include <cmath>

namespace mambacpp {

void rms_norm(const float* x, int64_t M, int64_t D, const float* weight, float eps, float* y) {
  for (int64_t m = 0; m < M; ++m) {
    const float* row = x + m * D;
    double sum_squares = 0.0;
    for (int64_t d = 0; d < D; ++d) sum_squares += static_cast<double>(row[d]) * row[d];
    float inv_rms = 1.0f / std::sqrt(static_cast<float>(sum_squares / D) + eps);
    float* out = y + m * D;
    for (int64_t d = 0; d < D; ++d) out[d] = row[d] * inv_rms * weight[d];
  }
}

}  // namespace mambacpp
