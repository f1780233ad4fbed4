#include "train/gradient_clipping.h"

#include <cmath>

namespace mambacpp::train {

double global_grad_norm(const std::vector<Parameter>& parameters) {
  double sum_of_squares = 0;
  for (const Parameter& p : parameters)
    for (float g : p.grad) sum_of_squares += static_cast<double>(g) * g;
  return std::sqrt(sum_of_squares);
}

double clip_grad_norm(std::vector<Parameter>& parameters, double max_norm) {
  const double norm = global_grad_norm(parameters);
  if (!std::isfinite(norm)) return norm;
  const double factor = max_norm / (norm + 1e-6);
  if (factor < 1.0) scale_grads(parameters, static_cast<float>(factor));
  return norm;
}

void scale_grads(std::vector<Parameter>& parameters, float factor) {
  for (Parameter& p : parameters)
    for (float& g : p.grad) g *= factor;
}

}  // namespace mambacpp::train
