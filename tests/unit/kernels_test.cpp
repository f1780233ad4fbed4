// Fast kernels against their scalar twins, on every instruction set this CPU runs, at
// every length up to past two vector widths and at misaligned starts.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "ops/cpu_kernels.h"
#include "ops/dtype.h"
#include "ops/linear.h"
#include "ops/selective_scan.h"

namespace mambacpp {
namespace {

std::vector<float> random_floats(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

// f32 sums of `cols` products of magnitude <= 1 in another order differ by at most about
// cols * 2^-24 relative to the sum of magnitudes; 1e-5 * cols bounds that with margin.
double tolerance(int64_t cols) { return 1e-6 + 1e-6 * cols; }

template <typename Fn>
void for_each_gemv_shape(Fn fn) {
  for (int64_t cols = 1; cols <= 2 * 64 + 3; ++cols)
    for (int64_t offset = 0; offset < 3; ++offset) fn(int64_t{5}, cols, offset);
}

TEST(CpuKernels, EverySetMatchesScalarF32) {
  const CpuKernels& scalar = cpu_kernels_scalar();
  for (const CpuKernels* k : available_cpu_kernels()) {
    for_each_gemv_shape([&](int64_t rows, int64_t cols, int64_t offset) {
      auto W = random_floats(rows * cols + offset, 1);
      auto x = random_floats(cols + offset, 2);
      std::vector<float> expected(rows), actual(rows);
      scalar.gemv_f32(W.data() + offset, x.data() + offset, cols, 0, rows, expected.data(), 1,
                      rows);
      k->gemv_f32(W.data() + offset, x.data() + offset, cols, 0, rows, actual.data(), 1, rows);
      for (int64_t r = 0; r < rows; ++r)
        ASSERT_NEAR(actual[r], expected[r], tolerance(cols))
            << k->isa << " cols " << cols << " offset " << offset << " row " << r;
    });
  }
}

TEST(CpuKernels, EverySetMatchesScalarBf16AndF16) {
  const CpuKernels& scalar = cpu_kernels_scalar();
  for (const CpuKernels* k : available_cpu_kernels()) {
    for_each_gemv_shape([&](int64_t rows, int64_t cols, int64_t offset) {
      auto values = random_floats(rows * cols + offset, 3);
      std::vector<uint16_t> bf16(values.size()), f16(values.size());
      for (size_t i = 0; i < values.size(); ++i) {
        bf16[i] = f32_to_bf16(values[i]);
        f16[i] = f32_to_f16(values[i]);
      }
      auto x = random_floats(cols + offset, 4);
      std::vector<float> expected(rows), actual(rows);

      scalar.gemv_bf16(bf16.data() + offset, x.data() + offset, cols, 0, rows, expected.data(), 1,
                       rows);
      k->gemv_bf16(bf16.data() + offset, x.data() + offset, cols, 0, rows, actual.data(), 1, rows);
      for (int64_t r = 0; r < rows; ++r)
        ASSERT_NEAR(actual[r], expected[r], tolerance(cols)) << k->isa << " bf16 cols " << cols;

      scalar.gemv_f16(f16.data() + offset, x.data() + offset, cols, 0, rows, expected.data(), 1,
                      rows);
      k->gemv_f16(f16.data() + offset, x.data() + offset, cols, 0, rows, actual.data(), 1, rows);
      for (int64_t r = 0; r < rows; ++r)
        ASSERT_NEAR(actual[r], expected[r], tolerance(cols)) << k->isa << " f16 cols " << cols;
    });
  }
}

// The hand-computed product of a 2x3 matrix and a vector.
// Widens every 16-bit pattern, starting one element in so the vector loop and the
// scalar tail both run, and compares the bits with the scalar set's (NaN only as NaN).
TEST(CpuKernels, EverySetWidensEveryHalfExactly) {
  std::vector<uint16_t> patterns(65537);
  for (size_t i = 0; i < patterns.size(); ++i) patterns[i] = static_cast<uint16_t>(i - 1);
  const int64_t n = static_cast<int64_t>(patterns.size()) - 1;

  const CpuKernels& scalar = cpu_kernels_scalar();
  for (bool is_bf16 : {true, false}) {
    std::vector<float> expected(n);
    (is_bf16 ? scalar.widen_bf16 : scalar.widen_f16)(patterns.data() + 1, n, expected.data());

    for (const CpuKernels* k : available_cpu_kernels()) {
      std::vector<float> actual(n);
      (is_bf16 ? k->widen_bf16 : k->widen_f16)(patterns.data() + 1, n, actual.data());
      for (int64_t i = 0; i < n; ++i) {
        if (std::isnan(expected[i])) {
          ASSERT_TRUE(std::isnan(actual[i])) << k->isa << " bits " << i;
          continue;
        }
        ASSERT_EQ(std::bit_cast<uint32_t>(actual[i]), std::bit_cast<uint32_t>(expected[i]))
            << k->isa << (is_bf16 ? " bf16" : " f16") << " bits " << i;
      }
    }
  }
}

TEST(CpuKernels, ScalarMatchesHandComputedProduct) {
  const float W[] = {1, 2, 3, -1, 0.5f, 4};
  const float x[] = {2, -1, 0.25f};
  float y[2];
  cpu_kernels_scalar().gemv_f32(W, x, 3, 0, 2, y, 1, 2);
  EXPECT_FLOAT_EQ(y[0], 1 * 2 + 2 * -1 + 3 * 0.25f);
  EXPECT_FLOAT_EQ(y[1], -1 * 2 + 0.5f * -1 + 4 * 0.25f);
}

std::vector<uint16_t> to_bf16(const std::vector<float>& values) {
  std::vector<uint16_t> out(values.size());
  for (size_t i = 0; i < values.size(); ++i) out[i] = f32_to_bf16(values[i]);
  return out;
}

// x = 1 + 1/512 is a tie between the bf16 values 1 and 1 + 1/128 and rounds to even (1),
// and 1 + 3/512 rounds up to 1 + 1/128. With W = [1, 1], y = 1 + (1 + 1/128).
TEST(MatmulBf16, ReferenceRoundsInputsToNearestEven) {
  const uint16_t W[] = {f32_to_bf16(1.0f), f32_to_bf16(1.0f)};
  const float x[] = {1.0f + 1.0f / 512, 1.0f + 3.0f / 512};
  float y = 0;
  matmul_bf16_reference(W, x, 2, 0, 1, &y, 1, 1);
  EXPECT_EQ(y, 2.0f + 1.0f / 128);
}

// Shapes around the 16-row, 32-k and 16-vector tile edges, row ranges that start inside
// the matrix, and a y row stride wider than the rows.
TEST(MatmulBf16, EverySetWithItMatchesReference) {
  for (const CpuKernels* k : available_cpu_kernels()) {
    if (k->matmul_bf16 == nullptr) continue;
    for (int64_t cols : {1, 2, 31, 32, 33, 48, 64, 77, 768})
    for (int64_t rows : {1, 15, 16, 17, 33, 80})
    for (int64_t n_x : {1, 2, 8, 16, 17, 33}) {
      const int64_t row_begin = rows > 16 ? 3 : 0, y_stride = rows + 5;
      auto W = to_bf16(random_floats(rows * cols, 31));
      auto x = random_floats(n_x * cols, 32);
      std::vector<float> expected(n_x * y_stride, -7.0f), actual(n_x * y_stride, -7.0f);
      matmul_bf16_reference(W.data(), x.data(), cols, row_begin, rows, expected.data(), n_x, y_stride);
      k->matmul_bf16(W.data(), x.data(), cols, row_begin, rows, actual.data(), n_x, y_stride);
      for (size_t i = 0; i < expected.size(); ++i)
        ASSERT_NEAR(actual[i], expected[i], tolerance(cols))
            << k->isa << " cols " << cols << " rows " << rows << " n_x " << n_x << " at " << i;
    }
  }
}

TEST(MatmulBf16, NanInputsGiveNanRows) {
  const int64_t rows = 20, cols = 40;
  auto W = to_bf16(random_floats(rows * cols, 33));
  auto x = random_floats(2 * cols, 34);
  x[cols + 5] = std::numeric_limits<float>::quiet_NaN();
  for (const CpuKernels* k : available_cpu_kernels()) {
    if (k->matmul_bf16 == nullptr) continue;
    std::vector<float> y(2 * rows);
    k->matmul_bf16(W.data(), x.data(), cols, 0, rows, y.data(), 2, rows);
    for (int64_t r = 0; r < rows; ++r) {
      EXPECT_FALSE(std::isnan(y[r])) << k->isa << " row " << r;
      EXPECT_TRUE(std::isnan(y[rows + r])) << k->isa << " row " << r;
    }
  }
}

// A weight matrix of `rows` x `cols` random values in `dtype`, with its storage.
struct TestMatrix {
  std::vector<float> f32;
  std::vector<uint16_t> half;
  Matrix W;
};

TestMatrix random_matrix(DType dtype, int64_t rows, int64_t cols, uint32_t seed) {
  TestMatrix m{random_floats(rows * cols, seed), {}, {}};
  if (dtype == DType::BF16) m.half = to_bf16(m.f32);
  if (dtype == DType::F16)
    for (float v : m.f32) m.half.push_back(f32_to_f16(v));
  const void* data = dtype == DType::F32 ? static_cast<const void*>(m.f32.data()) : m.half.data();
  m.W = Matrix{data, dtype, rows, cols};
  return m;
}

// Token counts around the 14-row tiles up to kGemmMaxTokens, weight rows around the
// 16-row halves of a 32-row panel, input lengths around the 16-wide transposes, and row
// chunks shorter than, equal to and longer than a panel. Ranges start inside the matrix,
// and y's row stride is wider than its rows.
TEST(Gemm, EverySetEqualsReferenceBits) {
  for (const CpuKernels* k : available_cpu_kernels()) {
    if (k->gemm == nullptr) continue;
    for (DType dtype : {DType::F32, DType::BF16, DType::F16})
    for (int64_t cols : {1, 15, 16, 17, 48, 100})
    for (int64_t rows : {1, 16, 17, 31, 32, 33, 70})
    for (int64_t M : {int64_t{1}, int64_t{13}, int64_t{14}, int64_t{15}, int64_t{29}, kGemmMaxTokens})
    for (int64_t chunk_rows : {7, 32, 1000}) {
      const int64_t row_begin = rows > 16 ? 3 : 0, y_stride = rows + 5;
      TestMatrix m = random_matrix(dtype, rows, cols, 41);
      auto x = random_floats(M * cols, 42);
      std::vector<float> expected(M * y_stride, -7.0f), actual(M * y_stride, -7.0f);
      gemm_reference(x.data(), M, m.W, row_begin, rows, expected.data(), y_stride);
      RowChunks chunks(row_begin, rows, chunk_rows);
      k->gemm(x.data(), M, m.W, chunks, actual.data(), y_stride);
      for (size_t i = 0; i < expected.size(); ++i)
        ASSERT_EQ(actual[i], expected[i]) << k->isa << " " << dtype_name(dtype) << " cols " << cols
                                          << " rows " << rows << " M " << M << " chunk "
                                          << chunk_rows << " at " << i;
    }
  }
}

// Chunks taken one after another cover the range once, the last one cut at its end.
TEST(RowChunks, CoverRangeInOrder) {
  RowChunks chunks(3, 10, 4);
  int64_t begin = 0, end = 0;
  ASSERT_TRUE(chunks.take(begin, end));
  EXPECT_EQ(begin, 3);
  EXPECT_EQ(end, 7);
  ASSERT_TRUE(chunks.take(begin, end));
  EXPECT_EQ(begin, 7);
  EXPECT_EQ(end, 10);
  EXPECT_FALSE(chunks.take(begin, end));
  EXPECT_FALSE(chunks.take(begin, end));
}

// y = fma(1 + 2^-12, 1 + 2^-12, fma(1, -1, 0)) = 2^-11 + 2^-24 exactly. Rounding the
// product first (to 1 + 2^-11, a tie to even), or adding in the other order, gives 2^-11.
TEST(Gemm, ReferenceIsOneFmaChainInOrder) {
  const float x[] = {1.0f, 1.0f + 0x1p-12f};
  const float w[] = {-1.0f, 1.0f + 0x1p-12f};
  const Matrix W{w, DType::F32, 1, 2};
  float y = 0;
  gemm_reference(x, 1, W, 0, 1, &y, 1);
  EXPECT_EQ(y, 0x1p-11f + 0x1p-24f);
}

TEST(Gemm, NanInputsGiveNanRows) {
  const int64_t rows = 40, cols = 20, M = 20;
  TestMatrix m = random_matrix(DType::F32, rows, cols, 43);
  auto x = random_floats(M * cols, 44);
  x[15 * cols + 7] = std::numeric_limits<float>::quiet_NaN();
  for (const CpuKernels* k : available_cpu_kernels()) {
    if (k->gemm == nullptr) continue;
    std::vector<float> y(M * rows);
    RowChunks chunks(0, rows, 32);
    k->gemm(x.data(), M, m.W, chunks, y.data(), rows);
    for (int64_t t = 0; t < M; ++t)
      for (int64_t r = 0; r < rows; ++r)
        ASSERT_EQ(std::isnan(y[t * rows + r]), t == 15) << k->isa << " token " << t << " row " << r;
  }
}

// A row's result must not depend on how many vectors share the call: batched decode
// relies on it for sequences that never influence each other.
TEST(GemvKernels, BatchedRowsEqualSingleRowsBitForBit) {
  const int64_t rows = 37, cols = 131;
  auto W = random_floats(rows * cols, 21);
  std::vector<uint16_t> W_bf16(W.size());
  for (size_t i = 0; i < W.size(); ++i) W_bf16[i] = f32_to_bf16(W[i]);
  auto x = random_floats(33 * cols, 22);

  enum class Product { kF32, kBf16, kBf16Matmul };
  for (const CpuKernels* k : available_cpu_kernels())
  for (Product product : {Product::kF32, Product::kBf16, Product::kBf16Matmul}) {
    if (product == Product::kBf16Matmul && k->matmul_bf16 == nullptr) continue;
    const char* name = " bf16 matmul";
    if (product == Product::kF32) name = " f32";
    if (product == Product::kBf16) name = " bf16";
    auto gemv = [&](const float* x_rows, int64_t n_x, float* y) {
      if (product == Product::kBf16Matmul) {
        k->matmul_bf16(W_bf16.data(), x_rows, cols, 0, rows, y, n_x, rows);
      } else if (product == Product::kBf16) {
        k->gemv_bf16(W_bf16.data(), x_rows, cols, 0, rows, y, n_x, rows);
      } else {
        k->gemv_f32(W.data(), x_rows, cols, 0, rows, y, n_x, rows);
      }
    };
    // 15 = 8 + 4 + 2 + 1 runs every tile width.
    for (int64_t n_x : {2, 5, 9, 12, 15, 16, 17, 33}) {
      std::vector<float> batched(n_x * rows);
      gemv(x.data(), n_x, batched.data());
      for (int64_t b = 0; b < n_x; ++b) {
        std::vector<float> single(rows);
        gemv(x.data() + b * cols, 1, single.data());
        for (int64_t r = 0; r < rows; ++r)
          ASSERT_EQ(batched[b * rows + r], single[r]) << k->isa << name
                                                      << " n_x " << n_x << " vector " << b
                                                      << " row " << r;
      }
    }
  }
}

TEST(Linear, BlasAndGemvPathsMatchReference) {
  struct Shape {
    int64_t N, K;
    std::vector<int64_t> row_counts;  // rows of x: up to 16 run gemv, more run sgemm
  };
  // With K = 9000, each thread widens its 500 rows of a bf16/f16 weight in three 8 MiB
  // blocks (233 rows each); with K = 77, in one.
  // N = 80 has too few row chunks for two threads, so a gemm kernel splits by tokens, and
  // 1100 tokens take three kernel calls.
  const std::vector<Shape> shapes = {{300, 77, {1, 2, 7, 16, 17, 40, 1100}},
                                     {1000, 9000, {17}},
                                     {80, 33, {17, 40, 100}}};

  ThreadPool pool(2);
  for (const Shape& shape : shapes)
  for (DType dtype : {DType::F32, DType::BF16, DType::F16}) {
    for (int64_t M : shape.row_counts) {
      const int64_t N = shape.N, K = shape.K;
      auto values = random_floats(N * K, 5);
      std::vector<float> f32 = values;
      std::vector<uint16_t> half(values.size());
      for (size_t i = 0; i < values.size(); ++i)
        half[i] = dtype == DType::BF16 ? f32_to_bf16(values[i]) : f32_to_f16(values[i]);
      Matrix W{dtype == DType::F32 ? static_cast<const void*>(f32.data()) : half.data(), dtype, N,
               K};

      auto x = random_floats(M * K, 6);
      auto bias = random_floats(N, 7);
      std::vector<float> expected(M * N), actual(M * N);
      linear_reference(x.data(), M, W, bias.data(), expected.data());
      linear(x.data(), M, W, bias.data(), actual.data(), pool);
      for (int64_t i = 0; i < M * N; ++i)
        ASSERT_NEAR(actual[i], expected[i], tolerance(K))
            << dtype_name(dtype) << " M " << M << " i " << i;
    }
  }
}

TEST(DType, HalfConversionsRoundTripExactValues) {
  for (float v : {0.0f, -0.0f, 1.0f, -2.5f, 65504.0f, 6.103515625e-05f, 5.960464477539063e-08f}) {
    EXPECT_EQ(f16_to_f32(f32_to_f16(v)), v) << v;
    EXPECT_EQ(bf16_to_f32(f32_to_bf16(v == 65504.0f ? 65536.0f : v)), v == 65504.0f ? 65536.0f : v)
        << v;
  }
  EXPECT_TRUE(std::isinf(f16_to_f32(f32_to_f16(70000.0f))));
  EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(NAN))));
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(NAN))));
  // Round to nearest even: 1 + 2^-11 lies halfway between two halves and rounds down to 1.
  EXPECT_EQ(f16_to_f32(f32_to_f16(1.0f + 0x1.0p-11f)), 1.0f);
  EXPECT_EQ(f16_to_f32(f32_to_f16(1.0f + 0x1.8p-11f)), 1.0f + 0x1.0p-10f);
}

}  // namespace
}  // namespace mambacpp

