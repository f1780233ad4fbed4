#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

#include "ops/matrix.h"
#include "ops/selective_scan.h"
#include "ops/ssd_scan.h"

namespace mambacpp {

// Rows a prefill product's kernel takes per call: linear() splits longer inputs.
constexpr int64_t kGemmMaxTokens = 512;

// The weight rows of one product, handed out in chunks to the threads that share it, so
// a thread that runs slower than the others takes fewer chunks.
class RowChunks {
 public:
  RowChunks(int64_t row_begin, int64_t row_end, int64_t chunk_rows)
      : next_(row_begin), end_(row_end), chunk_rows_(chunk_rows) {}

  // Takes the next chunk [begin, end). Returns false once every row has been taken.
  bool take(int64_t& begin, int64_t& end);

 private:
  std::atomic<int64_t> next_;
  int64_t end_;
  int64_t chunk_rows_;
};

// The hot kernels, one set per instruction set. Every set gives the scalar set's results
// up to f32 rounding (summation order, and exp() of known accuracy), and tests hold each
// set to the scalar one.
struct CpuKernels {
  const char* isa;

  // Matrix-vector rows for a few vectors at once: for r in [row_begin, row_end) and
  // b < n_x, y[b * y_stride + r] = sum_k W[r, k] * x[b * cols + k], with W row-major
  // (row stride = cols) and all arithmetic in f32. Each row is read from memory once for
  // all vectors, and each (r, b) is summed in the same order whatever n_x is, so a
  // sequence's results never depend on which others share its batch.
  void (*gemv_f32)(const float* W, const float* x, int64_t cols, int64_t row_begin,
                   int64_t row_end, float* y, int64_t n_x, int64_t y_stride);
  void (*gemv_bf16)(const uint16_t* W, const float* x, int64_t cols, int64_t row_begin,
                    int64_t row_end, float* y, int64_t n_x, int64_t y_stride);
  void (*gemv_f16)(const uint16_t* W, const float* x, int64_t cols, int64_t row_begin,
                   int64_t row_end, float* y, int64_t n_x, int64_t y_stride);

  // Products of bf16 weights with inputs rounded to bf16 (to nearest, ties to even),
  // summed in f32: y[b * y_stride + r] = sum_k W[r, k] * bf16(x[b * cols + k]), for the
  // same ranges as gemv_bf16. Each (r, b) is summed in the same order whatever n_x is.
  // Only sets with a bf16 matrix unit have it, and it is null in the others.
  // matmul_bf16_reference() is its plain twin.
  void (*matmul_bf16)(const uint16_t* W, const float* x, int64_t cols, int64_t row_begin,
                      int64_t row_end, float* y, int64_t n_x, int64_t y_stride);

  // Matrix products for prefill sizes: for m < M <= kGemmMaxTokens and every row r of
  // the chunks it takes from `rows`, y[m * y_stride + r] = sum_k x[m * W.cols + k] * W[r, k],
  // with W in f32, bf16 or f16. Each sum is one chain of fused multiply-adds in k order
  // from zero, so every set that has it gives the bits of gemm_reference(), whatever M is
  // and however the rows are chunked. Null in the sets without one, where linear() runs
  // OpenBLAS sgemm.
  void (*gemm)(const float* x, int64_t M, const Matrix& W, RowChunks& rows, float* y,
               int64_t y_stride);

  // The Mamba-1 selective scan (see selective_scan.h) for channels [c_begin, c_end).
  void (*selective_scan_channels)(const SelectiveScanArgs& args, float* ssm_state, float* y,
                                  int64_t c_begin, int64_t c_end);

  // The Mamba-2 recurrence (see ssd_scan.h) token by token for heads [h_begin, h_end).
  void (*ssd_recurrent_heads)(const SsdScanArgs& args, float* ssm_state, float* y,
                              int64_t h_begin, int64_t h_end);

  // out[i] = the bf16 or f16 value src[i] as an f32, for i < n. Widening is exact, so
  // every set gives the same bits (NaNs stay NaN, with any payload).
  void (*widen_bf16)(const uint16_t* src, int64_t n, float* out);
  void (*widen_f16)(const uint16_t* src, int64_t n, float* out);

  // out[i] = exp(x[i]) for i < n; the fast sets are within 2e-7 relative of std::exp for
  // x in [-87, 88], and flush results below about 1e-38 to that floor.
  void (*exp_f32)(const float* x, int64_t n, float* out);

  // out[i] = softplus(x[i]) (PyTorch's, threshold 20) for i < n. The fast sets are within
  // 1e-6 relative of the scalar set's log1p(exp(x)) for x >= -87, and below 2e-38 under it.
  void (*softplus_f32)(const float* x, int64_t n, float* out);

  // out[i] = v[i] * silu(gate[i]) for i < n, or silu(gate[i]) where v is null, with
  // silu(g) = g / (1 + exp(-g)) through this set's exp_f32. out may be v or gate.
  void (*silu_f32)(const float* v, const float* gate, int64_t n, float* out);

  // Whether matmul_bf16 beats widening bf16 weights to f32 for gemm at prefill sizes
  // (AMX). Where it does not, linear() uses matmul_bf16 only for decode-sized row counts.
  bool matmul_bf16_for_prefill;
};

// The plain C++ kernels every other set is tested against.
const CpuKernels& cpu_kernels_scalar();

// The plain twin of CpuKernels::matmul_bf16, summing each row in k order.
void matmul_bf16_reference(const uint16_t* W, const float* x, int64_t cols, int64_t row_begin,
                           int64_t row_end, float* y, int64_t n_x, int64_t y_stride);

// The plain twin of CpuKernels::gemm: each sum is a std::fma chain in k order.
void gemm_reference(const float* x, int64_t M, const Matrix& W, int64_t row_begin, int64_t row_end,
                    float* y, int64_t y_stride);

// Every kernel set this CPU can run, scalar first.
std::vector<const CpuKernels*> available_cpu_kernels();

// Throws Error when MAMBACPP_ISA is set to a name that is not one of this CPU's kernel
// sets (active_cpu_kernels() would silently take the fastest set instead).
void check_isa_request();

// The fastest set this CPU runs, chosen once at first use. The environment variable
// MAMBACPP_ISA (scalar, avx2, avx512, avx512bf16, amx) picks another available one, for tests and
// comparisons.
const CpuKernels& active_cpu_kernels();

}  // namespace mambacpp
