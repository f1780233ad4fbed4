// The gated RMSNorm, rotary embedding and causal attention kernels: against their scalar
// twins and against values derived by hand.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "mambacpp/thread_pool.h"
#include "ops/activations.h"
#include "ops/attention.h"
#include "ops/gated_rms_norm.h"

namespace mambacpp {
namespace {

std::vector<float> random_values(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> out(n);
  for (float& v : out) v = normal(rng);
  return out;
}

// Two groups of two channels, gate first: v = y ⊙ silu(z), then each group divided by
// its own RMS. Group 1 is 100 times larger than group 0, so a norm over all four
// channels would leave group 0 near zero instead of at unit RMS.
TEST(GatedRmsNorm, NormalizesEachGroupAlone) {
  ThreadPool pool(2);
  std::vector<float> y = {1.0f, -2.0f, 100.0f, 300.0f};
  const std::vector<float> z = {0.5f, 1.0f, -1.0f, 2.0f};
  const std::vector<float> weight = {1.0f, 2.0f, 0.5f, 1.0f};
  const float eps = 1e-5f;

  std::vector<double> v(4);
  for (int i = 0; i < 4; ++i) v[i] = y[i] * silu(z[i]);
  const double inv0 = 1.0 / std::sqrt((v[0] * v[0] + v[1] * v[1]) / 2 + eps);
  const double inv1 = 1.0 / std::sqrt((v[2] * v[2] + v[3] * v[3]) / 2 + eps);
  const double expected[] = {v[0] * inv0 * 1.0, v[1] * inv0 * 2.0, v[2] * inv1 * 0.5,
                             v[3] * inv1 * 1.0};

  gated_rms_norm(y.data(), z.data(), 4, 1, 4, 2, weight.data(), eps, false, pool);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(y[i], expected[i], 1e-5 * std::abs(expected[i])) << i;
}

// norm_before_gate: y / rms(y) ⊙ weight ⊙ silu(z), over one group.
TEST(GatedRmsNorm, NormBeforeGate) {
  ThreadPool pool(1);
  std::vector<float> y = {3.0f, 4.0f};
  const std::vector<float> z = {1.0f, -2.0f};
  const std::vector<float> weight = {1.0f, 1.0f};
  gated_rms_norm(y.data(), z.data(), 2, 1, 2, 1, weight.data(), 0.0f, true, pool);
  const double rms = std::sqrt((9.0 + 16.0) / 2);
  EXPECT_NEAR(y[0], 3.0 / rms * silu(1.0f), 1e-6);
  EXPECT_NEAR(y[1], 4.0 / rms * silu(-2.0f), 1e-6);
}

TEST(GatedRmsNorm, MatchesScalarTwin) {
  ThreadPool pool(2);
  const int64_t M = 13, D = 48, z_stride = 60;
  for (int64_t groups : {1, 2, 4}) {
    for (bool before : {false, true}) {
      std::vector<float> y = random_values(M * D, 1);
      std::vector<float> y_twin = y;
      std::vector<float> z = random_values(M * z_stride, 2);
      std::vector<float> weight = random_values(D, 3);
      gated_rms_norm(y.data(), z.data(), z_stride, M, D, groups, weight.data(), 1e-5f, before,
                     pool);
      gated_rms_norm_reference(y_twin.data(), z.data(), z_stride, M, D, groups, weight.data(),
                               1e-5f, before);
      for (size_t i = 0; i < y.size(); ++i)
        ASSERT_NEAR(y[i], y_twin[i], 1e-5 + 1e-5 * std::abs(y_twin[i]))
            << "groups " << groups << " norm_before_gate " << before << " index " << i;
    }
  }
}

// Position 0 leaves x unchanged. At position p the pair (i, i + R/2) turns by
// p · base^(-2i/R), and features from R on stay as they are.
TEST(Rotary, RotatesFeaturePairsByPositionAngle) {
  const int64_t head_dim = 6, R = 4;
  std::vector<float> x = {1, 2, 3, 4, 5, 6,   // position 0
                          1, 0, 0, 1, 7, 8};  // position 3
  apply_rotary(x.data(), head_dim, 1, 1, head_dim, R, 0, 10000.0);
  apply_rotary(x.data() + head_dim, head_dim, 1, 1, head_dim, R, 3, 10000.0);

  const float unchanged[] = {1, 2, 3, 4, 5, 6};
  for (int i = 0; i < 6; ++i) EXPECT_FLOAT_EQ(x[i], unchanged[i]) << i;

  const double theta0 = 3.0, theta1 = 3.0 * std::pow(10000.0, -2.0 / 4.0);
  // pair (0, 2) = (1, 0); pair (1, 3) = (0, 1)
  EXPECT_NEAR(x[6 + 0], std::cos(theta0), 1e-6);
  EXPECT_NEAR(x[6 + 2], std::sin(theta0), 1e-6);
  EXPECT_NEAR(x[6 + 1], -std::sin(theta1), 1e-6);
  EXPECT_NEAR(x[6 + 3], std::cos(theta1), 1e-6);
  EXPECT_FLOAT_EQ(x[6 + 4], 7.0f);
  EXPECT_FLOAT_EQ(x[6 + 5], 8.0f);
}

// Two keys with scores s0, s1 for one query: out = softmax weights applied to v.
TEST(CausalAttention, MatchesHandComputedSoftmax) {
  ThreadPool pool(1);
  const float q[] = {1.0f, 2.0f};
  // [2 tokens, 2 (k, v), 1 head, 2 features]
  const float kv[] = {1.0f, 0.0f, 10.0f, 20.0f,    // token 0: k, v
                      0.0f, 1.0f, -10.0f, 40.0f};  // token 1: k, v
  AttentionArgs a;
  a.L = 1;
  a.n_past = 1;
  a.q_heads = a.kv_heads = 1;
  a.head_dim = 2;
  a.q = q;
  a.q_stride = 2;
  a.kv_cache = kv;
  a.scale = 0.5f;
  float out[2];
  causal_attention(a, out, pool);
  const double s0 = 0.5 * 1.0, s1 = 0.5 * 2.0;
  const double w0 = std::exp(s0) / (std::exp(s0) + std::exp(s1)), w1 = 1.0 - w0;
  EXPECT_NEAR(out[0], w0 * 10.0 + w1 * -10.0, 1e-5);
  EXPECT_NEAR(out[1], w0 * 20.0 + w1 * 40.0, 1e-5);
}

// Grouped-query attention with past tokens matches the scalar twin. A change to the last
// key and value leaves every earlier query's output as it was (causal mask).
TEST(CausalAttention, MatchesScalarTwinAndIsCausal) {
  ThreadPool pool(2);
  const int64_t L = 7, n_past = 5, q_heads = 6, kv_heads = 2, hd = 8;
  const int64_t q_stride = (q_heads + 2 * kv_heads) * hd;
  std::vector<float> q = random_values(L * q_stride, 1);
  std::vector<float> kv = random_values((n_past + L) * 2 * kv_heads * hd, 2);
  AttentionArgs a;
  a.L = L;
  a.n_past = n_past;
  a.q_heads = q_heads;
  a.kv_heads = kv_heads;
  a.head_dim = hd;
  a.q = q.data();
  a.q_stride = q_stride;
  a.kv_cache = kv.data();
  a.scale = 0.35f;

  std::vector<float> out(L * q_heads * hd), out_twin(out.size());
  causal_attention(a, out.data(), pool);
  causal_attention_reference(a, out_twin.data());
  for (size_t i = 0; i < out.size(); ++i)
    ASSERT_NEAR(out[i], out_twin[i], 1e-5 + 1e-5 * std::abs(out_twin[i])) << i;

  for (int64_t i = 0; i < 2 * kv_heads * hd; ++i) kv[(n_past + L - 1) * 2 * kv_heads * hd + i] += 5.0f;
  std::vector<float> changed(out.size());
  causal_attention(a, changed.data(), pool);
  for (int64_t i = 0; i < (L - 1) * q_heads * hd; ++i) ASSERT_EQ(changed[i], out[i]) << i;
  bool last_changed = false;
  for (int64_t i = (L - 1) * q_heads * hd; i < L * q_heads * hd; ++i)
    last_changed = last_changed || changed[i] != out[i];
  EXPECT_TRUE(last_changed);
}

// Query head j reads kv head j / (q_heads / kv_heads): with 4 query heads over 2 kv heads,
// heads 0 and 1 read kv head 0 and heads 2 and 3 read kv head 1.
TEST(CausalAttention, ConsecutiveQueryHeadsShareAKvHead) {
  ThreadPool pool(1);
  const int64_t hd = 1;
  const float q[] = {1.0f, 1.0f, 1.0f, 1.0f};
  // One token: k = [1, 1], v = [3 (kv head 0), 7 (kv head 1)].
  const float kv[] = {1.0f, 1.0f, 3.0f, 7.0f};
  AttentionArgs a;
  a.L = 1;
  a.q_heads = 4;
  a.kv_heads = 2;
  a.head_dim = hd;
  a.q = q;
  a.q_stride = 4;
  a.kv_cache = kv;
  a.scale = 1.0f;
  float out[4];
  causal_attention(a, out, pool);
  EXPECT_FLOAT_EQ(out[0], 3.0f);
  EXPECT_FLOAT_EQ(out[1], 3.0f);
  EXPECT_FLOAT_EQ(out[2], 7.0f);
  EXPECT_FLOAT_EQ(out[3], 7.0f);
}

}  // namespace
}  // namespace mambacpp
