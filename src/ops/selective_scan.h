#pragma once

#include <cstdint>
#include <span>

#include "mambacpp/thread_pool.h"

namespace mambacpp {

// Inputs of the Mamba-1 selective scan over L tokens and E channels with state size N.
// B and C rows may be strided views into the x_proj output.
struct SelectiveScanArgs {
  int64_t L = 0, E = 0, N = 0;
  const float* x = nullptr;      // [L, E] post-conv, post-SiLU input
  const float* delta = nullptr;  // [L, E] dt_proj(δ) without its bias
  const float* delta_bias = nullptr;  // [E] dt_proj.bias, added before softplus
  const float* A = nullptr;      // [E, N] = -exp(A_log)
  const float* B = nullptr;      // [L, N], row stride bc_stride
  const float* C = nullptr;      // [L, N], row stride bc_stride
  int64_t bc_stride = 0;
  const float* D = nullptr;      // [E] skip
  const float* z = nullptr;      // [L, E] gate, row stride z_stride
  int64_t z_stride = 0;
};

// Runs the scan from `ssm_state` [E, N] and leaves the state after token L-1 in it:
//   Δ      = softplus(delta + delta_bias)
//   h_t    = exp(Δ_t A) h_{t-1} + Δ_t B_t x_t          (zero-order hold A, Euler B)
//   y_t    = (h_t · C_t + D x_t) * silu(z_t)
// and writes y [L, E]. Work is split by channels.
void selective_scan(const SelectiveScanArgs& args, float* ssm_state, float* y, ThreadPool& pool);

// The same for several independent sequences in one parallel pass over (sequence,
// channel): scan s reads args[s] and updates ssm_states[s] and ys[s]. All args share E.
void selective_scan_many(std::span<const SelectiveScanArgs> args, std::span<float* const> ssm_states,
                         std::span<float* const> ys, ThreadPool& pool);

}  // namespace mambacpp
