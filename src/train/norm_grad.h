#pragma once

#include <cstdint>

#include "mambacpp/thread_pool.h"

namespace mambacpp::train {

// y [M, D] = x / sqrt(mean(x²) + eps) ⊙ w, per row. Writes the reciprocal root of each row
// into rstd [M] for the backward pass.
void rms_norm_forward(const float* x, int64_t M, int64_t D, const float* w, double eps, float* y,
                      float* rstd, ThreadPool& pool);

// Overwrites dx [M, D]; adds into dw [D].
void rms_norm_backward(const float* x, const float* rstd, const float* dy, int64_t M, int64_t D,
                       const float* w, float* dx, float* dw, ThreadPool& pool);

// The Mamba-2 gated norm with the gate first: v = y ⊙ silu(z), then an RMSNorm over each
// group of `group_size` channels, times w. y, z, out [M, D]; rstd [M, D / group_size].
void gated_rms_norm_forward(const float* y, const float* z, int64_t M, int64_t D,
                            int64_t group_size, const float* w, double eps, float* out,
                            float* rstd, ThreadPool& pool);

// Overwrites dy and dz [M, D]; adds into dw [D].
void gated_rms_norm_backward(const float* y, const float* z, const float* rstd, const float* dout,
                             int64_t M, int64_t D, int64_t group_size, const float* w, float* dy,
                             float* dz, float* dw, ThreadPool& pool);

}  // namespace mambacpp::train
