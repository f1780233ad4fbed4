#include "ops/silu.h"

#include "ops/cpu_kernels.h"

namespace mambacpp {

void silu_in_place(float* v, int64_t n) { active_cpu_kernels().silu_f32(nullptr, v, n, v); }

void multiply_by_silu(float* row, const float* gate, int64_t n) {
  active_cpu_kernels().silu_f32(row, gate, n, row);
}

}  // namespace mambacpp
