#pragma once

#include <cstdint>

#include "ops/dtype.h"

namespace mambacpp {

// A read-only weight matrix in PyTorch nn.Linear layout: `rows` output features by
// `cols` input features, row-major, dtype F32, F16 or BF16. The data usually lives in
// the checkpoint's memory mapping.
struct Matrix {
  const void* data = nullptr;
  DType dtype = DType::F32;
  int64_t rows = 0;
  int64_t cols = 0;

  bool empty() const { return data == nullptr; }
  int64_t bytes() const { return rows * cols * static_cast<int64_t>(dtype_size(dtype)); }
};

}  // namespace mambacpp
