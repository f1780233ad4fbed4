#include "ops/linear.h"

#include <cblas.h>

#include <algorithm>
#include <vector>

#include "mambacpp/error.h"
#include "ops/blas.h"
#include "ops/cpu_kernels.h"
#include "ops/scratch.h"

namespace mambacpp {

namespace {

// Rows of a matrix-vector product each thread takes at a time: at least 16 (whole cache
// lines of y) and at least kMinWorkPerThread multiply-adds, because handing a smaller
// range to another thread costs more than computing it.
constexpr int64_t kMinGemvGrain = 16;
constexpr int64_t kMinWorkPerThread = 32768;
// Up to this many rows of x (a decode step of a batch of sequences) run the
// matrix-vector kernels. They read each weight once for all rows and give every row the
// same result whatever the batch. More rows (prefill) run the set's gemm kernel, or
// sgemm in sets without one.
constexpr int64_t kMaxGemvVectors = 16;
// Weight rows a thread takes at a time from a gemm kernel's product: two 32-row panels.
constexpr int64_t kGemmChunkRows = 64;
// Tokens a thread takes at least when a gemm kernel's product is split by tokens.
constexpr int64_t kMinGemmTokens = 16;

// Bytes of a bf16/f16 weight widened to f32 at a time before sgemm (8 MiB per thread),
// so a thread's share of a mamba-130m in_proj or out_proj runs as one sgemm call.
// Measured on an AMD EPYC with AVX2 and OpenBLAS 0.3.21: with 256-row blocks, mamba-130m
// prefilled 512 tokens at 97-100 tokens/s, and at 210-218 with 2048-row blocks. Its f32
// weights cut into 256-row calls slowed the same way (96 against 214 tokens/s).
// NOTE: the cause of that slowdown is unknown. One such call replayed alone on the same
// data was not slow, so it comes from how the calls meet the rest of the forward pass.
constexpr int64_t kWidenBlockBytes = int64_t{8} << 20;

void add_bias(float* y, int64_t M, int64_t N, const float* bias) {
  if (bias == nullptr) return;
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) y[m * N + n] += bias[n];
}

// y[m, r] = W[r] · x[m] for rows [begin, end) and the M rows of x.
void gemv_rows(const CpuKernels& k, const Matrix& W, const float* x, int64_t M, int64_t begin,
               int64_t end, float* y) {
  const int64_t n = W.rows;
  switch (W.dtype) {
    case DType::F32: k.gemv_f32(static_cast<const float*>(W.data), x, W.cols, begin, end, y, M, n); return;
    case DType::BF16: k.gemv_bf16(static_cast<const uint16_t*>(W.data), x, W.cols, begin, end, y, M, n); return;
    case DType::F16: k.gemv_f16(static_cast<const uint16_t*>(W.data), x, W.cols, begin, end, y, M, n); return;
    default: break;
  }
  MAMBACPP_CHECK(false && "weight dtype must be F32, F16 or BF16");
}

void gemv(const float* x, int64_t M, const Matrix& W, float* y, ThreadPool& pool) {
  const CpuKernels& k = active_cpu_kernels();
  const int64_t grain = std::max(kMinGemvGrain, kMinWorkPerThread / std::max<int64_t>(1, W.cols * M));
  pool.parallel_for(W.rows, grain,
                    [&](int64_t begin, int64_t end) { gemv_rows(k, W, x, M, begin, end, y); });
}

void widen_rows(const Matrix& W, int64_t row_begin, int64_t row_end, float* out) {
  const CpuKernels& k = active_cpu_kernels();
  const auto* src = static_cast<const uint16_t*>(W.data) + row_begin * W.cols;
  const int64_t n = (row_end - row_begin) * W.cols;
  if (W.dtype == DType::BF16) {
    k.widen_bf16(src, n, out);
  } else {
    k.widen_f16(src, n, out);
  }
}

// y[:, rows r0..r1) = x · W[r0..r1)^T with one single-threaded sgemm call.
void gemm_slice(const float* x, int64_t M, const Matrix& W, int64_t r0, int64_t r1, float* y) {
  const int64_t N = W.rows, K = W.cols;
  if (W.dtype == DType::F32) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, r1 - r0, K, 1.0f, x, K,
                static_cast<const float*>(W.data) + r0 * K, K, 0.0f, y + r0, N);
    return;
  }

  const int64_t block_rows = std::max<int64_t>(16, kWidenBlockBytes / (K * sizeof(float)));
  ScratchFrame scratch;
  float* block = scratch.take<float>(std::min(block_rows, r1 - r0) * K);
  for (int64_t r = r0; r < r1; r += block_rows) {
    int64_t rows = std::min(block_rows, r1 - r);
    widen_rows(W, r, r + rows, block);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, rows, K, 1.0f, x, K, block, K,
                0.0f, y + r, N);
  }
}

