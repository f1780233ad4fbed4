#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "mambacpp/config.h"

namespace mambacpp::train {

// The name, shape, initialization and weight-decay flag of one trainable tensor.
enum class InitRule {
  Normal002,         // N(0, 0.02): the embedding
  KaimingUniform,    // PyTorch's default Linear / Conv1d weight init: U(±1/sqrt(fan_in))
  ResidualOut,       // KaimingUniform divided by sqrt(n_layer): out_proj and fc2
  ConvBias,          // U(±1/sqrt(fan_in)) with fan_in = d_conv
  Zeros,
  Ones,
  DtProjWeight,      // U(±dt_rank^-1/2)
  DtBias,            // softplus^-1 of dt = exp(U(ln 1e-3, ln 0.1)) clamped at 1e-4
  Mamba1ALog,        // A_log[c, n] = ln(n + 1)
  Mamba2ALog,        // ln U(1, 16) per head
};

struct ParameterSpec {
  std::string name;  // state-spaces name
  std::vector<int64_t> shape;
  InitRule init;
  bool weight_decay;
};

// Every trainable tensor of a Mamba-1 or Mamba-2 language model, in checkpoint order.
// Throws Error naming the config field for what training does not support yet
// (attention layers; Mamba-2 with d_ssm < d_inner, D_has_hdim, rmsnorm false,
// norm_before_gate or a dt_limit).
std::vector<ParameterSpec> parameter_specs(const ModelConfig& config);

// Hidden units of the gated MLP: d_intermediate rounded up to a multiple of 128.
int64_t gated_mlp_hidden_size(const ModelConfig& config);

}  // namespace mambacpp::train
