#pragma once

#include <vector>

#include "train/parameter.h"

namespace mambacpp::train {

// Returns the L2 norm of all gradients taken together, accumulated in double.
double global_grad_norm(const std::vector<Parameter>& parameters);

// Scales every gradient so that their global L2 norm is at most `max_norm`, as
// torch.nn.utils.clip_grad_norm_ does: by max_norm / (norm + 1e-6) when that factor is
// below 1, otherwise not at all. Returns the norm before clipping. A norm that is not
// finite is returned without scaling, so the caller can see it and skip the update.
double clip_grad_norm(std::vector<Parameter>& parameters, double max_norm);

// Multiplies every gradient by `factor`.
void scale_grads(std::vector<Parameter>& parameters, float factor);

}  // namespace mambacpp::train
