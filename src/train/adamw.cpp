#include "train/adamw.h"

#include <cmath>

#include "mambacpp/error.h"

namespace mambacpp::train {

AdamW::AdamW(const std::vector<Parameter>& parameters, const AdamWOptions& options)
    : options_(options) {
  exp_avg_.reserve(parameters.size());
  exp_avg_sq_.reserve(parameters.size());
  for (const Parameter& p : parameters) {
    exp_avg_.emplace_back(p.value.size(), 0.0f);
    exp_avg_sq_.emplace_back(p.value.size(), 0.0f);
  }
}

void AdamW::step(std::vector<Parameter>& parameters, double lr, ThreadPool* pool) {
  MAMBACPP_CHECK(parameters.size() == exp_avg_.size());
  ++step_count_;

  // The scalars are computed in double and rounded once to f32 where they meet a tensor,
  // which is what PyTorch does with its Python-float hyperparameters.
  const double t = static_cast<double>(step_count_);
  const double bias_correction1 = 1.0 - std::pow(options_.beta1, t);
  const double bias_correction2 = 1.0 - std::pow(options_.beta2, t);
  const float step_size = static_cast<float>(lr / bias_correction1);
  const float bias_correction2_sqrt = static_cast<float>(std::sqrt(bias_correction2));
  const float decay_factor = static_cast<float>(1.0 - lr * options_.weight_decay);
  const float one_minus_beta1 = static_cast<float>(1.0 - options_.beta1);
  const float beta2 = static_cast<float>(options_.beta2);
  const float one_minus_beta2 = static_cast<float>(1.0 - options_.beta2);
  const float eps = static_cast<float>(options_.eps);

  for (size_t i = 0; i < parameters.size(); ++i) {
    Parameter& p = parameters[i];
    MAMBACPP_CHECK(p.value.size() == exp_avg_[i].size() && p.grad.size() == p.value.size());
    float* value = p.value.data();
    const float* grad = p.grad.data();
    float* m = exp_avg_[i].data();
    float* v = exp_avg_sq_[i].data();
    const bool decay = p.weight_decay && options_.weight_decay != 0.0;

    auto update = [&](int64_t begin, int64_t end) {
      for (int64_t j = begin; j < end; ++j) {
        if (decay) value[j] *= decay_factor;
        // exp_avg.lerp_(grad, 1 - beta1); PyTorch's lerp with a weight below 0.5 is
        // start + weight * (end - start).
        m[j] += one_minus_beta1 * (grad[j] - m[j]);
        v[j] = v[j] * beta2 + one_minus_beta2 * grad[j] * grad[j];
        const float denom = std::sqrt(v[j]) / bias_correction2_sqrt + eps;
        value[j] -= step_size * (m[j] / denom);
      }
    };
    // Below this many elements the hand-off to the pool costs more than it saves.
    constexpr int64_t kGrain = 16384;
    const int64_t n = p.numel();
    if (pool && n >= 2 * kGrain) {
      pool->parallel_for(n, kGrain, update);
    } else {
      update(0, n);
    }
  }
}

}  // namespace mambacpp::train
