// AdamW against values worked out by hand and against the textbook formula in double.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "train/adamw.h"

namespace mambacpp::testing {
namespace {

using train::AdamW;
using train::AdamWOptions;
using train::Parameter;

Parameter scalar_parameter(const std::string& name, float value, bool decay) {
  Parameter p;
  p.name = name;
  p.shape = {1};
  p.value = {value};
  p.grad = {0.0f};
  p.weight_decay = decay;
  return p;
}

TEST(AdamW, TwoStepsByHand) {
  // lr 0.1, betas 0.9/0.95, weight decay 0.1, gradients 0.5 then 0.25, both from 1.0.
  // Step 1: m = 0.05, v = 0.0125, and the bias-corrected update is lr * g / |g| = 0.1
  // (to 1e-8), after the decay 1.0 * (1 - 0.01) = 0.99 where decay applies.
  // Step 2: m = 0.07, v = 0.015, m_hat = 0.07 / 0.19, v_hat = 0.015 / 0.0975, so the
  // update is 0.1 * m_hat / sqrt(v_hat) = 0.0939293...; the decayed value first becomes
  // 0.89 * 0.99 = 0.8811.
  std::vector<Parameter> parameters{scalar_parameter("decayed", 1.0f, true),
                                    scalar_parameter("not_decayed", 1.0f, false)};
  AdamW optimizer(parameters, AdamWOptions{0.9, 0.95, 1e-8, 0.1});

  for (Parameter& p : parameters) p.grad = {0.5f};
  optimizer.step(parameters, 0.1);
  EXPECT_NEAR(parameters[0].value[0], 0.89, 1e-6);
  EXPECT_NEAR(parameters[1].value[0], 0.90, 1e-6);
  EXPECT_NEAR(optimizer.exp_avg()[0][0], 0.05, 1e-7);
  EXPECT_NEAR(optimizer.exp_avg_sq()[0][0], 0.0125, 1e-8);

  for (Parameter& p : parameters) p.grad = {0.25f};
  optimizer.step(parameters, 0.1);
  EXPECT_NEAR(parameters[0].value[0], 0.787170695565396, 1e-6);
  EXPECT_NEAR(parameters[1].value[0], 0.806070695565396, 1e-6);
  EXPECT_EQ(optimizer.step_count(), 2);
}

TEST(AdamW, ZeroGradientOnlyDecays) {
  std::vector<Parameter> parameters{scalar_parameter("decayed", 2.0f, true),
                                    scalar_parameter("not_decayed", 2.0f, false)};
  AdamW optimizer(parameters, AdamWOptions{0.9, 0.95, 1e-8, 0.5});
  optimizer.step(parameters, 0.2);
  EXPECT_FLOAT_EQ(parameters[0].value[0], 2.0f * (1.0f - 0.2f * 0.5f));
  EXPECT_FLOAT_EQ(parameters[1].value[0], 2.0f);
}

// The textbook form of AdamW in double: decay, moments, bias-corrected m_hat / (sqrt(v_hat)
// + eps), written without the rearrangement PyTorch and the optimizer use.
struct ReferenceAdamW {
  double beta1, beta2, eps, weight_decay;
  std::vector<double> m, v;
  int t = 0;

  void step(std::vector<double>& p, const std::vector<double>& g, double lr, bool decay) {
    ++t;
    for (size_t i = 0; i < p.size(); ++i) {
      if (decay) p[i] -= lr * weight_decay * p[i];
      m[i] = beta1 * m[i] + (1 - beta1) * g[i];
      v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i];
      const double m_hat = m[i] / (1 - std::pow(beta1, t));
      const double v_hat = v[i] / (1 - std::pow(beta2, t));
      p[i] -= lr * m_hat / (std::sqrt(v_hat) + eps);
    }
  }
};

TEST(AdamW, MatchesTextbookFormulaOverManySteps) {
  const int n = 64;
  std::mt19937 rng(7);
  std::normal_distribution<double> normal(0.0, 1.0);

  std::vector<Parameter> parameters(2);
  std::vector<std::vector<double>> reference_values(2);
  for (int k = 0; k < 2; ++k) {
    parameters[k].name = k == 0 ? "decayed" : "not_decayed";
    parameters[k].shape = {n};
    parameters[k].weight_decay = k == 0;
    for (int i = 0; i < n; ++i) {
      const float value = static_cast<float>(normal(rng));
      parameters[k].value.push_back(value);
      reference_values[k].push_back(value);
    }
    parameters[k].grad.assign(n, 0.0f);
  }
  const AdamWOptions options{0.9, 0.95, 1e-8, 0.1};
  AdamW optimizer(parameters, options);
  std::vector<ReferenceAdamW> reference(2, ReferenceAdamW{0.9, 0.95, 1e-8, 0.1,
                                                          std::vector<double>(n), std::vector<double>(n)});

  for (int step = 1; step <= 50; ++step) {
    const double lr = 1e-3 * step / 50.0;
    for (int k = 0; k < 2; ++k) {
      std::vector<double> grad(n);
      for (int i = 0; i < n; ++i) {
        // Small gradients too, where eps matters.
        grad[i] = normal(rng) * (i % 4 == 0 ? 1e-7 : 1.0);
        parameters[k].grad[i] = static_cast<float>(grad[i]);
        grad[i] = parameters[k].grad[i];  // the reference gets the same rounded gradient
      }
      reference[k].step(reference_values[k], grad, lr, parameters[k].weight_decay);
    }
    optimizer.step(parameters, lr);
  }
  for (int k = 0; k < 2; ++k)
    for (int i = 0; i < n; ++i)
      EXPECT_NEAR(parameters[k].value[i], reference_values[k][i], 2e-6)
          << parameters[k].name << "[" << i << "]";
}

TEST(AdamW, ThreadPoolGivesSameResult) {
  // 100000 elements, enough for the optimizer to split them over the pool.
  const int n = 100000;
  std::vector<Parameter> serial{Parameter{"w", {n}, {}, {}, true}};
  for (int i = 0; i < n; ++i) {
    serial[0].value.push_back(std::sin(0.001f * i));
    serial[0].grad.push_back(std::cos(0.003f * i));
  }
  std::vector<Parameter> threaded = serial;
  AdamW serial_optimizer(serial, {});
  AdamW threaded_optimizer(threaded, {});
  ThreadPool pool(4);
  for (int step = 0; step < 3; ++step) {
    serial_optimizer.step(serial, 1e-2);
    threaded_optimizer.step(threaded, 1e-2, &pool);
  }
  EXPECT_EQ(serial[0].value, threaded[0].value);
  EXPECT_EQ(serial_optimizer.exp_avg_sq(), threaded_optimizer.exp_avg_sq());
}

}  // namespace
}  // namespace mambacpp::testing
