#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "train/adamw.h"
#include "train/parameter.h"
#include "train/train_options.h"

namespace mambacpp::train {

// Files of the train state, written into the checkpoint directory beside the model's
// config.json and model.safetensors.
inline constexpr const char* kTrainStateFile = "train_state.json";
inline constexpr const char* kOptimizerStateFile = "optimizer.safetensors";

// The position of a run. The training windows of update s depend only on the seed and s, so
// `step` is the whole data position.
struct TrainProgress {
  int64_t step = 0;                 // updates done
  int64_t data_tokens = 0;          // tokens of the concatenated training text
  uint64_t data_fingerprint = 0;    // FNV-1a hash of those tokens, to detect other data
  uint64_t weights_fingerprint = 0; // FNV-1a hash of the parameter values saved beside it
  std::vector<std::string> data_files;
};

// FNV-1a (64-bit) over the bytes of `tokens`.
uint64_t fingerprint_tokens(const std::vector<int32_t>& tokens);
// FNV-1a (64-bit) over the bytes of every parameter's values, in order.
uint64_t fingerprint_parameters(const std::vector<Parameter>& parameters);

// Writes kTrainStateFile (format version, options, progress, optimizer step count) and
// kOptimizerStateFile (tensors "exp_avg.NAME" and "exp_avg_sq.NAME" per parameter, f32)
// into `dir`, which must exist.
void save_train_state(const std::string& dir, const TrainOptions& options,
                      const TrainProgress& progress, const AdamW& optimizer,
                      const std::vector<Parameter>& parameters);

// The scalars of a saved train state.
struct SavedTrainState {
  TrainOptions options;
  TrainProgress progress;
  int64_t optimizer_steps = 0;
};

// Reads `dir`/kTrainStateFile. Throws Error naming the file and the field when it is
// missing, malformed or of another format version.
SavedTrainState read_train_state(const std::string& dir);
// The same from the file's text; `path` names it in messages.
SavedTrainState parse_train_state(const std::string& text, const std::string& path);

// Loads the moments of `dir`/kOptimizerStateFile into `optimizer` and sets its step
// count. Throws Error naming the file and the tensor when a parameter's moment is missing
// or has another shape or dtype, or when the file has a tensor no parameter matches.
void load_optimizer_state(const std::string& dir, int64_t optimizer_steps,
                          const std::vector<Parameter>& parameters, AdamW& optimizer);

}  // namespace mambacpp::train
