#pragma once

#include <vector>

#include "mambacpp/config.h"
#include "model/mixer.h"
#include "ops/matrix.h"

namespace mambacpp {

// The Mamba-1 selective SSM block (mamba_simple.Mamba in the reference). With
// E = d_inner, N = d_state, R = dt_rank, K = d_conv:
//   [x | z]     = in_proj(u)                       x, z: [L, E]
//   x~          = silu(causal_conv1d(x))           window of raw x kept in conv_state [E, K]
//   [δ | B | C] = x_proj(x~)                       [L, R], [L, N], [L, N]
//   Δ           = softplus(dt_proj.weight · δ + dt_proj.bias)   (bias added inside the scan)
//   h_t         = exp(Δ_t A) h_{t-1} + Δ_t B_t x~_t,   A = -exp(A_log)  [E, N]
//   y_t         = (h_t · C_t + D x~_t) * silu(z_t)
//   out         = out_proj(y)
class Mamba1Mixer final : public SegmentedMixer {
 public:
  explicit Mamba1Mixer(const ModelConfig& config);

  void add_weights(WeightTable& table, const std::string& prefix) override;
  void init_state(LayerState& state) const override;
  int64_t weight_bytes() const override;

  // Called once after the weight table is bound: A = -exp(A_log).
  void finish_loading() override;

 private:
  void run(const float* u, int64_t n_rows, std::span<const Segment> segments, float* out,
           ThreadPool& pool) const override;

  int64_t d_model_, d_inner_, d_state_, d_conv_, dt_rank_;
  bool bias_, conv_bias_;

  Matrix in_proj_;                  // [2 * d_inner, d_model]
  std::vector<float> in_proj_bias_;  // [2 * d_inner] when bias
  std::vector<float> conv_weight_;   // [d_inner, 1, d_conv]
  std::vector<float> conv_bias_values_;  // [d_inner] when conv_bias
  Matrix x_proj_;                   // [dt_rank + 2 * d_state, d_inner]
  Matrix dt_proj_;                  // [d_inner, dt_rank]
  std::vector<float> dt_proj_bias_;  // [d_inner]
  std::vector<float> A_log_;         // [d_inner, d_state]
  std::vector<float> A_;             // [d_inner, d_state] = -exp(A_log)
  std::vector<float> D_;             // [d_inner]
  Matrix out_proj_;                 // [d_model, d_inner]
  std::vector<float> out_proj_bias_;  // [d_model] when bias
};

}  // namespace mambacpp
