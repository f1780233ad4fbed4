#include "mambacpp/sampler.h"

#include <algorithm>
#include <cmath>

namespace mambacpp {

Sampler::Sampler(const SamplerParams& params, int64_t vocab_limit)
    : params_(params), vocab_limit_(vocab_limit), rng_(params.seed) {
  work_.resize(static_cast<size_t>(vocab_limit));
}

void Sampler::accept(int32_t id) {
  if (params_.repeat_last_n <= 0) return;
  recent_.push_back(id);
  while (static_cast<int32_t>(recent_.size()) > params_.repeat_last_n) recent_.pop_front();
}

int32_t Sampler::sample(std::span<const float> logits) {
  std::copy(logits.begin(), logits.begin() + vocab_limit_, work_.begin());

  // Repeat penalty, once per distinct recent token, as llama.cpp and HF apply it.
  if (params_.repeat_penalty != 1.0f) {
    std::vector<int32_t> distinct(recent_.begin(), recent_.end());
    std::sort(distinct.begin(), distinct.end());
    distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
    for (int32_t id : distinct) {
      if (id < 0 || id >= vocab_limit_) continue;
      float& v = work_[id];
      v = v > 0 ? v / params_.repeat_penalty : v * params_.repeat_penalty;
    }
  }

  if (params_.temperature <= 0.0f)
    return static_cast<int32_t>(std::max_element(work_.begin(), work_.end()) - work_.begin());

  // Candidates sorted by logit, cut to top_k.
  candidates_.clear();
  for (int64_t i = 0; i < vocab_limit_; ++i)
    candidates_.emplace_back(work_[i] / params_.temperature, static_cast<int32_t>(i));
  size_t keep = candidates_.size();
  if (params_.top_k > 0) keep = std::min(keep, static_cast<size_t>(params_.top_k));
  std::partial_sort(candidates_.begin(), candidates_.begin() + keep, candidates_.end(),
                    [](const auto& a, const auto& b) { return a.first > b.first; });
  candidates_.resize(keep);

  // Softmax over the candidates; probabilities replace the logits in place.
  float max_logit = candidates_.front().first;
  double total = 0.0;
  for (auto& c : candidates_) {
    c.first = std::exp(c.first - max_logit);
    total += c.first;
  }
  for (auto& c : candidates_) c.first = static_cast<float>(c.first / total);

  // min_p: drop tokens less likely than min_p times the most likely one.
  if (params_.min_p > 0.0f) {
    float floor = params_.min_p * candidates_.front().first;
    size_t n = 1;
    while (n < candidates_.size() && candidates_[n].first >= floor) ++n;
    candidates_.resize(n);
  }

  // top_p: the smallest prefix whose probability reaches top_p.
  if (params_.top_p < 1.0f) {
    double cumulative = 0.0;
    size_t n = 0;
    while (n < candidates_.size()) {
      cumulative += candidates_[n].first;
      ++n;
      if (cumulative >= params_.top_p) break;
    }
    candidates_.resize(n);
  }

  double mass = 0.0;
  for (const auto& c : candidates_) mass += c.first;
  double u = static_cast<double>(rng_() >> 11) * 0x1.0p-53 * mass;
  for (const auto& c : candidates_) {
    u -= c.first;
    if (u < 0.0) return c.second;
  }
  return candidates_.back().second;
}

}  // namespace mambacpp
