#include "mambacpp/model.h"

#include <algorithm>
#include <functional>
#include <cstdio>
#include <cstring>

#include "io/checkpoint_files.h"
#include "mambacpp/error.h"
#include "model/attention_mixer.h"
#include "model/mamba1_mixer.h"
#include "model/mamba2_mixer.h"
#include "model/weight_table.h"
#include "ops/activations.h"
#include "ops/linear.h"
#include "ops/rms_norm.h"
#include "ops/scratch.h"

namespace mambacpp {

namespace {

// The gated MLP after a mixer when d_intermediate > 0: with F = d_intermediate rounded
// up to a multiple of 128, [a | g] = fc1(u) [L, 2F] and out = fc2(a ⊙ silu(g)). Neither
// layer has a bias.
struct GatedMlp {
  int64_t hidden = 0;  // F
  Matrix fc1;          // [2F, d_model]
  Matrix fc2;          // [d_model, F]

  void forward(const float* u, int64_t L, float* out, ThreadPool& pool) const {
    ScratchFrame scratch;
    float* up_gate = scratch.take<float>(L * 2 * hidden);
    linear(u, L, fc1, nullptr, up_gate, pool);
    float* gated = scratch.take<float>(L * hidden);
    for (int64_t t = 0; t < L; ++t) {
      const float* row = up_gate + t * 2 * hidden;
      for (int64_t f = 0; f < hidden; ++f) gated[t * hidden + f] = row[f] * silu(row[hidden + f]);
    }
    linear(gated, L, fc2, nullptr, out, pool);
  }
};

// One residual block as the reference's Block computes it: h = mixer(norm(r)), and with
// an MLP, r += h then h = mlp(norm2(r)).
struct Block {
  std::vector<float> norm_weight;  // [d_model]
  std::unique_ptr<Mixer> mixer;
  std::vector<float> norm2_weight;  // [d_model] when there is an MLP
  std::unique_ptr<GatedMlp> mlp;    // null when d_intermediate = 0
};

// The default block length of the Mamba-2 chunked prefill. Its cost per token has a part
// that grows with the block length (the masked products inside a block) and a part that
// does not (the state passed between blocks). On the mamba2-130m shape, the scan with
// blocks of 32 or 64 tokens took about half the CPU time of blocks of 256 (OpenBLAS
// 0.3.21, one thread of an AMD EPYC with AVX-512).
constexpr int64_t kDefaultSsdBlock = 64;

// The maximum number of sequences forward_batch() steps in one pass over the weights.
// linear() keeps up to this many rows on its batch-independent matrix-vector kernels.
constexpr int64_t kMaxBatchRows = 16;

std::string layer_prefix(int64_t layer) { return "backbone.layers." + std::to_string(layer) + "."; }

void embed_row(const Matrix& embedding, int32_t id, float* out) {
  const int64_t d = embedding.cols;
  switch (embedding.dtype) {
    case DType::F32:
      std::memcpy(out, static_cast<const float*>(embedding.data) + id * d, d * sizeof(float));
      break;
    case DType::BF16: {
      const auto* row = static_cast<const uint16_t*>(embedding.data) + id * d;
      for (int64_t i = 0; i < d; ++i) out[i] = bf16_to_f32(row[i]);
      break;
    }
    case DType::F16: {
      const auto* row = static_cast<const uint16_t*>(embedding.data) + id * d;
      for (int64_t i = 0; i < d; ++i) out[i] = f16_to_f32(row[i]);
      break;
    }
    default: MAMBACPP_CHECK(false && "embedding dtype must be F32, F16 or BF16");
  }
}

// FNV-1a, 64 bits: enough to tell models apart, not a defence against forgery.
void fnv1a(uint64_t& hash, const void* data, size_t n) {
  const auto* bytes = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) hash = (hash ^ bytes[i]) * 0x100000001b3ull;
}

// Hashes the shapes that fix the state layout, and for every tensor its name, dtype,
// shape and up to 4 KiB from its start, middle and end. Two checkpoints of one shape (a
// model and its fine-tune) then differ without reading gigabytes.
std::string checkpoint_fingerprint(const ModelConfig& c, const CheckpointFiles& files) {
  uint64_t hash = 0xcbf29ce484222325ull;
  for (int64_t v : {c.d_model, c.n_layer, c.padded_vocab_size, c.d_state, c.d_conv, c.d_inner,
                    c.dt_rank, c.headdim, c.ngroups, c.d_ssm, static_cast<int64_t>(c.mixer)})
    fnv1a(hash, &v, sizeof v);

  std::vector<const TensorEntry*> tensors = files.all();
  std::sort(tensors.begin(), tensors.end(),
            [](const TensorEntry* a, const TensorEntry* b) { return a->name < b->name; });
  for (const TensorEntry* t : tensors) {
    fnv1a(hash, t->name.data(), t->name.size());
    fnv1a(hash, dtype_name(t->dtype), 4);
    for (int64_t d : t->shape) fnv1a(hash, &d, sizeof d);
    size_t sample = std::min<size_t>(t->n_bytes, 4096);
    fnv1a(hash, t->data, sample);
    fnv1a(hash, t->data + (t->n_bytes - sample) / 2, sample);
    fnv1a(hash, t->data + t->n_bytes - sample, sample);
  }

  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(hash));
  return hex;
}

}  // namespace

