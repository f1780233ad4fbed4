#pragma once

#include <cstdint>

#include "mambacpp/thread_pool.h"

namespace mambacpp {

// The gated RMSNorm of the Mamba-2 mixer over M rows of D channels in `groups` groups of
// D / groups consecutive channels, each normalized on its own:
//   norm_before_gate = false:  v = y ⊙ silu(z),  y ← v / sqrt(mean_group(v²) + eps) ⊙ weight
//   norm_before_gate = true:   y ← y / sqrt(mean_group(y²) + eps) ⊙ weight ⊙ silu(z)
// y [M, D] is contiguous and overwritten; z [M, D] has row stride z_stride.
void gated_rms_norm(float* y, const float* z, int64_t z_stride, int64_t M, int64_t D,
                    int64_t groups, const float* weight, float eps, bool norm_before_gate,
                    ThreadPool& pool);

// The scalar twin of gated_rms_norm(): plain loops on one thread.
void gated_rms_norm_reference(float* y, const float* z, int64_t z_stride, int64_t M, int64_t D,
                              int64_t groups, const float* weight, float eps,
                              bool norm_before_gate);

}  // namespace mambacpp
