// The trainable language model: r_0 = Emb[ids], r_{i+1} = r_i + mixer_i(norm_i(r_i))
// (and + mlp_i(norm2_i(.)) when d_intermediate > 0), logits = norm_f(r_n) · W_lm. This
// is the reference's add-then-norm order rearranged as the usual pre-norm network.
// loss() keeps every layer's activations for the backward pass, which walks the layers
// in reverse and adds into each Parameter::grad.
#include "train/language_model.h"

#include <algorithm>
#include <fstream>
#include <map>
#include <random>

#include "io/checkpoint_files.h"
#include "io/safetensors.h"
#include "mambacpp/error.h"
#include "model/weight_table.h"
#include "ops/scratch.h"
#include "train/cross_entropy.h"
#include "train/gated_mlp_block.h"
#include "train/initialization.h"
#include "train/mamba1_block.h"
#include "train/mamba2_block.h"
#include "train/norm_grad.h"
#include "train/parameter_specs.h"

namespace mambacpp::train {

namespace {

struct LayerParams {
  Mamba1Params mamba1{};
  Mamba2Params mamba2{};
  Parameter* norm = nullptr;
  Parameter* norm2 = nullptr;  // with a gated MLP only
  GatedMlpParams mlp{};
};

// Activations of one layer that its backward pass reads, for M tokens of width d_model.
struct LayerActivations {
  std::vector<float> residual;  // [M, D]: r_i, the layer's input
  std::vector<float> normed;    // [M, D]
  std::vector<float> rstd;      // [M]
  Mamba1Activations mamba1;
  Mamba2Activations mamba2;
  // With a gated MLP: r_i + mixer output, its norm, and the MLP's activations.
  std::vector<float> residual_mid, normed2, rstd2;
  GatedMlpActivations mlp;
};

}  // namespace

struct LanguageModel::Impl {
  ModelConfig config;
  std::vector<Parameter> params;
  Parameter* embedding = nullptr;
  Parameter* norm_f = nullptr;
  Parameter* lm_head = nullptr;  // the embedding when tied
  std::vector<LayerParams> layers;
  std::vector<LayerActivations> activations;

  void bind();
  Parameter* find(const std::string& name);
  Parameter* find_optional(const std::string& name);

