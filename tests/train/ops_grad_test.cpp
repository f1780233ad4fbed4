// Each backward pass of the training ops against central finite differences of its
// forward pass, on tiny shapes. The scalar loss is sum(out ⊙ R) for a fixed random R,
// so d loss / d out = R.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>
#include <vector>

#include "train/conv1d_grad.h"
#include "train/cross_entropy.h"
#include "train/gated_mlp_block.h"
#include "train/linear_grad.h"
#include "train/norm_grad.h"

namespace mambacpp::train {
namespace {

std::vector<float> random_vector(size_t n, uint64_t seed, float scale = 1.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

double weighted_sum(const std::vector<float>& out, const std::vector<float>& r) {
  double s = 0.0;
  for (size_t i = 0; i < out.size(); ++i) s += static_cast<double>(out[i]) * r[i];
  return s;
}

// Compares `analytic` with central differences of `loss` in every element of `input`.
// The tolerance is relative to the largest gradient, since f32 forward passes limit
// the differences to about 1e-3 relative accuracy with this step.
void expect_matches_finite_differences(std::vector<float>& input,
                                       const std::function<double()>& loss,
                                       const std::vector<float>& analytic, const char* what) {
  ASSERT_EQ(input.size(), analytic.size()) << what;
  double max_grad = 0.0;
  for (float g : analytic) max_grad = std::max(max_grad, std::abs(static_cast<double>(g)));
  ASSERT_GT(max_grad, 0.0) << what << " has an all-zero gradient";

  const float step = 1e-2f;
  double worst = 0.0;
  for (size_t i = 0; i < input.size(); ++i) {
    const float saved = input[i];
    input[i] = saved + step;
    double up = loss();
    input[i] = saved - step;
    double down = loss();
    input[i] = saved;
    double numeric = (up - down) / (2.0 * step);
    worst = std::max(worst, std::abs(numeric - analytic[i]));
  }
  EXPECT_LE(worst, 2e-3 * max_grad + 1e-4) << what << ": worst |analytic - numeric| " << worst
                                           << ", max |grad| " << max_grad;
}

TEST(OpsGrad, Linear) {
  const int64_t M = 5, K = 7, N = 6;
  ThreadPool pool(2);
  std::vector<float> x = random_vector(M * K, 1), W = random_vector(N * K, 2),
                     b = random_vector(N, 3), R = random_vector(M * N, 4);
  std::vector<float> y(M * N);
  auto loss = [&] {
    linear_forward(x.data(), K, M, K, W.data(), b.data(), N, y.data(), pool);
    return weighted_sum(y, R);
  };

  std::vector<float> dx(M * K), dW(N * K, 0.0f), db(N, 0.0f);
  linear_backward(x.data(), K, R.data(), M, K, W.data(), N, dx.data(), K, dW.data(), db.data(),
                  pool);
  expect_matches_finite_differences(x, loss, dx, "dx");
  expect_matches_finite_differences(W, loss, dW, "dW");
  expect_matches_finite_differences(b, loss, db, "db");
}

TEST(OpsGrad, LinearWeightGradientAccumulates) {
  const int64_t M = 3, K = 4, N = 2;
  ThreadPool pool(1);
  std::vector<float> x = random_vector(M * K, 5), W = random_vector(N * K, 6),
                     dy = random_vector(M * N, 7);
  std::vector<float> once(N * K, 0.0f), twice(N * K, 0.0f);
  linear_backward(x.data(), K, dy.data(), M, K, W.data(), N, nullptr, K, once.data(), nullptr, pool);
  for (int i = 0; i < 2; ++i) {
    linear_backward(x.data(), K, dy.data(), M, K, W.data(), N, nullptr, K, twice.data(), nullptr,
                    pool);
  }
  for (size_t i = 0; i < once.size(); ++i) EXPECT_FLOAT_EQ(twice[i], 2.0f * once[i]) << i;
}

TEST(OpsGrad, RmsNorm) {
  const int64_t M = 4, D = 8;
  ThreadPool pool(2);
  std::vector<float> x = random_vector(M * D, 8), w = random_vector(D, 9),
                     R = random_vector(M * D, 10);
  std::vector<float> y(M * D), rstd(M);
  auto loss = [&] {
    rms_norm_forward(x.data(), M, D, w.data(), 1e-5, y.data(), rstd.data(), pool);
    return weighted_sum(y, R);
  };
  loss();

  std::vector<float> dx(M * D), dw(D, 0.0f);
  rms_norm_backward(x.data(), rstd.data(), R.data(), M, D, w.data(), dx.data(), dw.data(), pool);
  expect_matches_finite_differences(x, loss, dx, "dx");
  expect_matches_finite_differences(w, loss, dw, "dw");
}

TEST(OpsGrad, GatedRmsNormPerGroup) {
  const int64_t M = 3, D = 8, group = 4;
  ThreadPool pool(2);
  std::vector<float> y = random_vector(M * D, 11), z = random_vector(M * D, 12),
                     w = random_vector(D, 13), R = random_vector(M * D, 14);
  std::vector<float> out(M * D), rstd(M * (D / group));
  auto loss = [&] {
    gated_rms_norm_forward(y.data(), z.data(), M, D, group, w.data(), 1e-5, out.data(),
                           rstd.data(), pool);
    return weighted_sum(out, R);
  };
  loss();

  std::vector<float> dy(M * D), dz(M * D), dw(D, 0.0f);
  gated_rms_norm_backward(y.data(), z.data(), rstd.data(), R.data(), M, D, group, w.data(),
                          dy.data(), dz.data(), dw.data(), pool);
  expect_matches_finite_differences(y, loss, dy, "dy");
  expect_matches_finite_differences(z, loss, dz, "dz");
  expect_matches_finite_differences(w, loss, dw, "dw");
}

TEST(OpsGrad, Conv1dSiluWithStridedInput) {
  // Two sequences of 6 tokens, 5 channels read from rows of 9 floats, kernel width 4.
  const Conv1dShape s{2, 6, 5, 4};
  const int64_t ldx = 9, M = s.batch * s.seq_len;
  ThreadPool pool(2);
  std::vector<float> x = random_vector(M * ldx, 15), w = random_vector(s.channels * s.width, 16),
                     bias = random_vector(s.channels, 17), R = random_vector(M * s.channels, 18);
  std::vector<float> pre(M * s.channels), out(M * s.channels);
  auto loss = [&] {
    conv1d_silu_forward(s, x.data(), ldx, w.data(), bias.data(), pre.data(), out.data(), pool);
    return weighted_sum(out, R);
  };
  loss();

  std::vector<float> dx(M * ldx, 0.0f), dw(w.size(), 0.0f), dbias(s.channels, 0.0f);
  conv1d_silu_backward(s, x.data(), ldx, w.data(), pre.data(), R.data(), dx.data(), ldx, dw.data(),
                       dbias.data(), pool);
  expect_matches_finite_differences(x, loss, dx, "dx");
  expect_matches_finite_differences(w, loss, dw, "dw");
  expect_matches_finite_differences(bias, loss, dbias, "dbias");
}

TEST(OpsGrad, LmHeadCrossEntropySkipsNegativeTargets) {
  const int64_t M = 6, D = 4, V = 11;
  ThreadPool pool(2);
  std::vector<float> h = random_vector(M * D, 19), W = random_vector(V * D, 20);
  const std::vector<int32_t> targets = {3, 0, -1, 10, 7, -1};
  const float scale = 0.25f;
  auto loss = [&] {
    return scale * lm_head_cross_entropy(h.data(), M, D, W.data(), V, targets.data(), scale,
                                         nullptr, nullptr, pool);
  };

  std::vector<float> dh(M * D), dW(V * D, 0.0f);
  lm_head_cross_entropy(h.data(), M, D, W.data(), V, targets.data(), scale, dh.data(), dW.data(),
                        pool);
  expect_matches_finite_differences(h, loss, dh, "dh");
  expect_matches_finite_differences(W, loss, dW, "dW");
  for (int64_t k = 0; k < D; ++k) EXPECT_EQ(dh[2 * D + k], 0.0f) << "skipped row 2 got a gradient";
}

TEST(OpsGrad, LmHeadCrossEntropyValue) {
  // One row, logits h · W^T = [0, ln 2, ln 3] with target 1: loss = ln(6) − ln(2) = ln 3.
  ThreadPool pool(1);
  const std::vector<float> h = {1.0f};
  const std::vector<float> W = {0.0f, std::log(2.0f), std::log(3.0f)};
  const std::vector<int32_t> target = {1};
  double loss = lm_head_cross_entropy(h.data(), 1, 1, W.data(), 3, target.data(), 1.0f, nullptr,
                                      nullptr, pool);
  EXPECT_NEAR(loss, std::log(3.0), 1e-6);
}

TEST(OpsGrad, GatedMlp) {
  const int64_t M = 4, D = 5, F = 3;
  ThreadPool pool(2);
  Parameter fc1{"fc1", {2 * F, D}, random_vector(2 * F * D, 21), std::vector<float>(2 * F * D, 0.0f)};
  Parameter fc2{"fc2", {D, F}, random_vector(D * F, 22), std::vector<float>(D * F, 0.0f)};
  GatedMlpParams p{&fc1, &fc2};
  std::vector<float> u = random_vector(M * D, 23), R = random_vector(M * D, 24), out(M * D);
  GatedMlpActivations act;
  auto loss = [&] {
    gated_mlp_forward(p, u.data(), M, D, F, out.data(), act, pool);
    return weighted_sum(out, R);
  };
  loss();

  std::vector<float> du(M * D);
  gated_mlp_backward(p, u.data(), M, D, F, act, R.data(), du.data(), pool);
  expect_matches_finite_differences(u, loss, du, "du");
  expect_matches_finite_differences(fc1.value, loss, fc1.grad, "d fc1");
  expect_matches_finite_differences(fc2.value, loss, fc2.grad, "d fc2");
}

}  // namespace
}  // namespace mambacpp::train
