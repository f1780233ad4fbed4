#pragma once

#include <random>
#include <vector>

#include "mambacpp/config.h"
#include "train/parameter_specs.h"

namespace mambacpp::train {

// Fills `values` (numel of spec.shape) by the spec's rule, the reference initialization,
// drawing from `rng`.
void initialize_values(const ParameterSpec& spec, const ModelConfig& config, std::mt19937_64& rng,
                       std::vector<float>& values);

}  // namespace mambacpp::train
