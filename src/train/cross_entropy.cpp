// The LM head and cross-entropy, forward and backward: dh is overwritten, dW accumulates.
#include "train/cross_entropy.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "train/linear_grad.h"

namespace mambacpp::train {

namespace {

constexpr int64_t kBlockRows = 256;

// Turns one row of logits into its loss and, when `scale` is not zero, into the
// gradient scale · (softmax − onehot(target)) in place.
double row_loss(float* logits, int64_t V, int32_t target, float scale, bool want_grad) {
  float max_logit = *std::max_element(logits, logits + V);
  double sum = 0.0;
  for (int64_t v = 0; v < V; ++v) sum += std::exp(static_cast<double>(logits[v] - max_logit));
  const double log_sum = std::log(sum) + max_logit;
  const double loss = log_sum - logits[target];

  if (want_grad) {
    for (int64_t v = 0; v < V; ++v) {
      logits[v] = static_cast<float>(std::exp(logits[v] - log_sum)) * scale;
    }
    logits[target] -= scale;
  }
  return loss;
}

}  // namespace

double lm_head_cross_entropy(const float* h, int64_t M, int64_t D, const float* W, int64_t V,
                             const int32_t* targets, float scale, float* dh, float* dW,
                             ThreadPool& pool) {
  const bool want_grad = dh != nullptr;
  std::vector<float> logits(static_cast<size_t>(std::min(M, kBlockRows) * V));
  std::vector<double> row_losses(static_cast<size_t>(kBlockRows));
  double total = 0.0;

  for (int64_t m0 = 0; m0 < M; m0 += kBlockRows) {
    const int64_t rows = std::min(kBlockRows, M - m0);
    linear_forward(h + m0 * D, D, rows, D, W, nullptr, V, logits.data(), pool);

    pool.parallel_for(rows, 1, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        float* row = logits.data() + r * V;
        const int32_t target = targets[m0 + r];
        if (target < 0) {
          row_losses[r] = 0.0;
          std::fill(row, row + V, 0.0f);
          continue;
        }
        row_losses[r] = row_loss(row, V, target, scale, want_grad);
      }
    });
    for (int64_t r = 0; r < rows; ++r) total += row_losses[r];

    if (want_grad) {
      linear_backward(h + m0 * D, D, logits.data(), rows, D, W, V, dh + m0 * D, D, dW, nullptr,
                      pool);
    }
  }
  return total;
}

}  // namespace mambacpp::train
