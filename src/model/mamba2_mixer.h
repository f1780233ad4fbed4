#pragma once

#include <span>
#include <vector>

#include "mambacpp/config.h"
#include "model/mixer.h"
#include "ops/matrix.h"

namespace mambacpp {

// The Mamba-2 block (mamba2.Mamba2 in the reference). With P = headdim, H = d_ssm / P
// heads, G = ngroups, N = d_state, K = d_conv and d_mlp = d_inner - d_ssm:
//   [z0 | x0 | z | xBC | dt] = in_proj(u)       widths d_mlp, d_mlp, d_ssm, d_ssm + 2GN, H
//   [x | B | C] = silu(causal_conv1d(xBC))       window of raw xBC kept in conv_state
//   Δ   = clamp(softplus(dt + dt_bias), dt_limit)
//   S_t = exp(Δ_t A) S_{t-1} + Δ_t x_t B_tᵀ,     A = -exp(A_log) [H]; head h reads group
//   y_t = S_t C_t + D x_t                          h / (H / G) of B and C
//   y   = gated_rms_norm(y, z) per group          (y ⊙ silu(z) without rmsnorm)
//   out = out_proj([silu(z0) ⊙ x0 | y])           (just y when d_mlp = 0)
// Prompts of more than one token run the chunked SSD scan; a single token runs the
// recurrent step.
class Mamba2Mixer final : public SegmentedMixer {
 public:
  // `chunk_size` is the block length of the chunked prefill, which does not change results.
  Mamba2Mixer(const ModelConfig& config, int64_t chunk_size);

  void add_weights(WeightTable& table, const std::string& prefix) override;
  void init_state(LayerState& state) const override;
  int64_t weight_bytes() const override;
  void finish_loading() override;

 private:
  void run(const float* u, int64_t n_rows, std::span<const Segment> segments, float* out,
           ThreadPool& pool) const override;

  int64_t d_model_, d_inner_, d_ssm_, d_mlp_, d_state_, d_conv_;
  int64_t n_heads_, headdim_, ngroups_, chunk_size_;
  int64_t conv_channels_;  // d_ssm + 2 * ngroups * d_state
  int64_t in_proj_rows_;   // 2 * d_inner + 2 * ngroups * d_state + n_heads
  bool bias_, conv_bias_, D_has_hdim_, rmsnorm_, norm_before_gate_;
  float norm_eps_;
  float dt_min_, dt_max_;

  Matrix in_proj_;                    // [in_proj_rows, d_model]
  std::vector<float> in_proj_bias_;   // [in_proj_rows] when bias
  std::vector<float> conv_weight_;    // [conv_channels, 1, d_conv]
  std::vector<float> conv_bias_values_;  // [conv_channels] when conv_bias
  std::vector<float> dt_bias_;        // [n_heads]
  std::vector<float> A_log_;          // [n_heads]
  std::vector<float> A_;              // [n_heads] = -exp(A_log)
  std::vector<float> D_;              // [n_heads], or [d_ssm] when D_has_hdim
  std::vector<float> norm_weight_;    // [d_ssm] when rmsnorm
  Matrix out_proj_;                   // [d_model, d_inner]
  std::vector<float> out_proj_bias_;  // [d_model] when bias
};

}  // namespace mambacpp