struct Model::Impl {
  ModelConfig config;
  WeightStorage storage;
  std::shared_ptr<CheckpointFiles> files;  // keeps the mappings the matrices point into

  Matrix embedding;                // [padded_vocab, d_model]
  std::vector<Block> blocks;
  std::vector<float> norm_f;       // [d_model]
  Matrix lm_head;                  // [padded_vocab, d_model]; the embedding when tied
  int64_t ssd_block = 0;           // tokens per block of the Mamba-2 chunked prefill
  std::string fingerprint;

  void build_blocks();
  WeightTable weight_table();
  // Runs every block over rows of the residual stream. mix(layer, block, normed, hidden)
  // computes h = mixer(norm(r)) for one block; the caller decides which states the rows
  // continue. A template, so the call allocates nothing for the callable.
  template <typename MixerCall>
  void run_layers(float* residual, int64_t rows, const MixerCall& mix, ThreadPool& pool,
                  const ActivationObserver& observer) const;
  void check_ids(std::span<const int32_t> ids) const;
  // logits [rows, padded_vocab] = lm_head(norm_f(r)) for rows of the residual stream.
  void compute_logits(const float* residual, int64_t rows, float* logits, ThreadPool& pool,
                      const ActivationObserver& observer) const;
};

void Model::Impl::build_blocks() {
  for (int64_t i = 0; i < config.n_layer; ++i) {
    Block block;
    if (config.is_attention_layer(i)) {
      block.mixer = std::make_unique<AttentionMixer>(config);
    } else if (config.mixer == MixerKind::Mamba2) {
      block.mixer = std::make_unique<Mamba2Mixer>(config, ssd_block);
    } else {
      block.mixer = std::make_unique<Mamba1Mixer>(config);
    }
    if (config.d_intermediate > 0) {
      block.mlp = std::make_unique<GatedMlp>();
      block.mlp->hidden = (config.d_intermediate + 127) / 128 * 128;
    }
    blocks.push_back(std::move(block));
  }
}

WeightTable Model::Impl::weight_table() {
  const int64_t V = config.padded_vocab_size, d = config.d_model;
  WeightTable table;
  table.add_matrix("backbone.embedding.weight", {V, d}, &embedding, {"backbone.embeddings.weight"});
  for (int64_t i = 0; i < config.n_layer; ++i) {
    std::string prefix = layer_prefix(i);
    table.add_values(prefix + "norm.weight", {d}, &blocks[i].norm_weight);
    blocks[i].mixer->add_weights(table, prefix + "mixer.");
    if (GatedMlp* mlp = blocks[i].mlp.get()) {
      table.add_values(prefix + "norm2.weight", {d}, &blocks[i].norm2_weight);
      table.add_matrix(prefix + "mlp.fc1.weight", {2 * mlp->hidden, d}, &mlp->fc1);
      table.add_matrix(prefix + "mlp.fc2.weight", {d, mlp->hidden}, &mlp->fc2);
    }
  }
  table.add_values("backbone.norm_f.weight", {d}, &norm_f);
  if (config.tie_embeddings) {
    table.allow_unused("lm_head.weight", {V, d});
  } else {
    table.add_matrix("lm_head.weight", {V, d}, &lm_head);
  }
  return table;
}

