#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace mambacpp {

enum class MixerKind { Mamba1, Mamba2 };

// Options of the attention layers of a hybrid model (attn_cfg). Fields keep the
// reference's names.
struct AttentionConfig {
  int64_t num_heads = 0;
  int64_t num_heads_kv = 0;  // GQA: query head j reads kv head j / (num_heads / num_heads_kv)
  int64_t head_dim = 0;
  int64_t d_conv = 0;        // 0: no conv on qkv
  int64_t rotary_emb_dim = 0;
  double rotary_base = 10000.0;
  double softmax_scale = 0.0;  // 0: 1 / sqrt(head_dim)
  bool causal = false;
  bool qkv_proj_bias = true;
  bool out_proj_bias = true;
  int64_t mlp_dim = 0;
};

// Everything that fixes a model's shapes and math, filled from either config.json
// schema (state-spaces MambaConfig or Hugging Face MambaConfig / Mamba2Config).
struct ModelConfig {
  MixerKind mixer = MixerKind::Mamba1;
  int64_t d_model = 0;
  int64_t n_layer = 0;
  int64_t vocab_size = 0;         // ids the vocabulary has, before padding
  int64_t padded_vocab_size = 0;  // rows of the embedding and lm_head
  int64_t pad_vocab_size_multiple = 8;
  bool tie_embeddings = true;
  bool residual_in_fp32 = true;
  double norm_eps = 1e-5;
  int64_t d_intermediate = 0;     // gated MLP after each mixer when > 0
  std::vector<int64_t> attn_layer_idx;
  AttentionConfig attn;

  // Mixer options (ssm_cfg).
  int64_t d_state = 16;
  int64_t d_conv = 4;
  int64_t expand = 2;             // integer part when an HF config gives a fractional one
  int64_t d_inner = 0;            // expand * d_model; what the mixers use
  int64_t dt_rank = 0;            // Mamba-1: ceil(d_model / 16) when "auto"
  bool bias = false;              // in_proj / out_proj bias
  // Hugging Face configs may omit use_bias, and its default is disputed; the loader then
  // takes `bias` from whether the checkpoint has in_proj.bias.
  bool bias_from_checkpoint = false;
  bool conv_bias = true;
  // Mamba-2 only.
  int64_t headdim = 64;
  int64_t ngroups = 1;
  int64_t chunk_size = 256;
  int64_t d_ssm = 0;              // channels that go through the SSM; d_inner unless given
  bool D_has_hdim = false;
  bool rmsnorm = true;
  bool norm_before_gate = false;
  std::pair<double, double> dt_limit{0.0, 1e300};

  std::string schema;  // "state-spaces" or "huggingface", for messages

  int64_t n_heads() const { return d_ssm / headdim; }
  bool is_attention_layer(int64_t layer) const;
};

// Reads and validates `dir`/config.json. Throws Error naming the file and the field.
ModelConfig load_model_config(const std::string& dir);
// The same from JSON text; `path` is used in messages.
ModelConfig parse_model_config(const std::string& json_text, const std::string& path);

// Returns config.json text in the state-spaces schema, which parse_model_config reads
// back to the same shapes and math. Throws Error for a config that schema cannot express
// (attention layers, or a d_inner that is not expand * d_model).
std::string model_config_to_state_spaces_json(const ModelConfig& config);

}  // namespace mambacpp
