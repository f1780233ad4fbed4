#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace mambacpp {

// Element types of stored tensors. Only F32, F16 and BF16 may hold model weights; the
// integer and F64 types appear in golden files and token id tensors.
enum class DType { F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL };

// Returns the safetensors name ("F32", "BF16", ...) of a dtype.
const char* dtype_name(DType dtype);
// Returns the dtype of a safetensors name, or nothing for a name this engine does not know.
std::optional<DType> dtype_from_name(std::string_view name);
size_t dtype_size(DType dtype);

// bf16 is the top half of an f32; widening is exact.
inline float bf16_to_f32(uint16_t bits) {
  uint32_t u = static_cast<uint32_t>(bits) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// Rounds to nearest even, as PyTorch does; NaN stays NaN.
inline uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

float f16_to_f32(uint16_t bits);
uint16_t f32_to_f16(float f);

}  // namespace mambacpp
