#pragma once

#include <cstdint>
#include <vector>

#include "mambacpp/thread_pool.h"

namespace mambacpp::train {

// Sizes of a batch of Mamba-1 selective scans: `batch` sequences of `seq_len` tokens,
// `d_inner` channels and `d_state` states per channel.
struct SelectiveScanShape {
  int64_t batch = 0, seq_len = 0, d_inner = 0, d_state = 0;
};

// Activations that selective_scan_forward keeps for selective_scan_backward beyond the
// inputs. Only every checkpoint_interval-th state is stored, and the backward pass
// recomputes the states in between. So the memory is batch * seq_len * d_inner *
// (1 + d_state / checkpoint_interval) floats instead of batch * seq_len * d_inner * d_state.
struct SelectiveScanSaved {
  SelectiveScanShape shape;
  int64_t checkpoint_interval = 0;
  // [batch, seq_len, d_inner]: softplus(dt + dt_bias).
  std::vector<float> delta;
  // [batch, n_chunks, d_inner, d_state] with n_chunks = ceil(seq_len / checkpoint_interval):
  // entry k is the state h[k * checkpoint_interval - 1] that enters chunk k (zeros for k = 0).
  std::vector<float> h_checkpoints;
};

// The Mamba-1 selective scan without the gate, in f32. For each sequence b, channel c,
// state n and token t:
//   delta[t, c] = softplus(dt[t, c] + dt_bias[c])   (softplus(v) = v for v > 20)
//   A[c, n]     = -exp(A_log[c, n])
//   h[t, c, n]  = exp(delta[t, c] * A[c, n]) * h[t - 1, c, n] + delta[t, c] * B[t, n] * x[t, c]
//   y[t, c]     = sum_n h[t, c, n] * C[t, n] + D[c] * x[t, c]
// starting from h[-1] = 0. x, dt and y are [batch, seq_len, d_inner], dt_bias and D are
// [d_inner], A_log is [d_inner, d_state], and B and C are [batch, seq_len, d_state].
// Overwrites y and `saved`.
void selective_scan_forward(const SelectiveScanShape& s, const float* x, const float* dt,
                            const float* dt_bias, const float* A_log, const float* B,
                            const float* C, const float* D, float* y, SelectiveScanSaved* saved,
                            ThreadPool& pool);

// Computes the gradients of the scan above for the output gradient dy
// [batch, seq_len, d_inner], given the same inputs and the `saved` of the forward call.
// Overwrites dx and d_dt [batch, seq_len, d_inner] and dB and dC [batch, seq_len, d_state].
// Adds into d_dt_bias [d_inner], d_A_log [d_inner, d_state] and d_D [d_inner]. Results do
// not depend on the number of threads in `pool`. Throws Error when `saved` comes from a
// forward call of another shape.
void selective_scan_backward(const SelectiveScanShape& s, const float* x, const float* dt,
                             const float* dt_bias, const float* A_log, const float* B,
                             const float* C, const float* D, const SelectiveScanSaved& saved,
                             const float* dy, float* dx, float* d_dt, float* dB, float* dC,
                             float* d_dt_bias, float* d_A_log, float* d_D, ThreadPool& pool);

}  // namespace mambacpp::train
