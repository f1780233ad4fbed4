#pragma once

#include <cstdint>

namespace mambacpp {

// v[i] = silu(v[i]) = v[i] / (1 + exp(-v[i])) for i < n, with the active kernel set's
// exp (within 2e-7 relative of std::exp; the scalar set uses std::exp).
void silu_in_place(float* v, int64_t n);

// row[i] *= silu(gate[i]) for i < n, with the same exp.
void multiply_by_silu(float* row, const float* gate, int64_t n);

}  // namespace mambacpp