Model::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Model::~Model() = default;

std::shared_ptr<const Model> Model::load(const std::string& dir, const LoadOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->config = load_model_config(dir);
  impl->ssd_block = options.chunk_size > 0
                        ? options.chunk_size
                        : std::min<int64_t>(impl->config.chunk_size, kDefaultSsdBlock);
  impl->files = std::make_shared<CheckpointFiles>(CheckpointFiles::open(dir));

  if (impl->config.bias_from_checkpoint)
    impl->config.bias = impl->files->find("backbone.layers.0.mixer.in_proj.bias") != nullptr;

  // Every layer has at least two tensors (its norm and a mixer weight). Reject a config
  // that calls for more layers than that before allocating them.
  const int64_t n_tensors = static_cast<int64_t>(impl->files->all().size());
  if (impl->config.n_layer > n_tensors)
    throw Error(dir + "/config.json: n_layer is " + std::to_string(impl->config.n_layer) +
                " but " + impl->files->description() + " holds only " + std::to_string(n_tensors) +
                " tensors");

  impl->build_blocks();
  impl->weight_table().bind(*impl->files, options, impl->storage);
  if (impl->config.tie_embeddings) impl->lm_head = impl->embedding;
  for (auto& block : impl->blocks) block.mixer->finish_loading();

  impl->fingerprint = checkpoint_fingerprint(impl->config, *impl->files);
  return std::shared_ptr<const Model>(new Model(std::move(impl)));
}

const ModelConfig& Model::config() const { return impl_->config; }

const std::string& Model::fingerprint() const { return impl_->fingerprint; }

int64_t Model::weight_bytes() const {
  int64_t total = impl_->embedding.bytes() + static_cast<int64_t>(impl_->norm_f.size()) * 4;
  if (!impl_->config.tie_embeddings) total += impl_->lm_head.bytes();
  for (const auto& block : impl_->blocks) {
    total += block.mixer->weight_bytes() + static_cast<int64_t>(block.norm_weight.size()) * 4;
    if (block.mlp)
      total += block.mlp->fc1.bytes() + block.mlp->fc2.bytes() +
               static_cast<int64_t>(block.norm2_weight.size()) * 4;
  }
  return total;
}

std::string Model::matrix_dtype_name() const {
  DType d = impl_->embedding.dtype;
  if (impl_->lm_head.dtype != d) return "mixed";
  return dtype_name(d);
}

State Model::new_state() const {
  State state;
  state.layers.resize(impl_->blocks.size());
  for (size_t i = 0; i < impl_->blocks.size(); ++i) impl_->blocks[i].mixer->init_state(state.layers[i]);
  return state;
}

template <typename MixerCall>
void Model::Impl::run_layers(float* residual, int64_t L, const MixerCall& mix, ThreadPool& pool,
                             const ActivationObserver& observer) const {
  const int64_t d = config.d_model;
  const float eps = static_cast<float>(config.norm_eps);
  ScratchFrame scratch;
  float* normed = scratch.take<float>(L * d);
  float* hidden = scratch.take<float>(L * d);

  for (size_t i = 0; i < blocks.size(); ++i) {
    const Block& block = blocks[i];

    // h = mixer(norm(r))
    rms_norm(residual, L, d, block.norm_weight.data(), eps, normed);
    mix(i, block, normed, hidden);
    if (observer) observer("mixer_out." + std::to_string(i), hidden, L, d);

    // r = r + h
    for (int64_t k = 0; k < L * d; ++k) residual[k] += hidden[k];

    // h = mlp(norm2(r)); r = r + h
    if (block.mlp) {
      rms_norm(residual, L, d, block.norm2_weight.data(), eps, normed);
      block.mlp->forward(normed, L, hidden, pool);
      for (int64_t k = 0; k < L * d; ++k) residual[k] += hidden[k];
    }
    if (observer) observer("layer_out." + std::to_string(i), residual, L, d);
  }
}