namespace mambacpp {
namespace {

// The fast exp is a degree-7 polynomial after range reduction: its error is a few f32
// roundings, well inside 4e-7 relative over the range the scan uses.
TEST(ExpKernel, EverySetIsCloseToStdExp) {
  std::vector<float> x;
  for (float v = -87.0f; v <= 88.0f; v += 0.01234f) x.push_back(v);
  for (const CpuKernels* k : available_cpu_kernels()) {
    std::vector<float> out(x.size());
    k->exp_f32(x.data(), static_cast<int64_t>(x.size()), out.data());
    for (size_t i = 0; i < x.size(); ++i) {
      double expected = std::exp(static_cast<double>(x[i]));
      ASSERT_NEAR(out[i] / expected, 1.0, 4e-7) << k->isa << " x = " << x[i];
    }
  }
}

TEST(SoftplusKernel, EverySetIsCloseToScalar) {
  std::vector<float> x;
  for (float v = -100.0f; v <= 100.0f; v += 0.037f) x.push_back(v);
  for (float v : {0.0f, -0.0f, 1e-30f, -1e-30f, 19.999998f, 20.0f, 20.000002f, 1e4f, -87.0f})
    x.push_back(v);

  std::vector<float> expected(x.size());
  cpu_kernels_scalar().softplus_f32(x.data(), static_cast<int64_t>(x.size()), expected.data());
  for (const CpuKernels* k : available_cpu_kernels()) {
    std::vector<float> out(x.size());
    k->softplus_f32(x.data(), static_cast<int64_t>(x.size()), out.data());
    for (size_t i = 0; i < x.size(); ++i) {
      if (x[i] < -87.0f) {
        ASSERT_LT(out[i], 2e-38f) << k->isa << " x = " << x[i];
        continue;
      }
      ASSERT_NEAR(out[i] / expected[i], 1.0, 1e-6) << k->isa << " x = " << x[i];
    }
  }
}

// Gates across the exp clamp at -87.3 (where the scalar set's exp overflows to inf and
// silu is -0), at lengths around the vector widths, with v null, separate and aliased.
TEST(SiluKernel, EverySetIsCloseToScalar) {
  // Moderate gates first, so the short lengths test values of every size.
  std::vector<float> gate;
  for (float g : random_floats(40, 52)) gate.push_back(8.0f * g);
  for (float g = -100.0f; g <= 40.0f; g += 0.173f) gate.push_back(g);
  for (float g : {0.0f, -0.0f, 1e-30f, -1e-30f, 87.0f, -87.0f}) gate.push_back(g);
  const auto v = random_floats(gate.size(), 51);

  for (const CpuKernels* k : available_cpu_kernels())
  for (bool gated : {false, true})
  for (int64_t n : {int64_t{0}, int64_t{1}, int64_t{7}, int64_t{8}, int64_t{15}, int64_t{16},
                    int64_t{17}, int64_t{33}, static_cast<int64_t>(gate.size())}) {
    const float* v_or_null = gated ? v.data() : nullptr;
    std::vector<float> expected(n), actual(n), in_place(gate.begin(), gate.begin() + n);
    cpu_kernels_scalar().silu_f32(v_or_null, gate.data(), n, expected.data());
    k->silu_f32(v_or_null, gate.data(), n, actual.data());
    k->silu_f32(v_or_null, in_place.data(), n, in_place.data());
    for (int64_t i = 0; i < n; ++i) {
      const double bound = 1e-6 * std::abs(expected[i]) + 1e-30;
      ASSERT_NEAR(actual[i], expected[i], bound) << k->isa << " gate " << gate[i] << " n " << n;
      ASSERT_EQ(in_place[i], actual[i]) << k->isa << " gate " << gate[i] << " n " << n;
    }
  }
}

SelectiveScanArgs random_scan(int64_t L, int64_t E, int64_t N,
                              std::vector<std::vector<float>>& keep) {
  auto add = [&](std::vector<float> v) -> const float* {
    keep.push_back(std::move(v));
    return keep.back().data();
  };
  SelectiveScanArgs a;
  a.L = L;
  a.E = E;
  a.N = N;
  a.x = add(random_floats(L * E, 11));
  a.delta = add(random_floats(L * E, 12));
  a.delta_bias = add(random_floats(E, 13));
  std::vector<float> A = random_floats(E * N, 14);
  for (auto& v : A) v = -std::exp(2.0f * v);  // A = -exp(A_log), A_log in [-2, 2]
  a.A = add(A);
  const float* bc = add(random_floats(L * 2 * N, 15));
  a.B = bc;
  a.C = bc + N;
  a.bc_stride = 2 * N;
  a.D = add(random_floats(E, 16));
  a.z = add(random_floats(L * E, 17));
  a.z_stride = E;
  return a;
}

// L = 1 is a decode step, which some sets run on a path of its own.
TEST(SelectiveScanKernel, EverySetMatchesScalar) {
  for (int64_t L : {1, 9})
  for (int64_t E : {7, 37})
  for (int64_t N : {1, 5, 8, 16, 17, 33}) {
    std::vector<std::vector<float>> keep;
    SelectiveScanArgs a = random_scan(L, E, N, keep);
    std::vector<float> h0 = random_floats(E * N, 18);

    std::vector<float> h_expected = h0, y_expected(L * E);
    cpu_kernels_scalar().selective_scan_channels(a, h_expected.data(), y_expected.data(), 0, E);
    for (const CpuKernels* k : available_cpu_kernels()) {
      std::vector<float> h = h0, y(L * E);
      k->selective_scan_channels(a, h.data(), y.data(), 0, E);
      for (int64_t i = 0; i < L * E; ++i)
        ASSERT_NEAR(y[i], y_expected[i], 1e-5 + 1e-5 * std::abs(y_expected[i]))
            << k->isa << " L " << L << " N " << N;
      for (int64_t i = 0; i < E * N; ++i)
        ASSERT_NEAR(h[i], h_expected[i], 1e-5 + 1e-5 * std::abs(h_expected[i]))
            << k->isa << " L " << L << " N " << N;

      // Two calls over [0, 3) and [3, E), split the way threads split the channels, give
      // the same bits as one call, because no channel's result depends on its block start.
      std::vector<float> h_split = h0, y_split(L * E);
      k->selective_scan_channels(a, h_split.data(), y_split.data(), 0, 3);
      k->selective_scan_channels(a, h_split.data(), y_split.data(), 3, E);
      EXPECT_EQ(y_split, y) << k->isa << " L " << L << " N " << N;
      EXPECT_EQ(h_split, h) << k->isa << " L " << L << " N " << N;
    }
  }
}

}  // namespace
}  // namespace mambacpp
