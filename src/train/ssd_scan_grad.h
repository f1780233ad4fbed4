#pragma once

#include <cstdint>
#include <vector>

#include "mambacpp/thread_pool.h"

namespace mambacpp::train {

// Sizes of one Mamba-2 scan over a batch. Head h reads B/C group h / (n_heads / n_groups).
// chunk_size is the block length of the chunked (SSD) algorithm and does not change the
// result beyond float rounding.
struct SsdShape {
  int64_t batch, seq_len, n_heads, head_dim, n_groups, d_state, chunk_size;
};

// State that ssd_scan_forward keeps for ssd_scan_backward besides the inputs.
struct SsdSaved {
  SsdShape shape{};
  // [batch, n_chunks, n_heads, head_dim, d_state]: the state before the first token of
  // each chunk, zero for chunk 0.
  std::vector<float> chunk_states;
  // [batch, n_chunks, n_groups, chunk_size, chunk_size]: C Bᵀ of each chunk, row stride
  // equal to the chunk's length.
  std::vector<float> scores;
};

// Runs the scan per sequence, with delta = softplus(dt + dt_bias) and A = -exp(A_log):
//   S_t[h, p, n] = exp(delta_t[h] A[h]) S_{t-1}[h, p, n] + delta_t[h] x_t[h, p] B_t[g(h), n]
//   y_t[h, p]    = sum_n S_t[h, p, n] C_t[g(h), n] + D[h] x_t[h, p],   S_{-1} = 0.
// Shapes: x and y [batch, L, H, P], dt [batch, L, H] (raw, before dt_bias and softplus),
// dt_bias, A_log and D [H], B and C [batch, L, G, N]. Overwrites y and fills *saved.
void ssd_scan_forward(const SsdShape& s, const float* x, const float* dt, const float* dt_bias,
                      const float* A_log, const float* B, const float* C, const float* D, float* y,
                      SsdSaved* saved, ThreadPool& pool);

// Backpropagates dy [batch, L, H, P] through the scan whose forward filled `saved` from the
// same inputs. Overwrites dx, d_dt, dB and dC (shapes as their inputs). Adds into
// d_dt_bias, d_A_log and d_D [H]. Results do not depend on the pool size.
// Allocates scratch of about batch * L * H * (2 * head_dim + chunk_size) floats plus the
// size of saved.chunk_states per call.
void ssd_scan_backward(const SsdShape& s, const float* x, const float* dt, const float* dt_bias,
                       const float* A_log, const float* B, const float* C, const float* D,
                       const SsdSaved& saved, const float* dy, float* dx, float* d_dt, float* dB,
                       float* dC, float* d_dt_bias, float* d_A_log, float* d_D, ThreadPool& pool);

}  // namespace mambacpp::train
