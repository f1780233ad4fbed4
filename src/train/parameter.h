#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mambacpp::train {

// One trainable tensor with its gradient, both row-major f32 of the same shape.
// Backward passes add into `grad`; the trainer zeroes it before each step.
struct Parameter {
  std::string name;  // state-spaces checkpoint name, e.g. "backbone.layers.0.mixer.A_log"
  std::vector<int64_t> shape;
  std::vector<float> value;
  std::vector<float> grad;
  // AdamW's decoupled weight decay applies only where this is true. The reference turns
  // it off for A_log, D, dt_bias, norm weights and biases.
  bool weight_decay = true;

  int64_t numel() const { return static_cast<int64_t>(value.size()); }
};

// The values or gradient of an optional parameter (a bias), or null when it is absent.
inline const float* values_or_null(const Parameter* p) { return p != nullptr ? p->value.data() : nullptr; }
inline float* grad_or_null(Parameter* p) { return p != nullptr ? p->grad.data() : nullptr; }

}  // namespace mambacpp::train
