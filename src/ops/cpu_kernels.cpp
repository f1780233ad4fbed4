#include "ops/cpu_kernels.h"

#include <algorithm>
#include <cmath>
#if defined(MAMBACPP_X86)
#include <cpuid.h>
#endif
#include <cstdlib>
#include <cstring>
#include <string>

#include "mambacpp/error.h"
#include "ops/activations.h"
#include "ops/dtype.h"

namespace mambacpp {

#if defined(MAMBACPP_X86)
const CpuKernels& cpu_kernels_avx2();

// F16C (half-precision conversion), CPUID leaf 1, ECX bit 29. Read directly because
// clang 14's __builtin_cpu_supports does not know "f16c".
static bool cpu_has_f16c() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  return __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & (1u << 29)) != 0;
}

// AVX512_BF16, CPUID leaf 7 sub-leaf 1, EAX bit 5 (not known to GCC 12's
// __builtin_cpu_supports).
static bool cpu_has_avx512_bf16() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  return __get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx) && (eax & (1u << 5)) != 0;
}
const CpuKernels& cpu_kernels_avx512();
const CpuKernels& cpu_kernels_avx512bf16();
bool amx_usable();
const CpuKernels& cpu_kernels_amx();
#endif

namespace {

template <typename Widen, typename T>
void gemv_rows_scalar(const T* W, const float* x_all, int64_t cols, int64_t row_begin,
                      int64_t row_end, float* y, int64_t n_x, int64_t y_stride, Widen widen) {
  for (int64_t r = row_begin; r < row_end; ++r) {
    const T* row = W + r * cols;
    for (int64_t b = 0; b < n_x; ++b) {
      const float* x = x_all + b * cols;
      float sum = 0.0f;
      for (int64_t k = 0; k < cols; ++k) sum += widen(row[k]) * x[k];
      y[b * y_stride + r] = sum;
    }
  }
}

void gemv_f32_scalar(const float* W, const float* x, int64_t cols, int64_t row_begin,
                     int64_t row_end, float* y, int64_t n_x, int64_t y_stride) {
  gemv_rows_scalar(W, x, cols, row_begin, row_end, y, n_x, y_stride, [](float v) { return v; });
}

void gemv_bf16_scalar(const uint16_t* W, const float* x, int64_t cols, int64_t row_begin,
                      int64_t row_end, float* y, int64_t n_x, int64_t y_stride) {
  gemv_rows_scalar(W, x, cols, row_begin, row_end, y, n_x, y_stride, bf16_to_f32);
}

void gemv_f16_scalar(const uint16_t* W, const float* x, int64_t cols, int64_t row_begin,
                     int64_t row_end, float* y, int64_t n_x, int64_t y_stride) {
  gemv_rows_scalar(W, x, cols, row_begin, row_end, y, n_x, y_stride, f16_to_f32);
}

void selective_scan_scalar(const SelectiveScanArgs& a, float* ssm_state, float* y, int64_t c_begin,
                           int64_t c_end) {
  for (int64_t c = c_begin; c < c_end; ++c) {
    float* h = ssm_state + c * a.N;
    const float* A = a.A + c * a.N;

    for (int64_t t = 0; t < a.L; ++t) {
      float dt = softplus(a.delta[t * a.E + c] + a.delta_bias[c]);
      float x = a.x[t * a.E + c];
      const float* B = a.B + t * a.bc_stride;
      const float* C = a.C + t * a.bc_stride;

      float dt_x = dt * x;
      float out = 0.0f;
      for (int64_t n = 0; n < a.N; ++n) {
        h[n] = std::exp(dt * A[n]) * h[n] + dt_x * B[n];
        out += h[n] * C[n];
      }

      out += a.D[c] * x;
      y[t * a.E + c] = out * silu(a.z[t * a.z_stride + c]);
    }
  }
}

// Lanes of the dot product S_row · C, summed separately so the compiler can vectorize it.
constexpr int64_t kDotLanes = 8;

void ssd_recurrent_heads_scalar(const SsdScanArgs& a, float* ssm_state, float* y,
                                int64_t h_begin, int64_t h_end) {
  const int64_t P = a.P, N = a.N, HP = a.H * a.P, heads_per_group = a.H / a.G;
  const int64_t N_lanes = N / kDotLanes * kDotLanes;
  for (int64_t h = h_begin; h < h_end; ++h) {
    const int64_t g = h / heads_per_group;
    float* S = ssm_state + h * P * N;
    for (int64_t t = 0; t < a.L; ++t) {
      const float dt = a.dt[t * a.H + h];
      const float decay = std::exp(dt * a.A[h]);
      const float* B = a.B + t * a.bc_stride + g * N;
      const float* C = a.C + t * a.bc_stride + g * N;
      for (int64_t p = 0; p < P; ++p) {
        const float x = a.x[t * a.x_stride + h * P + p];
        const float dt_x = dt * x;
        float* S_row = S + p * N;
        for (int64_t n = 0; n < N; ++n) S_row[n] = S_row[n] * decay + dt_x * B[n];

        float lanes[kDotLanes] = {};
        for (int64_t n = 0; n < N_lanes; n += kDotLanes)
          for (int64_t k = 0; k < kDotLanes; ++k) lanes[k] += S_row[n + k] * C[n + k];
        float sum = 0.0f;
        for (int64_t k = 0; k < kDotLanes; ++k) sum += lanes[k];
        for (int64_t n = N_lanes; n < N; ++n) sum += S_row[n] * C[n];
        const float skip = a.D_has_hdim ? a.D[h * P + p] : a.D[h];
        y[t * HP + h * P + p] = sum + skip * x;
      }
    }
  }
}

void widen_bf16_scalar(const uint16_t* src, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = bf16_to_f32(src[i]);
}

void widen_f16_scalar(const uint16_t* src, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = f16_to_f32(src[i]);
}

void exp_scalar(const float* x, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = std::exp(x[i]);
}

void softplus_scalar(const float* x, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = softplus(x[i]);
}

void silu_scalar(const float* v, const float* gate, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    const float s = silu(gate[i]);
    out[i] = v != nullptr ? v[i] * s : s;
  }
}