  void forward_layer(int64_t i, const float* residual, int64_t batch, int64_t seq_len,
                     float* next, ThreadPool& pool);
  void backward_layer(int64_t i, int64_t batch, int64_t seq_len, float* d_residual,
                      ThreadPool& pool);
};

Parameter* LanguageModel::Impl::find_optional(const std::string& name) {
  for (Parameter& p : params) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

Parameter* LanguageModel::Impl::find(const std::string& name) {
  Parameter* p = find_optional(name);
  if (p == nullptr) throw Error("internal: parameter " + name + " was not created");
  return p;
}

// Points the per-layer views at the parameters, which must not move afterwards.
void LanguageModel::Impl::bind() {
  embedding = find("backbone.embedding.weight");
  norm_f = find("backbone.norm_f.weight");
  lm_head = config.tie_embeddings ? embedding : find("lm_head.weight");

  layers.assign(static_cast<size_t>(config.n_layer), LayerParams{});
  for (int64_t i = 0; i < config.n_layer; ++i) {
    const std::string layer = "backbone.layers." + std::to_string(i) + ".";
    const std::string mixer = layer + "mixer.";
    LayerParams& lp = layers[i];
    lp.norm = find(layer + "norm.weight");
    if (config.d_intermediate > 0) {
      lp.norm2 = find(layer + "norm2.weight");
      lp.mlp = {find(layer + "mlp.fc1.weight"), find(layer + "mlp.fc2.weight")};
    }

    if (config.mixer == MixerKind::Mamba1) {
      lp.mamba1 = {find(mixer + "in_proj.weight"),  find_optional(mixer + "in_proj.bias"),
                   find(mixer + "conv1d.weight"),   find_optional(mixer + "conv1d.bias"),
                   find(mixer + "x_proj.weight"),   find(mixer + "dt_proj.weight"),
                   find(mixer + "dt_proj.bias"),    find(mixer + "A_log"),
                   find(mixer + "D"),               find(mixer + "out_proj.weight"),
                   find_optional(mixer + "out_proj.bias")};
    } else {
      lp.mamba2 = {find(mixer + "in_proj.weight"),  find_optional(mixer + "in_proj.bias"),
                   find(mixer + "conv1d.weight"),   find_optional(mixer + "conv1d.bias"),
                   find(mixer + "dt_bias"),         find(mixer + "A_log"),
                   find(mixer + "D"),               find(mixer + "norm.weight"),
                   find(mixer + "out_proj.weight"), find_optional(mixer + "out_proj.bias")};
    }
  }
  activations.resize(static_cast<size_t>(config.n_layer));
}

LanguageModel::LanguageModel(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
LanguageModel::LanguageModel(LanguageModel&&) noexcept = default;
LanguageModel& LanguageModel::operator=(LanguageModel&&) noexcept = default;
LanguageModel::~LanguageModel() = default;

LanguageModel LanguageModel::initialize(const ModelConfig& config, uint64_t seed) {
  auto impl = std::make_unique<Impl>();
  impl->config = config;
  std::mt19937_64 rng(seed);
  for (const ParameterSpec& spec : parameter_specs(config)) {
    Parameter p;
    p.name = spec.name;
    p.shape = spec.shape;
    p.weight_decay = spec.weight_decay;
    initialize_values(spec, config, rng, p.value);
    p.grad.assign(p.value.size(), 0.0f);
    impl->params.push_back(std::move(p));
  }
  impl->bind();
  return LanguageModel(std::move(impl));
}

LanguageModel LanguageModel::load(const std::string& dir) {
  auto impl = std::make_unique<Impl>();
  impl->config = load_model_config(dir);
  const std::vector<ParameterSpec> specs = parameter_specs(impl->config);
  impl->params.resize(specs.size());

  WeightTable table;
  for (size_t i = 0; i < specs.size(); ++i) {
    Parameter& p = impl->params[i];
    p.name = specs[i].name;
    p.shape = specs[i].shape;
    p.weight_decay = specs[i].weight_decay;
    std::vector<std::string> aliases;
    if (p.name == "backbone.embedding.weight") aliases.push_back("backbone.embeddings.weight");
    table.add_values(p.name, p.shape, &p.value, aliases);
  }
  if (impl->config.tie_embeddings) {
    table.allow_unused("lm_head.weight", {impl->config.padded_vocab_size, impl->config.d_model});
  }

  CheckpointFiles files = CheckpointFiles::open(dir);
  WeightStorage storage;
  table.bind(files, LoadOptions{}, storage);
  for (Parameter& p : impl->params) p.grad.assign(p.value.size(), 0.0f);
  impl->bind();
  return LanguageModel(std::move(impl));
}

void LanguageModel::save(const std::string& dir) const {
  const std::string config_path = dir + "/config.json";
  std::ofstream config_file(config_path, std::ios::binary);
  config_file << model_config_to_state_spaces_json(impl_->config);
  if (!config_file.flush()) throw Error("failed to write " + config_path);

  std::vector<TensorToWrite> tensors;
  for (const Parameter& p : impl_->params) {
    tensors.push_back({p.name, DType::F32, p.shape, p.value.data()});
  }
  write_safetensors(dir + "/model.safetensors", tensors, {{"format", "pt"}});
}

std::vector<Parameter>& LanguageModel::parameters() { return impl_->params; }
const std::vector<Parameter>& LanguageModel::parameters() const { return impl_->params; }
const ModelConfig& LanguageModel::config() const { return impl_->config; }

void LanguageModel::zero_grad() {
  for (Parameter& p : impl_->params) std::fill(p.grad.begin(), p.grad.end(), 0.0f);
}

void LanguageModel::Impl::forward_layer(int64_t i, const float* residual, int64_t batch,
                                        int64_t seq_len, float* next, ThreadPool& pool) {
  const int64_t M = batch * seq_len, D = config.d_model;
  const size_t n = static_cast<size_t>(M * D);
  LayerActivations& act = activations[i];
  const LayerParams& lp = layers[i];

  act.residual.assign(residual, residual + n);
  act.normed.resize(n);
  act.rstd.resize(static_cast<size_t>(M));
  rms_norm_forward(residual, M, D, lp.norm->value.data(), config.norm_eps, act.normed.data(),
                   act.rstd.data(), pool);

  ScratchFrame scratch;
  float* mixer_out = scratch.take<float>(n);
  if (config.mixer == MixerKind::Mamba1) {
    mamba1_forward(config, lp.mamba1, act.normed.data(), batch, seq_len, mixer_out,
                   act.mamba1, pool);
  } else {
    mamba2_forward(config, lp.mamba2, act.normed.data(), batch, seq_len, mixer_out,
                   act.mamba2, pool);
  }
  for (size_t j = 0; j < n; ++j) next[j] = residual[j] + mixer_out[j];
  if (config.d_intermediate == 0) return;

  // The gated MLP adds a second residual branch.
  const int64_t F = gated_mlp_hidden_size(config);
  act.residual_mid.assign(next, next + n);
  act.normed2.resize(n);
  act.rstd2.resize(static_cast<size_t>(M));
  rms_norm_forward(next, M, D, lp.norm2->value.data(), config.norm_eps, act.normed2.data(),
                   act.rstd2.data(), pool);
  gated_mlp_forward(lp.mlp, act.normed2.data(), M, D, F, mixer_out, act.mlp, pool);
  for (size_t j = 0; j < n; ++j) next[j] += mixer_out[j];
}

// On entry d_residual is d(loss)/d r_{i+1}; on return it is d(loss)/d r_i.
void LanguageModel::Impl::backward_layer(int64_t i, int64_t batch, int64_t seq_len,
                                         float* d_residual, ThreadPool& pool) {
  const int64_t M = batch * seq_len, D = config.d_model;
  const size_t n = static_cast<size_t>(M * D);
  const LayerActivations& act = activations[i];
  const LayerParams& lp = layers[i];
  ScratchFrame scratch;
  float* d_branch = scratch.take<float>(n);
  float* d_normed = scratch.take<float>(n);

  if (config.d_intermediate > 0) {
    const int64_t F = gated_mlp_hidden_size(config);
    gated_mlp_backward(lp.mlp, act.normed2.data(), M, D, F, act.mlp, d_residual, d_normed,
                       pool);
    rms_norm_backward(act.residual_mid.data(), act.rstd2.data(), d_normed, M, D,
                      lp.norm2->value.data(), d_branch, lp.norm2->grad.data(), pool);
    for (size_t j = 0; j < n; ++j) d_residual[j] += d_branch[j];
  }

  if (config.mixer == MixerKind::Mamba1) {
    mamba1_backward(config, lp.mamba1, act.normed.data(), batch, seq_len, act.mamba1, d_residual,
                    d_normed, pool);
  } else {
    mamba2_backward(config, lp.mamba2, act.normed.data(), batch, seq_len, act.mamba2, d_residual,
                    d_normed, pool);
  }
  rms_norm_backward(act.residual.data(), act.rstd.data(), d_normed, M, D,
                    lp.norm->value.data(), d_branch, lp.norm->grad.data(), pool);
  for (size_t j = 0; j < n; ++j) d_residual[j] += d_branch[j];
}

double LanguageModel::loss(const int32_t* ids, int64_t batch, int64_t seq_len, bool backward,
                           ThreadPool& pool) {
  Impl& m = *impl_;
  const ModelConfig& c = m.config;
  if (batch <= 0 || seq_len < 2)
    throw Error("training needs at least one sequence of 2 or more tokens, got batch " +
                std::to_string(batch) + " of " + std::to_string(seq_len));
  const int64_t M = batch * seq_len, D = c.d_model, V = c.padded_vocab_size;
  const size_t n = static_cast<size_t>(M * D);
  for (int64_t j = 0; j < M; ++j) {
    if (ids[j] < 0 || ids[j] >= V)
      throw Error("token id " + std::to_string(ids[j]) + " is outside the vocabulary of " +
                  std::to_string(V) + " rows");
  }

  // Embedding, then the layers; the loop leaves r_n in `residual`.
  std::vector<float> residual(n), next(n);
  for (int64_t j = 0; j < M; ++j) {
    std::copy_n(m.embedding->value.data() + ids[j] * D, D, residual.data() + j * D);
  }
  for (int64_t i = 0; i < c.n_layer; ++i) {
    m.forward_layer(i, residual.data(), batch, seq_len, next.data(), pool);
    residual.swap(next);
  }

  std::vector<float> final_normed(n), final_rstd(static_cast<size_t>(M));
  rms_norm_forward(residual.data(), M, D, m.norm_f->value.data(), c.norm_eps, final_normed.data(),
                   final_rstd.data(), pool);

  // Position t predicts token t + 1; the last position of each sequence has no target.
  std::vector<int32_t> targets(static_cast<size_t>(M));
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t t = 0; t < seq_len; ++t) {
      targets[b * seq_len + t] = t + 1 < seq_len ? ids[b * seq_len + t + 1] : -1;
    }
  }
  const double count = static_cast<double>(batch * (seq_len - 1));
  const float scale = static_cast<float>(1.0 / count);

  std::vector<float> d_final(backward ? n : 0);
  double total = lm_head_cross_entropy(final_normed.data(), M, D, m.lm_head->value.data(), V,
                                       targets.data(), scale, backward ? d_final.data() : nullptr,
                                       m.lm_head->grad.data(), pool);
  if (!backward) return total / count;

  // Backward: through norm_f, the layers in reverse, then into the embedding rows.
  std::vector<float> d_residual(n);
  rms_norm_backward(residual.data(), final_rstd.data(), d_final.data(), M, D,
                    m.norm_f->value.data(), d_residual.data(), m.norm_f->grad.data(), pool);
  for (int64_t i = c.n_layer - 1; i >= 0; --i) {
    m.backward_layer(i, batch, seq_len, d_residual.data(), pool);
  }
  for (int64_t j = 0; j < M; ++j) {
    float* row = m.embedding->grad.data() + ids[j] * D;
    for (int64_t k = 0; k < D; ++k) row[k] += d_residual[j * D + k];
  }
  return total / count;
}

}  // namespace mambacpp::train
