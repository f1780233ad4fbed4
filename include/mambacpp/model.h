#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "mambacpp/config.h"
#include "mambacpp/state.h"
#include "mambacpp/thread_pool.h"

namespace mambacpp {

enum class WeightDType { AsStored, F32, BF16, F16 };

struct LoadOptions {
  // Converts every weight matrix to this dtype at load time; the default uses each as
  // stored, from the file's memory mapping.
  WeightDType matrix_dtype = WeightDType::AsStored;
  // Tokens per block of the Mamba-2 chunked prefill. Results do not depend on it, only
  // speed and memory do. 0 takes config.json's chunk_size capped at 64.
  int64_t chunk_size = 0;
};

// The positions of a forward call that get logits.
enum class LogitsFor { None, Last, All };

// Called with named intermediate activations ("embedding", "layer_out.3", "final_norm")
// of shape [rows, cols], for comparing against reference dumps.
using ActivationObserver =
    std::function<void(const std::string& name, const float* data, int64_t rows, int64_t cols)>;

// A loaded language model: config and weights, read-only after loading, so one Model
// can serve many sequences (each with its own State) at once.
class Model {
 public:
  // Loads `dir`/config.json and the safetensors weights beside it. Throws Error naming
  // the file and tensor when anything is missing, extra, mis-shaped or malformed.
  static std::shared_ptr<const Model> load(const std::string& dir, const LoadOptions& options = {});

  ~Model();

  const ModelConfig& config() const;
  // Total bytes of all weights as used (what one decode step reads, about).
  int64_t weight_bytes() const;
  // The dtype the weight matrices are used in: "F32", "BF16", "F16" or "mixed".
  std::string matrix_dtype_name() const;
  // A hex digest that identifies this model: its config and every tensor's name, dtype,
  // shape and sampled bytes. State files record it, so a state is never loaded into
  // another model.
  const std::string& fingerprint() const;

  // A state for a new sequence (all zeros).
  State new_state() const;

  // Feeds `ids` through the model, continuing from `state` and leaving it after the last
  // id. Writes logits [rows, padded_vocab_size] for the last position or for all
  // positions to `logits` (which may be null with LogitsFor::None). Throws Error for an
  // id outside [0, padded_vocab_size).
  void forward(std::span<const int32_t> ids, State& state, LogitsFor which, float* logits,
               ThreadPool& pool, const ActivationObserver& observer = nullptr) const;

  // One decode step of B sequences at once: ids[b] is the next token of the sequence
  // whose state is *states[b]. Writes logits [B, padded_vocab_size]. The weights are read
  // once for the whole batch, and a sequence's logits are bit for bit those of forward()
  // on it alone: they never depend on the other sequences of the batch. Batches of more
  // than 16 go through in groups of 16.
  void forward_batch(std::span<const int32_t> ids, std::span<State* const> states, float* logits,
                     ThreadPool& pool) const;

  struct Impl;

 private:
  explicit Model(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mambacpp