const CpuKernels kScalar{"scalar",          gemv_f32_scalar,       gemv_bf16_scalar,
                         gemv_f16_scalar,   nullptr,               nullptr,
                         selective_scan_scalar,
                         ssd_recurrent_heads_scalar,               widen_bf16_scalar,
                         widen_f16_scalar,  exp_scalar,            softplus_scalar,
                         silu_scalar,       false};

// row[k] = W[r, k] as an f32.
void widen_row(const Matrix& W, int64_t r, float* row) {
  const int64_t K = W.cols;
  switch (W.dtype) {
    case DType::F32: std::copy_n(static_cast<const float*>(W.data) + r * K, K, row); return;
    case DType::BF16: widen_bf16_scalar(static_cast<const uint16_t*>(W.data) + r * K, K, row); return;
    case DType::F16: widen_f16_scalar(static_cast<const uint16_t*>(W.data) + r * K, K, row); return;
    default: break;
  }
  MAMBACPP_CHECK(false && "weight dtype must be F32, F16 or BF16");
}

const CpuKernels* choose_kernels() {
  auto available = available_cpu_kernels();
  const char* forced = std::getenv("MAMBACPP_ISA");
  if (forced != nullptr && *forced != '\0') {
    for (const CpuKernels* k : available)
      if (std::strcmp(k->isa, forced) == 0) return k;
  }
  return available.back();
}

}  // namespace

const CpuKernels& cpu_kernels_scalar() { return kScalar; }

void matmul_bf16_reference(const uint16_t* W, const float* x, int64_t cols, int64_t row_begin,
                           int64_t row_end, float* y, int64_t n_x, int64_t y_stride) {
  std::vector<float> rounded(static_cast<size_t>(cols));
  for (int64_t b = 0; b < n_x; ++b) {
    for (int64_t k = 0; k < cols; ++k) rounded[k] = bf16_to_f32(f32_to_bf16(x[b * cols + k]));
    gemv_bf16_scalar(W, rounded.data(), cols, row_begin, row_end, y + b * y_stride, 1, 0);
  }
}

bool RowChunks::take(int64_t& begin, int64_t& end) {
  begin = next_.fetch_add(chunk_rows_);
  end = std::min(end_, begin + chunk_rows_);
  return begin < end_;
}

void gemm_reference(const float* x, int64_t M, const Matrix& W, int64_t row_begin, int64_t row_end,
                    float* y, int64_t y_stride) {
  std::vector<float> row(static_cast<size_t>(W.cols));
  for (int64_t r = row_begin; r < row_end; ++r) {
    widen_row(W, r, row.data());
    for (int64_t m = 0; m < M; ++m) {
      float sum = 0.0f;
      for (int64_t k = 0; k < W.cols; ++k) sum = std::fma(x[m * W.cols + k], row[k], sum);
      y[m * y_stride + r] = sum;
    }
  }
}

std::vector<const CpuKernels*> available_cpu_kernels() {
  std::vector<const CpuKernels*> out{&kScalar};
#if defined(MAMBACPP_X86)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c())
    out.push_back(&cpu_kernels_avx2());
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw"))
    out.push_back(&cpu_kernels_avx512());
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && cpu_has_avx512_bf16())
    out.push_back(&cpu_kernels_avx512bf16());
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && amx_usable())
    out.push_back(&cpu_kernels_amx());
#endif
  return out;
}

void check_isa_request() {
  const char* requested = std::getenv("MAMBACPP_ISA");
  if (requested == nullptr || *requested == '\0') return;
  std::string names;
  for (const CpuKernels* k : available_cpu_kernels()) {
    if (std::strcmp(k->isa, requested) == 0) return;
    names += (names.empty() ? "" : ", ") + std::string(k->isa);
  }
  throw Error("MAMBACPP_ISA=" + std::string(requested) +
              " is not a kernel set this CPU runs; set it to one of " + names + ", or unset it");
}

const CpuKernels& active_cpu_kernels() {
  static const CpuKernels* chosen = choose_kernels();
  return *chosen;
}

}  // namespace mambacpp