// Runs a product on the set's gemm kernel, up to kGemmMaxTokens tokens per call. The
// threads take 64-row chunks of the weight as they finish the previous ones: on 2 vCPUs
// of a Xeon, static halves left one thread waiting 8-9% of a mamba2-130m prefill's
// product time for the other. A weight with too few chunks for every thread (a Mamba-1
// x_proj has 80 rows) is split by tokens instead.
void gemm_kernel(const CpuKernels& k, const float* x, int64_t M, const Matrix& W, float* y,
                 ThreadPool& pool) {
  const int64_t N = W.rows, K = W.cols, threads = pool.size();
  for (int64_t m0 = 0; m0 < M; m0 += kGemmMaxTokens) {
    const int64_t tokens = std::min(kGemmMaxTokens, M - m0);
    const float* x_block = x + m0 * K;
    float* y_block = y + m0 * N;

    if (N >= 2 * threads * kGemmChunkRows || tokens < 2 * kMinGemmTokens) {
      RowChunks chunks(0, N, kGemmChunkRows);
      pool.parallel_for(threads, 1, [&](int64_t, int64_t) { k.gemm(x_block, tokens, W, chunks, y_block, N); });
      continue;
    }

    const int64_t per_thread = std::max(kMinGemmTokens, (tokens + threads - 1) / threads);
    pool.parallel_for(tokens, per_thread, [&](int64_t t0, int64_t t1) {
      RowChunks all_rows(0, N, N);
      k.gemm(x_block + t0 * K, t1 - t0, W, all_rows, y_block + t0 * N, N);
    });
  }
}

// Splits the weight rows into one slice per thread of our pool, each a single-threaded
// sgemm. OpenBLAS's own threads stay off: they spin in sched_yield while waiting, which
// took a quarter of the CPU from our threads during a prefill.
void gemm_blas(const float* x, int64_t M, const Matrix& W, float* y, ThreadPool& pool) {
  prepare_blas();

  const int64_t per_thread = (W.rows + pool.size() - 1) / pool.size();
  const int64_t grain = std::max<int64_t>(16, (per_thread + 15) / 16 * 16);
  pool.parallel_for(W.rows, grain, [&](int64_t r0, int64_t r1) { gemm_slice(x, M, W, r0, r1, y); });
}

// Whether linear() sends this product to the set's matmul_bf16 (x rounded to bf16).
bool uses_bf16_product(const CpuKernels& k, const Matrix& W, int64_t M) {
  return W.dtype == DType::BF16 && k.matmul_bf16 != nullptr &&
         (M <= kMaxGemvVectors || k.matmul_bf16_for_prefill);
}

// bf16 weights on a set with a bf16 product: every decode batch size runs the same
// kernel, so a sequence's results never depend on its batch. Threads take whole 32-row
// blocks (the AMX kernel's two 16-row tiles).
void matmul_bf16(const CpuKernels& k, const float* x, int64_t M, const Matrix& W, float* y,
                 ThreadPool& pool) {
  const auto* w = static_cast<const uint16_t*>(W.data);
  const int64_t per_thread = (W.rows + pool.size() - 1) / pool.size();
  const int64_t min_rows = kMinWorkPerThread / std::max<int64_t>(1, W.cols * M);
  const int64_t grain = (std::max(min_rows, M > kMaxGemvVectors ? per_thread : int64_t{0}) + 31) / 32 * 32;
  pool.parallel_for(W.rows, std::max<int64_t>(32, grain), [&](int64_t begin, int64_t end) {
    k.matmul_bf16(w, x, W.cols, begin, end, y, M, W.rows);
  });
}

}  // namespace

void linear(const float* x, int64_t M, const Matrix& W, const float* bias, float* y,
            ThreadPool& pool) {
  if (M <= 0 || W.rows == 0) return;
  const CpuKernels& k = active_cpu_kernels();
  if (uses_bf16_product(k, W, M)) {
    matmul_bf16(k, x, M, W, y, pool);
  } else if (M <= kMaxGemvVectors) {
    gemv(x, M, W, y, pool);
  } else if (k.gemm != nullptr) {
    gemm_kernel(k, x, M, W, y, pool);
  } else {
    gemm_blas(x, M, W, y, pool);
  }
  add_bias(y, M, W.rows, bias);
}

void linear_reference(const float* x, int64_t M, const Matrix& W, const float* bias, float* y) {
  if (uses_bf16_product(active_cpu_kernels(), W, M)) {
    matmul_bf16_reference(static_cast<const uint16_t*>(W.data), x, W.cols, 0, W.rows, y, M, W.rows);
  } else {
    gemv_rows(cpu_kernels_scalar(), W, x, M, 0, W.rows, y);
  }
  add_bias(y, M, W.rows, bias);
}

}  // namespace mambacpp
