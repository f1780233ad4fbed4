#pragma once

#include <cstdint>
#include <vector>

#include "mambacpp/config.h"
#include "mambacpp/thread_pool.h"
#include "train/parameter.h"
#include "train/ssd_scan_grad.h"

namespace mambacpp::train {

// The parameters of one Mamba-2 mixer (d_ssm = d_inner, so in_proj has no MLP part).
// H heads of P channels, G groups, N = d_state, C_x = d_inner + 2GN conv channels,
// d_in_proj = 2 d_inner + 2GN + H.
struct Mamba2Params {
  Parameter* in_proj_weight;   // [d_in_proj, D]: z, then xBC, then dt
  Parameter* in_proj_bias;     // [d_in_proj], optional
  Parameter* conv_weight;      // [C_x, 1, K]
  Parameter* conv_bias;        // [C_x], optional
  Parameter* dt_bias;          // [H]
  Parameter* A_log;            // [H]
  Parameter* D;                // [H]
  Parameter* norm_weight;      // [d_inner]
  Parameter* out_proj_weight;  // [D, d_inner]
  Parameter* out_proj_bias;    // [D], optional
};

// Activations the backward pass reads, for M = batch · seq_len tokens.
struct Mamba2Activations {
  std::vector<float> zxbcdt;    // [M, d_in_proj]: in_proj output
  std::vector<float> conv_pre;  // [M, C_x]: conv output before SiLU
  std::vector<float> xbc;       // [M, C_x]: conv + SiLU
  std::vector<float> x;         // [M, H, P]
  std::vector<float> B, C;      // [M, G, N]
  std::vector<float> dt;        // [M, H]: before dt_bias and softplus
  std::vector<float> z;         // [M, d_inner]
  std::vector<float> y;         // [M, d_inner]: scan output
  std::vector<float> norm_rstd; // [M, G]
  std::vector<float> normed;    // [M, d_inner]: gated norm output
  SsdSaved scan;
};

// out [M, D] = Mamba2(u [M, D]) for `batch` sequences of `seq_len` tokens.
void mamba2_forward(const ModelConfig& config, const Mamba2Params& p, const float* u,
                    int64_t batch, int64_t seq_len, float* out, Mamba2Activations& act,
                    ThreadPool& pool);

// Overwrites du [M, D] and adds every parameter's gradient into Parameter::grad.
void mamba2_backward(const ModelConfig& config, const Mamba2Params& p, const float* u,
                     int64_t batch, int64_t seq_len, const Mamba2Activations& act,
                     const float* dout, float* du, ThreadPool& pool);

}  // namespace mambacpp::train
