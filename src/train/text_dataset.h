#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "mambacpp/tokenizer.h"

namespace mambacpp::train {

// The tokens of a training text, split into a training part and a held-out validation
// part (the last tokens). Both are served as windows of context + 1 tokens, so a model
// reading the first `context` tokens of a window predicts each next one.
class TextDataset {
 public:
  // Reads plain-text files, encodes each without special tokens and concatenates the ids
  // in the given order. Throws Error naming the file when one is missing, unreadable,
  // empty, or not valid UTF-8.
  static std::vector<int32_t> tokenize_files(const std::vector<std::string>& paths,
                                             const Tokenizer& tokenizer);

  // Holds out the last `validation_fraction` of `tokens` (rounded down) for validation.
  // Throws Error, naming `source` (the files, for messages), when the training part is
  // shorter than one window, or when validation_fraction > 0 and the validation part is.
  TextDataset(std::vector<int32_t> tokens, int64_t context, double validation_fraction,
              const std::string& source);

  int64_t context() const { return context_; }
  int64_t window() const { return context_ + 1; }
  int64_t total_tokens() const { return static_cast<int64_t>(tokens_.size()); }
  int64_t train_tokens() const { return train_end_; }
  int64_t validation_tokens() const { return total_tokens() - train_end_; }
  // Non-overlapping validation windows the held-out part contains.
  int64_t validation_windows() const { return validation_tokens() / window(); }
  const std::vector<int32_t>& tokens() const { return tokens_; }

  // Fills `out` [batch, window()] with windows that start at random positions of the
  // training part. The positions depend only on (seed, step, micro_batch), so a resumed
  // run reads the same batches as an uninterrupted one.
  void train_batch(uint64_t seed, int64_t step, int64_t micro_batch, int64_t batch,
                   int32_t* out) const;

  // Fills `out` [count, window()] with validation windows first .. first + count - 1,
  // which must exist.
  void validation_batch(int64_t first, int64_t count, int32_t* out) const;

 private:
  std::vector<int32_t> tokens_;
  int64_t context_ = 0;
  int64_t train_end_ = 0;  // tokens [0, train_end_) train, the rest validate
};

}  // namespace mambacpp::train
