#include "ops/gemv_kernels.h"

#include <cstdlib>
#include <cstring>

#include "ops/dtype.h"

namespace mambacpp {

#if defined(MAMBACPP_X86)
const GemvKernels& gemv_kernels_avx2();
const GemvKernels& gemv_kernels_avx512();
#endif

namespace {

template <typename Widen, typename T>
void gemv_rows_scalar(const T* W, const float* x, int64_t cols, int64_t row_begin,
                      int64_t row_end, float* y, Widen widen) {
  for (int64_t r = row_begin; r < row_end; ++r) {
    const T* row = W + r * cols;
    float sum = 0.0f;
    for (int64_t k = 0; k < cols; ++k) sum += widen(row[k]) * x[k];
    y[r] = sum;
  }
}

void gemv_f32_scalar(const float* W, const float* x, int64_t cols, int64_t row_begin,
                     int64_t row_end, float* y) {
  gemv_rows_scalar(W, x, cols, row_begin, row_end, y, [](float v) { return v; });
}

void gemv_bf16_scalar(const uint16_t* W, const float* x, int64_t cols, int64_t row_begin,
                      int64_t row_end, float* y) {
  gemv_rows_scalar(W, x, cols, row_begin, row_end, y, bf16_to_f32);
}

void gemv_f16_scalar(const uint16_t* W, const float* x, int64_t cols, int64_t row_begin,
                     int64_t row_end, float* y) {
  gemv_rows_scalar(W, x, cols, row_begin, row_end, y, f16_to_f32);
}

const GemvKernels kScalar{"scalar", gemv_f32_scalar, gemv_bf16_scalar, gemv_f16_scalar};

const GemvKernels* choose_kernels() {
  auto available = available_gemv_kernels();
  const char* forced = std::getenv("MAMBACPP_ISA");
  if (forced != nullptr && *forced != '\0') {
    for (const GemvKernels* k : available)
      if (std::strcmp(k->isa, forced) == 0) return k;
  }
  return available.back();
}

}  // namespace

const GemvKernels& gemv_kernels_scalar() { return kScalar; }

std::vector<const GemvKernels*> available_gemv_kernels() {
  std::vector<const GemvKernels*> out{&kScalar};
#if defined(MAMBACPP_X86)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
      __builtin_cpu_supports("f16c"))
    out.push_back(&gemv_kernels_avx2());
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw"))
    out.push_back(&gemv_kernels_avx512());
#endif
  return out;
}

const GemvKernels& active_gemv_kernels() {
  static const GemvKernels* chosen = choose_kernels();
  return *chosen;
}

}  // namespace mambacpp
