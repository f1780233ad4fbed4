#pragma once

#include <cstdint>
#include <vector>

#include "mambacpp/thread_pool.h"
#include "train/parameter.h"

namespace mambacpp::train {

// Hyperparameters of AdamW other than the learning rate, which the schedule sets per step.
struct AdamWOptions {
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double weight_decay = 0.1;
};

// AdamW with the formula and operation order of torch.optim.AdamW (amsgrad and maximize
// off): the decoupled decay p -= lr * weight_decay * p first, then the bias-corrected
// update p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps). Tensors are
// f32 and scalars double, as in PyTorch. The decay applies only to parameters whose
// Parameter::weight_decay is true.
class AdamW {
 public:
  // Allocates zeroed moments shaped like `parameters`.
  AdamW(const std::vector<Parameter>& parameters, const AdamWOptions& options);

  // Applies one update to every parameter from its `grad` with learning rate `lr`.
  // `parameters` must be the list the optimizer was built for, in the same order. With a
  // pool, each parameter's elements are split over its threads. Every element gets the
  // same operations either way, so the result does not depend on the thread count.
  void step(std::vector<Parameter>& parameters, double lr, ThreadPool* pool = nullptr);

  const AdamWOptions& options() const { return options_; }
  // Updates applied so far: t in the bias corrections.
  int64_t step_count() const { return step_count_; }

  // First and second moments (PyTorch's exp_avg and exp_avg_sq), one per parameter.
  std::vector<std::vector<float>>& exp_avg() { return exp_avg_; }
  std::vector<std::vector<float>>& exp_avg_sq() { return exp_avg_sq_; }
  const std::vector<std::vector<float>>& exp_avg() const { return exp_avg_; }
  const std::vector<std::vector<float>>& exp_avg_sq() const { return exp_avg_sq_; }
  void set_step_count(int64_t count) { step_count_ = count; }

 private:
  AdamWOptions options_;
  int64_t step_count_ = 0;
  std::vector<std::vector<float>> exp_avg_;
  std::vector<std::vector<float>> exp_avg_sq_;
};

}  // namespace mambacpp::train
