#pragma once

#include <cmath>

namespace mambacpp {

inline float sigmoid(float v) { return 1.0f / (1.0f + std::exp(-v)); }

// silu(v) = v * sigmoid(v).
inline float silu(float v) { return v / (1.0f + std::exp(-v)); }

// d silu(v) / dv = sigmoid(v) · (1 + v · (1 − sigmoid(v))).
inline float silu_derivative(float v) {
  float s = sigmoid(v);
  return s * (1.0f + v * (1.0f - s));
}

// PyTorch's softplus with beta 1 and threshold 20: above the threshold it returns v,
// as the reference's scan and decode step do.
inline float softplus(float v) { return v > 20.0f ? v : std::log1p(std::exp(v)); }

}  // namespace mambacpp
