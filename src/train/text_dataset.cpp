#include "train/text_dataset.h"

#include <cstring>
#include <fstream>
#include <iterator>
#include <random>

#include "mambacpp/error.h"

namespace mambacpp::train {

namespace {

std::string read_training_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("training text '" + path + "' not found or not readable");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw Error("failed to read training text '" + path + "'");
  if (text.empty()) throw Error("training text '" + path + "' is empty");
  return text;
}

// SplitMix64's finalizer: mixes the seed, step and micro-batch index into one RNG seed so
// that nearby steps get unrelated streams.
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

std::vector<int32_t> TextDataset::tokenize_files(const std::vector<std::string>& paths,
                                                 const Tokenizer& tokenizer) {
  std::vector<int32_t> tokens;
  for (const std::string& path : paths) {
    const std::string text = read_training_file(path);
    std::vector<int32_t> ids;
    try {
      ids = tokenizer.encode(text, /*add_special_tokens=*/false);
    } catch (const Error& e) {
      throw Error("training text '" + path + "': " + e.what());
    }
    if (ids.empty()) throw Error("training text '" + path + "' encodes to no tokens");
    tokens.insert(tokens.end(), ids.begin(), ids.end());
  }
  return tokens;
}

TextDataset::TextDataset(std::vector<int32_t> tokens, int64_t context, double validation_fraction,
                         const std::string& source)
    : tokens_(std::move(tokens)), context_(context) {
  if (context < 1) throw Error("the context length must be at least 1, got " + std::to_string(context));
  if (!(validation_fraction >= 0.0 && validation_fraction < 1.0))
    throw Error("the validation fraction must be in [0, 1), got " + std::to_string(validation_fraction));

  const int64_t n = total_tokens();
  const int64_t held_out = static_cast<int64_t>(static_cast<double>(n) * validation_fraction);
  train_end_ = n - held_out;

  const std::string sizes = "ctx + 1 = " + std::to_string(window()) + " tokens";
  if (train_end_ < window())
    throw Error(source + ": the training part has " + std::to_string(train_end_) + " of " +
                std::to_string(n) + " tokens, fewer than one window (" + sizes +
                "), so give more text or a smaller --ctx");
  if (validation_fraction > 0.0 && held_out < window())
    throw Error(source + ": the validation part has " + std::to_string(held_out) + " of " +
                std::to_string(n) + " tokens, fewer than one window (" + sizes +
                "), so give more text, a smaller --ctx, a larger --val-fraction, or --val-fraction 0 for no validation");
}

void TextDataset::train_batch(uint64_t seed, int64_t step, int64_t micro_batch, int64_t batch,
                              int32_t* out) const {
  const uint64_t stream = mix(mix(mix(seed) ^ static_cast<uint64_t>(step)) ^ static_cast<uint64_t>(micro_batch));
  std::mt19937_64 rng(stream);
  // Start positions 0 .. train_end_ - window() inclusive. The modulo bias is below
  // 2^-40 for any text that fits in memory.
  const uint64_t starts = static_cast<uint64_t>(train_end_ - window() + 1);
  for (int64_t b = 0; b < batch; ++b) {
    const int64_t start = static_cast<int64_t>(rng() % starts);
    std::memcpy(out + b * window(), tokens_.data() + start, static_cast<size_t>(window()) * sizeof(int32_t));
  }
}

void TextDataset::validation_batch(int64_t first, int64_t count, int32_t* out) const {
  MAMBACPP_CHECK(first >= 0 && first + count <= validation_windows());
  for (int64_t i = 0; i < count; ++i) {
    const int32_t* window_start = tokens_.data() + train_end_ + (first + i) * window();
    std::memcpy(out + i * window(), window_start, static_cast<size_t>(window()) * sizeof(int32_t));
  }
}

}  // namespace mambacpp::train
