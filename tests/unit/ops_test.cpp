// Element-wise ops, the causal conv and the selective scan against hand-derived values.
#include <cblas.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <vector>

#include "mambacpp/thread_pool.h"
#include "ops/activations.h"
#include "ops/blas.h"
#include "ops/causal_conv1d.h"
#include "ops/rms_norm.h"
#include "ops/selective_scan.h"
#include "ops/silu.h"

namespace mambacpp {
namespace {

TEST(Activations, SoftplusHasThresholdTwenty) {
  EXPECT_FLOAT_EQ(softplus(0.0f), std::log(2.0f));
  EXPECT_FLOAT_EQ(softplus(20.5f), 20.5f);
  EXPECT_FLOAT_EQ(softplus(-30.0f), std::log1p(std::exp(-30.0f)));
  EXPECT_FLOAT_EQ(silu(1.0f), 1.0f / (1.0f + std::exp(-1.0f)));
}

TEST(RmsNorm, MatchesDefinition) {
  const float x[] = {1, -2, 3, 0, 4, 4};
  const float w[] = {1, 0.5f, 2};
  float y[6];
  rms_norm(x, 2, 3, w, 1e-5f, y);
  float inv0 = 1.0f / std::sqrt((1 + 4 + 9) / 3.0f + 1e-5f);
  float inv1 = 1.0f / std::sqrt((0 + 16 + 16) / 3.0f + 1e-5f);
  EXPECT_FLOAT_EQ(y[0], 1 * inv0 * 1);
  EXPECT_FLOAT_EQ(y[1], -2 * inv0 * 0.5f);
  EXPECT_FLOAT_EQ(y[2], 3 * inv0 * 2);
  EXPECT_FLOAT_EQ(y[4], 4 * inv1 * 0.5f);
}

// The vector silu over more than one 256-value chunk, against silu() with std::exp.
TEST(Activations, SiluInPlaceAndGateMatchDefinition) {
  const int64_t n = 600;
  std::vector<float> v(n), gate(n), row(n, 1.5f);
  for (int64_t i = 0; i < n; ++i) {
    v[i] = -30.0f + 0.1f * static_cast<float>(i);
    gate[i] = 25.0f - 0.09f * static_cast<float>(i);
  }
  std::vector<float> v_silu = v;
  silu_in_place(v_silu.data(), n);
  multiply_by_silu(row.data(), gate.data(), n);
  for (int64_t i = 0; i < n; ++i) {
    EXPECT_NEAR(v_silu[i], silu(v[i]), 1e-6 * std::abs(silu(v[i])) + 1e-30) << "v " << v[i];
    EXPECT_NEAR(row[i], 1.5f * silu(gate[i]), 2e-6 * std::abs(silu(gate[i])) + 1e-30) << "gate " << gate[i];
  }
}

// One channel, K = 3: out_t = b + w0 x_{t-2} + w1 x_{t-1} + w2 x_t with zeros before t = 0,
// and the state keeps the last three raw inputs.
TEST(CausalConv1d, MatchesHandComputedWindowAndState) {
  ThreadPool pool(1);
  const float x[] = {1, 2, 3, 4};
  const float w[] = {0.5f, -1, 2};
  const float b[] = {0.25f};
  float state[3] = {0, 0, 0};
  float out[4];
  causal_conv1d(x, 1, 4, 1, 3, w, b, state, false, out, pool);
  EXPECT_FLOAT_EQ(out[0], 0.25f + 2 * 1);
  EXPECT_FLOAT_EQ(out[1], 0.25f - 1 * 1 + 2 * 2);
  EXPECT_FLOAT_EQ(out[2], 0.25f + 0.5f * 1 - 1 * 2 + 2 * 3);
  EXPECT_FLOAT_EQ(out[3], 0.25f + 0.5f * 2 - 1 * 3 + 2 * 4);
  EXPECT_FLOAT_EQ(state[0], 2);
  EXPECT_FLOAT_EQ(state[1], 3);
  EXPECT_FLOAT_EQ(state[2], 4);
}

// A decode step takes its own one-token path. Feeding the prompt one token at a time must
// give the whole-prompt outputs and state bit for bit, and the hand-computed values above.
TEST(CausalConv1d, OneTokenAtATimeEqualsWholePrompt) {
  ThreadPool pool(2);
  const int64_t L = 5, C = 70, K = 4;
  std::vector<float> x(L * C), weight(C * K), bias(C);
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.53f * static_cast<float>(i));
  for (size_t i = 0; i < weight.size(); ++i) weight[i] = std::cos(0.29f * static_cast<float>(i));
  for (size_t i = 0; i < bias.size(); ++i) bias[i] = 0.02f * static_cast<float>(i);

  std::vector<float> state_whole(C * K, 0.25f), state_steps = state_whole;
  std::vector<float> out_whole(L * C), out_steps(L * C);
  causal_conv1d(x.data(), C, L, C, K, weight.data(), bias.data(), state_whole.data(), true,
                out_whole.data(), pool);
  for (int64_t t = 0; t < L; ++t)
    causal_conv1d(x.data() + t * C, C, 1, C, K, weight.data(), bias.data(), state_steps.data(),
                  true, out_steps.data() + t * C, pool);
  EXPECT_EQ(out_steps, out_whole);
  EXPECT_EQ(state_steps, state_whole);

