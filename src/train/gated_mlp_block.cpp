// Forward and backward of the gated MLP. du is overwritten; weight gradients accumulate.
#include "train/gated_mlp_block.h"

#include "ops/activations.h"
#include "ops/scratch.h"
#include "train/linear_grad.h"

namespace mambacpp::train {

void gated_mlp_forward(const GatedMlpParams& p, const float* u, int64_t M, int64_t d_model,
                       int64_t hidden_size, float* out, GatedMlpActivations& act, ThreadPool& pool) {
  const int64_t F = hidden_size;
  act.ag.resize(static_cast<size_t>(M * 2 * F));
  linear_forward(u, d_model, M, d_model, p.fc1_weight->value.data(), nullptr, 2 * F,
                 act.ag.data(), pool);

  act.hidden.resize(static_cast<size_t>(M * F));
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t f = 0; f < F; ++f) {
      act.hidden[m * F + f] = act.ag[m * 2 * F + f] * silu(act.ag[m * 2 * F + F + f]);
    }
  }

  linear_forward(act.hidden.data(), F, M, F, p.fc2_weight->value.data(), nullptr, d_model, out,
                 pool);
}

void gated_mlp_backward(const GatedMlpParams& p, const float* u, int64_t M, int64_t d_model,
                        int64_t hidden_size, const GatedMlpActivations& act, const float* dout,
                        float* du, ThreadPool& pool) {
  ScratchFrame scratch;
  const int64_t F = hidden_size;
  float* d_hidden = scratch.take<float>(static_cast<size_t>(M * F));
  linear_backward(act.hidden.data(), F, dout, M, F, p.fc2_weight->value.data(), d_model,
                  d_hidden, F, p.fc2_weight->grad.data(), nullptr, pool);

  float* d_ag = scratch.take<float>(static_cast<size_t>(M * 2 * F));
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t f = 0; f < F; ++f) {
      float a = act.ag[m * 2 * F + f];
      float g = act.ag[m * 2 * F + F + f];
      float dh = d_hidden[m * F + f];
      d_ag[m * 2 * F + f] = dh * silu(g);
      d_ag[m * 2 * F + F + f] = dh * a * silu_derivative(g);
    }
  }

  linear_backward(u, d_model, d_ag, M, d_model, p.fc1_weight->value.data(), 2 * F, du,
                  d_model, p.fc1_weight->grad.data(), nullptr, pool);
}

}  // namespace mambacpp::train
