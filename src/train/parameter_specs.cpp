#include "train/parameter_specs.h"

#include "mambacpp/error.h"

namespace mambacpp::train {

namespace {

void check_trainable(const ModelConfig& c) {
  if (!c.attn_layer_idx.empty())
    throw Error("training does not support attention layers yet (attn_layer_idx is not empty)");
  if (c.mixer != MixerKind::Mamba2) return;

  if (c.d_ssm != c.d_inner)
    throw Error("training does not support ssm_cfg.d_ssm smaller than d_inner yet");
  if (c.D_has_hdim) throw Error("training does not support ssm_cfg.D_has_hdim yet");
  if (!c.rmsnorm) throw Error("training does not support ssm_cfg.rmsnorm = false yet");
  if (c.norm_before_gate) throw Error("training does not support ssm_cfg.norm_before_gate yet");
  if (c.dt_limit.first != 0.0 || c.dt_limit.second < 1e300)
    throw Error("training does not support ssm_cfg.dt_limit yet");
  if (c.d_ssm % c.headdim != 0 || c.n_heads() % c.ngroups != 0)
    throw Error("ssm_cfg.headdim and ngroups must divide d_inner into whole heads and groups");
}

void add_mamba1(const ModelConfig& c, const std::string& prefix, std::vector<ParameterSpec>& out) {
  const int64_t D = c.d_model, E = c.d_inner, N = c.d_state, R = c.dt_rank, K = c.d_conv;
  out.push_back({prefix + "in_proj.weight", {2 * E, D}, InitRule::KaimingUniform, true});
  if (c.bias) out.push_back({prefix + "in_proj.bias", {2 * E}, InitRule::Zeros, false});
  out.push_back({prefix + "conv1d.weight", {E, 1, K}, InitRule::KaimingUniform, true});
  if (c.conv_bias) out.push_back({prefix + "conv1d.bias", {E}, InitRule::ConvBias, false});
  out.push_back({prefix + "x_proj.weight", {R + 2 * N, E}, InitRule::KaimingUniform, true});
  out.push_back({prefix + "dt_proj.weight", {E, R}, InitRule::DtProjWeight, true});
  out.push_back({prefix + "dt_proj.bias", {E}, InitRule::DtBias, false});
  out.push_back({prefix + "A_log", {E, N}, InitRule::Mamba1ALog, false});
  out.push_back({prefix + "D", {E}, InitRule::Ones, false});
  out.push_back({prefix + "out_proj.weight", {D, E}, InitRule::ResidualOut, true});
  if (c.bias) out.push_back({prefix + "out_proj.bias", {D}, InitRule::Zeros, false});
}

void add_mamba2(const ModelConfig& c, const std::string& prefix, std::vector<ParameterSpec>& out) {
  const int64_t D = c.d_model, E = c.d_inner, H = c.n_heads(), K = c.d_conv;
  const int64_t conv_channels = E + 2 * c.ngroups * c.d_state;
  const int64_t d_in_proj = E + conv_channels + H;
  out.push_back({prefix + "in_proj.weight", {d_in_proj, D}, InitRule::KaimingUniform, true});
  if (c.bias) out.push_back({prefix + "in_proj.bias", {d_in_proj}, InitRule::Zeros, false});
  out.push_back({prefix + "conv1d.weight", {conv_channels, 1, K}, InitRule::KaimingUniform, true});
  if (c.conv_bias) out.push_back({prefix + "conv1d.bias", {conv_channels}, InitRule::ConvBias, false});
  out.push_back({prefix + "dt_bias", {H}, InitRule::DtBias, false});
  out.push_back({prefix + "A_log", {H}, InitRule::Mamba2ALog, false});
  out.push_back({prefix + "D", {H}, InitRule::Ones, false});
  out.push_back({prefix + "norm.weight", {E}, InitRule::Ones, false});
  out.push_back({prefix + "out_proj.weight", {D, E}, InitRule::ResidualOut, true});
  if (c.bias) out.push_back({prefix + "out_proj.bias", {D}, InitRule::Zeros, false});
}

}  // namespace

int64_t gated_mlp_hidden_size(const ModelConfig& config) {
  return (config.d_intermediate + 127) / 128 * 128;
}

std::vector<ParameterSpec> parameter_specs(const ModelConfig& c) {
  check_trainable(c);

  std::vector<ParameterSpec> out;
  out.push_back({"backbone.embedding.weight", {c.padded_vocab_size, c.d_model}, InitRule::Normal002, true});
  for (int64_t i = 0; i < c.n_layer; ++i) {
    const std::string layer = "backbone.layers." + std::to_string(i) + ".";
    if (c.mixer == MixerKind::Mamba1) {
      add_mamba1(c, layer + "mixer.", out);
    } else {
      add_mamba2(c, layer + "mixer.", out);
    }
    out.push_back({layer + "norm.weight", {c.d_model}, InitRule::Ones, false});

    if (c.d_intermediate > 0) {
      const int64_t F = gated_mlp_hidden_size(c);
      out.push_back({layer + "norm2.weight", {c.d_model}, InitRule::Ones, false});
      out.push_back({layer + "mlp.fc1.weight", {2 * F, c.d_model}, InitRule::KaimingUniform, true});
      out.push_back({layer + "mlp.fc2.weight", {c.d_model, F}, InitRule::ResidualOut, true});
    }
  }
  out.push_back({"backbone.norm_f.weight", {c.d_model}, InitRule::Ones, false});
  if (!c.tie_embeddings) {
    out.push_back({"lm_head.weight", {c.padded_vocab_size, c.d_model}, InitRule::KaimingUniform, true});
  }
  return out;
}

}  // namespace mambacpp::train
