#pragma once

#include <cstdint>
#include <vector>

#include "mambacpp/config.h"
#include "mambacpp/thread_pool.h"
#include "train/parameter.h"
#include "train/selective_scan_grad.h"

namespace mambacpp::train {

// The parameters of one Mamba-1 mixer; the biases marked optional are null when the
// config has none. E = d_inner, N = d_state, R = dt_rank, K = d_conv, D = d_model.
struct Mamba1Params {
  Parameter* in_proj_weight;   // [2E, D]
  Parameter* in_proj_bias;     // [2E], optional
  Parameter* conv_weight;      // [E, 1, K]
  Parameter* conv_bias;        // [E], optional
  Parameter* x_proj_weight;    // [R + 2N, E]
  Parameter* dt_proj_weight;   // [E, R]
  Parameter* dt_proj_bias;     // [E], added inside the scan before softplus
  Parameter* A_log;            // [E, N]
  Parameter* D;                // [E]
  Parameter* out_proj_weight;  // [D, E]
  Parameter* out_proj_bias;    // [D], optional
};

// Activations the backward pass reads, for M = batch · seq_len tokens.
struct Mamba1Activations {
  std::vector<float> xz;        // [M, 2E]: in_proj output, x then z
  std::vector<float> conv_pre;  // [M, E]: conv output before SiLU
  std::vector<float> xc;        // [M, E]: conv + SiLU
  std::vector<float> x_dbl;     // [M, R + 2N]: x_proj output
  std::vector<float> delta_low; // [M, R]
  std::vector<float> B, C;      // [M, N]
  std::vector<float> dt;        // [M, E]: dt_proj output, before dt_bias and softplus
  std::vector<float> y;         // [M, E]: scan output before the gate
  std::vector<float> gated;     // [M, E]: y ⊙ silu(z)
  SelectiveScanSaved scan;
};

// out [M, D] = Mamba1(u [M, D]) for `batch` sequences of `seq_len` tokens.
void mamba1_forward(const ModelConfig& config, const Mamba1Params& p, const float* u,
                    int64_t batch, int64_t seq_len, float* out, Mamba1Activations& act,
                    ThreadPool& pool);

// Overwrites du [M, D] and adds every parameter's gradient into Parameter::grad.
void mamba1_backward(const ModelConfig& config, const Mamba1Params& p, const float* u,
                     int64_t batch, int64_t seq_len, const Mamba1Activations& act,
                     const float* dout, float* du, ThreadPool& pool);

}  // namespace mambacpp::train
