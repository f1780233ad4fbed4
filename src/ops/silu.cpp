#include "ops/silu.h"

#include <algorithm>

#include "ops/cpu_kernels.h"

namespace mambacpp {

namespace {

// Values passed to the exp kernel at a time, from a buffer on the stack.
constexpr int64_t kChunk = 256;

// out[i] = silu(v[i]) for i < n <= kChunk.
void silu_chunk(const CpuKernels& k, const float* v, int64_t n, float* out) {
  float exp_neg[kChunk] = {};  // initialized only to quiet GCC 12's -Wmaybe-uninitialized
  for (int64_t i = 0; i < n; ++i) exp_neg[i] = -v[i];
  k.exp_f32(exp_neg, n, exp_neg);
  for (int64_t i = 0; i < n; ++i) out[i] = v[i] / (1.0f + exp_neg[i]);
}

}  // namespace

void silu_in_place(float* v, int64_t n) {
  const CpuKernels& k = active_cpu_kernels();
  for (int64_t i = 0; i < n; i += kChunk) silu_chunk(k, v + i, std::min(kChunk, n - i), v + i);
}

void multiply_by_silu(float* row, const float* gate, int64_t n) {
  const CpuKernels& k = active_cpu_kernels();
  float gate_silu[kChunk];
  for (int64_t i = 0; i < n; i += kChunk) {
    const int64_t m = std::min(kChunk, n - i);
    silu_chunk(k, gate + i, m, gate_silu);
    for (int64_t j = 0; j < m; ++j) row[i + j] *= gate_silu[j];
  }
}

}  // namespace mambacpp
