#pragma once

#include <cstdint>

namespace mambacpp {

// y[m] = x[m] / sqrt(mean(x[m]^2) + eps) * weight, for each of the M rows of x [M, D].
// y may equal x.
void rms_norm(const float* x, int64_t M, int64_t D, const float* weight, float eps, float* y);

}  // namespace mambacpp
