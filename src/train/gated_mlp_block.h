#pragma once

#include <cstdint>
#include <vector>

#include "mambacpp/thread_pool.h"
#include "train/parameter.h"

namespace mambacpp::train {

// The gated MLP after a mixer: [a | g] = fc1 · u, out = fc2 · (a ⊙ silu(g)), with
// F hidden units, fc1 [2F, D] and fc2 [D, F], no biases.
struct GatedMlpParams {
  Parameter* fc1_weight;
  Parameter* fc2_weight;
};

struct GatedMlpActivations {
  std::vector<float> ag;      // [M, 2F]: fc1 output, value then gate
  std::vector<float> hidden;  // [M, F]: a ⊙ silu(g)
};

void gated_mlp_forward(const GatedMlpParams& p, const float* u, int64_t M, int64_t d_model,
                       int64_t hidden_size, float* out, GatedMlpActivations& act, ThreadPool& pool);

// Overwrites du [M, D]; adds the fc1 and fc2 weight gradients.
void gated_mlp_backward(const GatedMlpParams& p, const float* u, int64_t M, int64_t d_model,
                        int64_t hidden_size, const GatedMlpActivations& act, const float* dout,
                        float* du, ThreadPool& pool);

}  // namespace mambacpp::train