  const float x1[] = {1, 2, 3, 4};
  const float w1[] = {0.5f, -1, 2};
  const float b1[] = {0.25f};
  float state1[3] = {0, 0, 0};
  float out1[4];
  for (int t = 0; t < 4; ++t) causal_conv1d(x1 + t, 1, 1, 1, 3, w1, b1, state1, false, out1 + t, pool);
  EXPECT_FLOAT_EQ(out1[2], 0.25f + 0.5f * 1 - 1 * 2 + 2 * 3);
  EXPECT_FLOAT_EQ(out1[3], 0.25f + 0.5f * 2 - 1 * 3 + 2 * 4);
  EXPECT_FLOAT_EQ(state1[0], 2);
  EXPECT_FLOAT_EQ(state1[2], 4);
}

// Two sequences of different lengths in one call give what one call each gives, with
// enough channels (4000 items, grain 1408) that a thread's range crosses into the second.
TEST(CausalConv1d, SeveralSegmentsEqualOneCallEach) {
  ThreadPool pool(2);
  const int64_t C = 2000, K = 4, stride = C + 3;
  const int64_t lengths[] = {3, 1};
  std::vector<float> x(static_cast<size_t>(4 * stride)), weight(C * K), bias(C);
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.37f * static_cast<float>(i));
  for (size_t i = 0; i < weight.size(); ++i) weight[i] = std::cos(0.11f * static_cast<float>(i));
  for (size_t i = 0; i < bias.size(); ++i) bias[i] = 0.01f * static_cast<float>(i);

  std::vector<float> state_init(C * K);
  for (size_t i = 0; i < state_init.size(); ++i) state_init[i] = 0.5f - 0.003f * static_cast<float>(i);
  std::vector<float> states_many[2] = {state_init, state_init}, states_one[2] = {state_init, state_init};
  std::vector<float> out_many(4 * C), out_one(4 * C);

  ConvSegment segments[2] = {{x.data(), lengths[0], states_many[0].data(), out_many.data()},
                             {x.data() + 3 * stride, lengths[1], states_many[1].data(), out_many.data() + 3 * C}};
  causal_conv1d_many(segments, stride, C, K, weight.data(), bias.data(), true, pool);
  causal_conv1d(x.data(), stride, lengths[0], C, K, weight.data(), bias.data(), states_one[0].data(), true,
                out_one.data(), pool);
  causal_conv1d(x.data() + 3 * stride, stride, lengths[1], C, K, weight.data(), bias.data(),
                states_one[1].data(), true, out_one.data() + 3 * C, pool);

  EXPECT_EQ(out_many, out_one);
  EXPECT_EQ(states_many[0], states_one[0]);
  EXPECT_EQ(states_many[1], states_one[1]);
}

// One channel, one state entry, two tokens, computed by hand from the recurrence.
TEST(SelectiveScan, MatchesHandComputedRecurrence) {
  ThreadPool pool(1);
  const float x[] = {0.5f, -1.0f};
  const float delta[] = {0.1f, 0.3f};
  const float delta_bias[] = {0.2f};
  const float A[] = {-1.5f};
  const float BC[] = {2.0f, 0.7f, -1.0f, 0.4f};  // per token: B, C
  const float D[] = {0.9f};
  const float z[] = {0.3f, -0.6f};
  SelectiveScanArgs a;
  a.L = 2;
  a.E = 1;
  a.N = 1;
  a.x = x;
  a.delta = delta;
  a.delta_bias = delta_bias;
  a.A = A;
  a.B = BC;
  a.C = BC + 1;
  a.bc_stride = 2;
  a.D = D;
  a.z = z;
  a.z_stride = 1;
  float h = 0.25f;  // a non-zero initial state
  float y[2];
  selective_scan(a, &h, y, pool);

  double expected_h = 0.25;
  for (int t = 0; t < 2; ++t) {
    double dt = std::log1p(std::exp(static_cast<double>(delta[t]) + 0.2));
    expected_h = std::exp(dt * -1.5) * expected_h + dt * BC[2 * t] * x[t];
    double out = expected_h * BC[2 * t + 1] + 0.9 * x[t];
    double gate = z[t] / (1.0 + std::exp(-static_cast<double>(z[t])));
    EXPECT_NEAR(y[t], out * gate, 1e-6) << t;
  }
  EXPECT_NEAR(h, expected_h, 1e-6);
}

TEST(ThreadPool, CoversEveryIndexOnce) {
  ThreadPool pool(3);
  for (int64_t n : {1, 2, 15, 16, 17, 100, 1001}) {
    std::vector<int> hits(n, 0);
    pool.parallel_for(n, 4, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) hits[i]++;
    });
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[i], 1) << "n " << n << " i " << i;
  }
}

}  // namespace
}  // namespace mambacpp

namespace mambacpp {
namespace {

// OpenBLAS falls back to its SSE3-only "Prescott" kernels on a CPU model it does not know
// (0.3.21 on Intel's Emerald Rapids), which made prefill three times slower. After
// prepare_blas() a CPU with AVX2 and FMA must get vector kernels.
TEST(Blas, UsesVectorKernelsOnCpusWithAvx2) {
#if defined(__x86_64__)
  if (std::getenv("OPENBLAS_CORETYPE") != nullptr) GTEST_SKIP() << "OPENBLAS_CORETYPE is set";
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma"))
    GTEST_SKIP() << "no AVX2 and FMA";
  prepare_blas();
  EXPECT_STRNE(openblas_get_corename(), "Prescott");
#else
  GTEST_SKIP() << "OpenBLAS core names are checked on x86-64 only";
#endif
}

}  // namespace
}  // namespace mambacpp
