#pragma once

#include <cstdint>

#include "mambacpp/thread_pool.h"

namespace mambacpp {

// Inputs of the Mamba-2 scan (state space duality, SSD) over L tokens, H heads of P
// channels, G groups of B/C with state size N. Head h reads group h / (H / G), so
// consecutive heads share a group. x, B and C are usually strided views into the conv
// output.
struct SsdScanArgs {
  int64_t L = 0, H = 0, P = 0, G = 0, N = 0;
  const float* x = nullptr;   // [L, H * P], row stride x_stride
  int64_t x_stride = 0;
  const float* B = nullptr;   // [L, G * N], row stride bc_stride
  const float* C = nullptr;   // [L, G * N], row stride bc_stride
  int64_t bc_stride = 0;
  const float* dt = nullptr;  // [L, H] step sizes Δ, after softplus and clamping
  const float* A = nullptr;   // [H] = -exp(A_log)
  const float* D = nullptr;   // [H], or [H * P] when D_has_hdim
  bool D_has_hdim = false;
  int64_t chunk_size = 256;   // tokens per block of ssd_scan_chunked; no effect on results
};

// All three functions run the same recurrence from `ssm_state` [H, P, N], leave the
// state after token L - 1 in it, and write y [L, H * P]:
//   S_t[h, p, n] = exp(Δ_t[h] A[h]) S_{t-1}[h, p, n] + Δ_t[h] x_t[h, p] B_t[g(h), n]
//   y_t[h, p]    = Σ_n S_t[h, p, n] C_t[g(h), n] + D[h] x_t[h, p]

// Prefill: splits the tokens into blocks of chunk_size. Inside a block the outputs are
// the masked matrix product y = (C Bᵀ ∘ decay) x plus the incoming state read through
// C; only the state passes from one block to the next. The products run in OpenBLAS
// sgemm, the element-wise work is split by heads over the pool.
void ssd_scan_chunked(const SsdScanArgs& args, float* ssm_state, float* y, ThreadPool& pool);

// Decode: the recurrence token by token, split by heads over the pool.
void ssd_scan_recurrent(const SsdScanArgs& args, float* ssm_state, float* y, ThreadPool& pool);

// The scalar twin of both: the recurrence in plain loops on one thread.
void ssd_scan_reference(const SsdScanArgs& args, float* ssm_state, float* y);

}  // namespace mambacpp
