#pragma once

#include <span>
#include <vector>

#include "mambacpp/config.h"
#include "model/mixer.h"
#include "ops/matrix.h"

namespace mambacpp {

// The attention layer of a hybrid model (mha.MHA in the reference), causal, with
// grouped-query heads. With Hq query heads, Hkv key/value heads of head_dim features:
//   qkv = in_proj(u)                              [L, (Hq + 2 Hkv) head_dim]
//   qkv = causal_conv1d(qkv)                      when d_conv > 0: bias, no activation
//   q, k = rotary(q, k) on their first rotary_emb_dim features, at absolute positions
//   o_j = softmax(q_j kᵀ · scale, causal) v       query head j reads kv head j / (Hq / Hkv)
//   out = out_proj(o)
// The state keeps the raw qkv window of the conv and, for every past token, k (after
// rotary) and v. Unlike the reference's prefill, which stores the convolved qkv, the
// conv window here always contains raw qkv, so decode after a prefill reads the right
// history.
class AttentionMixer final : public Mixer {
 public:
  explicit AttentionMixer(const ModelConfig& config);

  void add_weights(WeightTable& table, const std::string& prefix) override;
  void init_state(LayerState& state) const override;
  void forward(const float* x, int64_t L, LayerState& state, int64_t position, float* y,
               ThreadPool& pool) const override;
  void forward_batch(const float* x, std::span<LayerState* const> states,
                     std::span<const int64_t> positions, int64_t d_model, float* y,
                     ThreadPool& pool) const override;
  int64_t weight_bytes() const override;

 private:
  // Turns the in_proj output of L tokens of one sequence, qkv [L, qkv_width], into the
  // attention output o [L, q_heads * head_dim]: conv, rotary, cache append, attention.
  void attend(const float* qkv, int64_t L, LayerState& state, int64_t position, float* o,
              ThreadPool& pool) const;

  int64_t d_model_, q_heads_, kv_heads_, head_dim_, d_conv_, rotary_dim_;
  int64_t qkv_width_;  // (q_heads + 2 * kv_heads) * head_dim
  double rotary_base_;
  float scale_;
  bool qkv_bias_, out_bias_;

  Matrix in_proj_;                       // [qkv_width, d_model]
  std::vector<float> in_proj_bias_;      // [qkv_width] when qkv_proj_bias
  std::vector<float> conv_weight_;       // [qkv_width, 1, d_conv] when d_conv > 0
  std::vector<float> conv_bias_values_;  // [qkv_width] when d_conv > 0
  Matrix out_proj_;                      // [d_model, q_heads * head_dim]
  std::vector<float> out_proj_bias_;     // [d_model] when out_proj_bias
};

}  // namespace mambacpp
