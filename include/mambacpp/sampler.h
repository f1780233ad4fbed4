#pragma once

#include <cstdint>
#include <deque>
#include <random>
#include <span>
#include <vector>

namespace mambacpp {

struct SamplerParams {
  float temperature = 0.8f;     // 0: greedy (argmax)
  int32_t top_k = 40;           // 0: off
  float top_p = 0.95f;          // 1: off
  float min_p = 0.05f;          // 0: off; drops tokens below min_p * p(most likely token)
  float repeat_penalty = 1.0f;  // 1: off; divides positive (multiplies negative) logits
  int32_t repeat_last_n = 64;   // tokens the repeat penalty looks back over
  uint64_t seed = 0;
};

// Picks the next token from a row of logits. Only ids below `vocab_limit` are ever chosen,
// so the padding rows of a padded vocabulary (and ids a tokenizer lacks) never come out.
// Deterministic for a given seed and sequence of logits.
class Sampler {
 public:
  Sampler(const SamplerParams& params, int64_t vocab_limit);

  // Returns the chosen id; `logits` has at least vocab_limit entries.
  int32_t sample(std::span<const float> logits);
  // Records a token (prompt or generated) for the repeat penalty.
  void accept(int32_t id);

 private:
  SamplerParams params_;
  int64_t vocab_limit_;
  std::mt19937_64 rng_;
  std::deque<int32_t> recent_;
  std::vector<float> work_;  // [vocab_limit] penalized logits
  std::vector<std::pair<float, int32_t>> candidates_;
};

}  // namespace mambacpp
