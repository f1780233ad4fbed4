// Fast kernels against their scalar twins, on every instruction set this CPU runs, at
// every length up to past two vector widths and at misaligned starts.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "ops/dtype.h"
#include "ops/gemv_kernels.h"
#include "ops/linear.h"

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

TEST(GemvKernels, EverySetMatchesScalarF32) {
  const GemvKernels& scalar = gemv_kernels_scalar();
  for (const GemvKernels* k : available_gemv_kernels()) {
    for_each_gemv_shape([&](int64_t rows, int64_t cols, int64_t offset) {
      auto W = random_floats(rows * cols + offset, 1);
      auto x = random_floats(cols + offset, 2);
      std::vector<float> expected(rows), actual(rows);
      scalar.f32(W.data() + offset, x.data() + offset, cols, 0, rows, expected.data());
      k->f32(W.data() + offset, x.data() + offset, cols, 0, rows, actual.data());
      for (int64_t r = 0; r < rows; ++r)
        ASSERT_NEAR(actual[r], expected[r], tolerance(cols))
            << k->isa << " cols " << cols << " offset " << offset << " row " << r;
    });
  }
}

TEST(GemvKernels, EverySetMatchesScalarBf16AndF16) {
  const GemvKernels& scalar = gemv_kernels_scalar();
  for (const GemvKernels* k : available_gemv_kernels()) {
    for_each_gemv_shape([&](int64_t rows, int64_t cols, int64_t offset) {
      auto values = random_floats(rows * cols + offset, 3);
      std::vector<uint16_t> bf16(values.size()), f16(values.size());
      for (size_t i = 0; i < values.size(); ++i) {
        bf16[i] = f32_to_bf16(values[i]);
        f16[i] = f32_to_f16(values[i]);
      }
      auto x = random_floats(cols + offset, 4);
      std::vector<float> expected(rows), actual(rows);

      scalar.bf16(bf16.data() + offset, x.data() + offset, cols, 0, rows, expected.data());
      k->bf16(bf16.data() + offset, x.data() + offset, cols, 0, rows, actual.data());
      for (int64_t r = 0; r < rows; ++r)
        ASSERT_NEAR(actual[r], expected[r], tolerance(cols)) << k->isa << " bf16 cols " << cols;

      scalar.f16(f16.data() + offset, x.data() + offset, cols, 0, rows, expected.data());
      k->f16(f16.data() + offset, x.data() + offset, cols, 0, rows, actual.data());
      for (int64_t r = 0; r < rows; ++r)
        ASSERT_NEAR(actual[r], expected[r], tolerance(cols)) << k->isa << " f16 cols " << cols;
    });
  }
}

// The hand-computed product of a 2x3 matrix and a vector.
TEST(GemvKernels, ScalarMatchesHandComputedProduct) {
  const float W[] = {1, 2, 3, -1, 0.5f, 4};
  const float x[] = {2, -1, 0.25f};
  float y[2];
  gemv_kernels_scalar().f32(W, x, 3, 0, 2, y);
  EXPECT_FLOAT_EQ(y[0], 1 * 2 + 2 * -1 + 3 * 0.25f);
  EXPECT_FLOAT_EQ(y[1], -1 * 2 + 0.5f * -1 + 4 * 0.25f);
}

TEST(Linear, BlasAndGemvPathsMatchReference) {
  ThreadPool pool(2);
  for (DType dtype : {DType::F32, DType::BF16, DType::F16}) {
    for (int64_t M : {1, 2, 7}) {
      const int64_t N = 300, K = 77;
      auto values = random_floats(N * K, 5);
      std::vector<float> f32 = values;
      std::vector<uint16_t> half(values.size());
      for (size_t i = 0; i < values.size(); ++i)
        half[i] = dtype == DType::BF16 ? f32_to_bf16(values[i]) : f32_to_f16(values[i]);
      Matrix W{dtype == DType::F32 ? static_cast<const void*>(f32.data()) : half.data(), dtype, N, K};

      auto x = random_floats(M * K, 6);
      auto bias = random_floats(N, 7);
      std::vector<float> expected(M * N), actual(M * N);
      linear_reference(x.data(), M, W, bias.data(), expected.data());
      linear(x.data(), M, W, bias.data(), actual.data(), pool);
      for (int64_t i = 0; i < M * N; ++i)
        ASSERT_NEAR(actual[i], expected[i], tolerance(K)) << dtype_name(dtype) << " M " << M << " i " << i;
    }
  }
}

TEST(DType, HalfConversionsRoundTripExactValues) {
  for (float v : {0.0f, -0.0f, 1.0f, -2.5f, 65504.0f, 6.103515625e-05f, 5.960464477539063e-08f}) {
    EXPECT_EQ(f16_to_f32(f32_to_f16(v)), v) << v;
    EXPECT_EQ(bf16_to_f32(f32_to_bf16(v == 65504.0f ? 65536.0f : v)), v == 65504.0f ? 65536.0f : v) << v;
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
