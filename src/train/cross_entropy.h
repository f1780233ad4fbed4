#pragma once

#include <cstdint>

#include "mambacpp/thread_pool.h"

namespace mambacpp::train {

// The LM head and its cross-entropy: logits [M, V] = h [M, D] · W^T with W [V, D], and
// the sum over rows with targets[m] >= 0 of −log softmax(logits[m])[targets[m]]
// (rows with a negative target are skipped). Returns that sum.
// When dh is not null, also writes d(scale · sum)/dh into dh [M, D] (overwritten) and
// adds d(scale · sum)/dW into dW [V, D]. Logits are formed for blocks of rows at a time,
// so memory stays at one block times V.
double lm_head_cross_entropy(const float* h, int64_t M, int64_t D, const float* W, int64_t V,
                             const int32_t* targets, float scale, float* dh, float* dW,
                             ThreadPool& pool);

}  // namespace mambacpp::train
