#include "model/attention_mixer.h"

#include <cmath>
#include <algorithm>
#include <cstring>

#include "mambacpp/error.h"
#include "ops/attention.h"
#include "ops/causal_conv1d.h"
#include "ops/linear.h"
#include "ops/scratch.h"

namespace mambacpp {

AttentionMixer::AttentionMixer(const ModelConfig& c)
    : d_model_(c.d_model),
      q_heads_(c.attn.num_heads),
      kv_heads_(c.attn.num_heads_kv),
      head_dim_(c.attn.head_dim),
      d_conv_(c.attn.d_conv),
      rotary_dim_(c.attn.rotary_emb_dim),
      qkv_width_((c.attn.num_heads + 2 * c.attn.num_heads_kv) * c.attn.head_dim),
      rotary_base_(c.attn.rotary_base),
      scale_(static_cast<float>(c.attn.softmax_scale > 0
                                    ? c.attn.softmax_scale
                                    : 1.0 / std::sqrt(static_cast<double>(c.attn.head_dim)))),
      qkv_bias_(c.attn.qkv_proj_bias),
      out_bias_(c.attn.out_proj_bias) {}

void AttentionMixer::add_weights(WeightTable& table, const std::string& p) {
  table.add_matrix(p + "in_proj.weight", {qkv_width_, d_model_}, &in_proj_);
  if (qkv_bias_) table.add_values(p + "in_proj.bias", {qkv_width_}, &in_proj_bias_);
  if (d_conv_ > 0) {
    table.add_values(p + "conv1d.weight", {qkv_width_, 1, d_conv_}, &conv_weight_);
    table.add_values(p + "conv1d.bias", {qkv_width_}, &conv_bias_values_);
  }
  table.add_matrix(p + "out_proj.weight", {d_model_, q_heads_ * head_dim_}, &out_proj_);
  if (out_bias_) table.add_values(p + "out_proj.bias", {d_model_}, &out_proj_bias_);
}

void AttentionMixer::init_state(LayerState& state) const {
  state.conv_state.assign(static_cast<size_t>(qkv_width_ * d_conv_), 0.0f);
  state.ssm_state.clear();
  state.kv_cache.clear();
}

int64_t AttentionMixer::weight_bytes() const {
  int64_t small = static_cast<int64_t>(in_proj_bias_.size() + conv_weight_.size() +
                                       conv_bias_values_.size() + out_proj_bias_.size()) *
                  4;
  return in_proj_.bytes() + out_proj_.bytes() + small;
}

void AttentionMixer::forward(const float* u, int64_t L, LayerState& state, int64_t position,
                             float* out, ThreadPool& pool) const {
  ScratchFrame scratch;

  // qkv = in_proj(u) [L, qkv_width]
  float* qkv = scratch.take<float>(L * qkv_width_);
  linear(u, L, in_proj_, data_or_null(in_proj_bias_), qkv, pool);

  float* o = scratch.take<float>(L * q_heads_ * head_dim_);
  attend(qkv, L, state, position, o, pool);

  linear(o, L, out_proj_, data_or_null(out_proj_bias_), out, pool);
}

void AttentionMixer::forward_batch(const float* u, std::span<LayerState* const> states,
                                   std::span<const int64_t> positions, int64_t /*d_model*/,
                                   float* out, ThreadPool& pool) const {
  const int64_t B = static_cast<int64_t>(states.size()), q_width = q_heads_ * head_dim_;
  ScratchFrame scratch;
  float* qkv = scratch.take<float>(B * qkv_width_);
  linear(u, B, in_proj_, data_or_null(in_proj_bias_), qkv, pool);

  float* o = scratch.take<float>(B * q_width);
  for (int64_t b = 0; b < B; ++b)
    attend(qkv + b * qkv_width_, 1, *states[b], positions[b], o + b * q_width, pool);

  linear(o, B, out_proj_, data_or_null(out_proj_bias_), out, pool);
}

void AttentionMixer::attend(const float* raw_qkv, int64_t L, LayerState& state, int64_t position,
                            float* o, ThreadPool& pool) const {
  const int64_t hd = head_dim_, kv_width = kv_heads_ * hd, q_width = q_heads_ * hd;
  const int64_t kv_row = 2 * kv_width;
  MAMBACPP_CHECK(static_cast<int64_t>(state.kv_cache.size()) == position * kv_row);

  // The conv over the raw-qkv window, when there is one
  ScratchFrame scratch;
  float* qkv = scratch.take<float>(L * qkv_width_);
  std::copy(raw_qkv, raw_qkv + L * qkv_width_, qkv);
  if (d_conv_ > 0)
    causal_conv1d(raw_qkv, qkv_width_, L, qkv_width_, d_conv_, conv_weight_.data(),
                  conv_bias_values_.data(), state.conv_state.data(), /*apply_silu=*/false,
                  qkv, pool);

  // Rotary on q and k at positions position .. position + L - 1
  if (rotary_dim_ > 0) {
    apply_rotary(qkv, qkv_width_, L, q_heads_, hd, rotary_dim_, position, rotary_base_);
    apply_rotary(qkv + q_width, qkv_width_, L, kv_heads_, hd, rotary_dim_, position,
                 rotary_base_);
  }

  // Append k and v of the new tokens to the cache [n_tokens, 2, kv_heads, head_dim].
  // NOTE: the cache grows by std::vector's doubling, so decode with attention layers
  // still allocates now and then. Reserving the context length up front would stop it.
  state.kv_cache.resize(static_cast<size_t>((position + L) * kv_row));
  for (int64_t t = 0; t < L; ++t) {
    float* row = state.kv_cache.data() + (position + t) * kv_row;
    std::memcpy(row, qkv + t * qkv_width_ + q_width, kv_row * sizeof(float));
  }

  // o = causal attention of the new queries over the whole cache [L, q_width]
  AttentionArgs args;
  args.L = L;
  args.n_past = position;
  args.q_heads = q_heads_;
  args.kv_heads = kv_heads_;
  args.head_dim = hd;
  args.q = qkv;
  args.q_stride = qkv_width_;
  args.kv_cache = state.kv_cache.data();
  args.scale = scale_;
  causal_attention(args, o, pool);
}

}  // namespace mambacpp
