#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "mambacpp/config.h"
#include "mambacpp/thread_pool.h"
#include "train/parameter.h"

namespace mambacpp::train {

// A Mamba-1 or Mamba-2 language model held in f32 for training: the same math as
// Model, plus the activations its backward pass needs.
class LanguageModel {
 public:
  // A new model with the reference initialization, drawn from `seed`.
  static LanguageModel initialize(const ModelConfig& config, uint64_t seed);
  // The weights of a checkpoint directory (either layout, any dtype), widened to f32.
  static LanguageModel load(const std::string& dir);

  LanguageModel(LanguageModel&&) noexcept;
  LanguageModel& operator=(LanguageModel&&) noexcept;
  ~LanguageModel();

  // Mean next-token cross-entropy over the padded vocabulary of ids [batch, seq_len]:
  // the mean over b and t < seq_len - 1 of -log softmax(logits[b, t])[ids[b, t + 1]].
  // With `backward`, adds d(loss)/d(parameter) into each Parameter::grad.
  double loss(const int32_t* ids, int64_t batch, int64_t seq_len, bool backward,
              ThreadPool& pool);

  // Writes config.json (state-spaces schema) and model.safetensors (state-spaces names,
  // f32) into `dir`, which must exist.
  void save(const std::string& dir) const;

  std::vector<Parameter>& parameters();
  const std::vector<Parameter>& parameters() const;
  const ModelConfig& config() const;
  void zero_grad();

 private:
  struct Impl;
  explicit LanguageModel(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mambacpp::train