void Model::Impl::check_ids(std::span<const int32_t> ids) const {
  for (int32_t id : ids)
    if (id < 0 || id >= config.padded_vocab_size)
      throw Error("token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                  std::to_string(config.padded_vocab_size) + ")");
}

void Model::Impl::compute_logits(const float* residual, int64_t rows, float* logits,
                                 ThreadPool& pool, const ActivationObserver& observer) const {
  const int64_t d = config.d_model;
  ScratchFrame scratch;
  float* normed = scratch.take<float>(rows * d);
  rms_norm(residual, rows, d, norm_f.data(), static_cast<float>(config.norm_eps), normed);
  if (observer) observer("final_norm", normed, rows, d);
  linear(normed, rows, lm_head, nullptr, logits, pool);
}

void Model::forward(std::span<const int32_t> ids, State& state, LogitsFor which, float* logits,
                    ThreadPool& pool, const ActivationObserver& observer) const {
  const Impl& m = *impl_;
  const int64_t L = static_cast<int64_t>(ids.size()), d = m.config.d_model;
  if (L == 0) return;
  MAMBACPP_CHECK(state.layers.size() == m.blocks.size());
  m.check_ids(ids);

  // r = embedding[ids] [L, d_model]: the residual stream
  ScratchFrame scratch;
  float* residual = scratch.take<float>(L * d);
  for (int64_t t = 0; t < L; ++t) embed_row(m.embedding, ids[t], residual + t * d);
  if (observer) observer("embedding", residual, L, d);

  m.run_layers(residual, L,
               [&](size_t i, const Block& block, const float* normed, float* hidden) {
                 block.mixer->forward(normed, L, state.layers[i], state.n_tokens, hidden, pool);
               },
               pool, observer);
  state.n_tokens += L;

  if (which == LogitsFor::None) return;
  int64_t first = which == LogitsFor::All ? 0 : L - 1;
  m.compute_logits(residual + first * d, L - first, logits, pool, observer);
}

void Model::forward_batch(std::span<const int32_t> ids, std::span<State* const> states,
                          float* logits, ThreadPool& pool) const {
  const Impl& m = *impl_;
  const int64_t B = static_cast<int64_t>(ids.size()), d = m.config.d_model;
  MAMBACPP_CHECK(states.size() == ids.size());
  if (B == 0) return;
  m.check_ids(ids);

  // Larger batches go through in groups, so every row stays on the matrix-vector path
  // whose results do not depend on the batch.
  if (B > kMaxBatchRows) {
    const int64_t V = m.config.padded_vocab_size;
    for (int64_t first = 0; first < B; first += kMaxBatchRows) {
      int64_t count = std::min(kMaxBatchRows, B - first);
      forward_batch(ids.subspan(first, count), states.subspan(first, count), logits + first * V, pool);
    }
    return;
  }

  // r = embedding[ids] [B, d_model]: row b is the next token of sequence b
  ScratchFrame scratch;
  float* residual = scratch.take<float>(B * d);
  for (int64_t b = 0; b < B; ++b) embed_row(m.embedding, ids[b], residual + b * d);

  LayerState** layer_states = scratch.take<LayerState*>(B);
  int64_t* positions = scratch.take<int64_t>(B);
  for (int64_t b = 0; b < B; ++b) positions[b] = states[b]->n_tokens;
  const size_t n = static_cast<size_t>(B);
  m.run_layers(residual, B,
               [&](size_t i, const Block& block, const float* normed, float* hidden) {
                 for (int64_t b = 0; b < B; ++b) layer_states[b] = &states[b]->layers[i];
                 block.mixer->forward_batch(normed, {layer_states, n}, {positions, n}, d, hidden,
                                            pool);
               },
               pool, nullptr);
  for (State* state : states) state->n_tokens += 1;

  m.compute_logits(residual, B, logits, pool, nullptr);
}

}  // namespace mambacpp
