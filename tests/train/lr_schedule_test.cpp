// The learning-rate schedule and gradient clipping.
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <vector>

#include "train/gradient_clipping.h"
#include "train/lr_schedule.h"

namespace mambacpp::testing {
namespace {

using train::LrSchedule;
using train::Parameter;

TEST(LrSchedule, WarmupIsLinear) {
  LrSchedule schedule{1e-3, 1e-4, 10, 110};
  EXPECT_DOUBLE_EQ(schedule.lr_at(1), 1e-4);
  EXPECT_DOUBLE_EQ(schedule.lr_at(5), 5e-4);
  EXPECT_DOUBLE_EQ(schedule.lr_at(10), 1e-3);
}

TEST(LrSchedule, CosineReachesMinimumAtLastStep) {
  LrSchedule schedule{1e-3, 1e-4, 10, 110};
  // Halfway through the cosine part the rate is the mean of peak and minimum.
  EXPECT_NEAR(schedule.lr_at(60), 5.5e-4, 1e-15);
  EXPECT_NEAR(schedule.lr_at(35), 1e-4 + 0.5 * 9e-4 * (1 + std::cos(std::numbers::pi * 0.25)), 1e-15);
  EXPECT_DOUBLE_EQ(schedule.lr_at(110), 1e-4);
  EXPECT_DOUBLE_EQ(schedule.lr_at(200), 1e-4);
}

TEST(LrSchedule, DecreasesAfterWarmup) {
  LrSchedule schedule{1e-3, 1e-4, 10, 110};
  for (int64_t step = 11; step <= 110; ++step) EXPECT_LT(schedule.lr_at(step), schedule.lr_at(step - 1)) << step;
}

TEST(LrSchedule, NoWarmup) {
  LrSchedule schedule{1e-3, 0.0, 0, 4};
  EXPECT_NEAR(schedule.lr_at(2), 5e-4, 1e-15);
  EXPECT_DOUBLE_EQ(schedule.lr_at(4), 0.0);
}

TEST(LrSchedule, WarmupLongerThanRun) {
  LrSchedule schedule{1e-3, 1e-4, 10, 5};
  EXPECT_DOUBLE_EQ(schedule.lr_at(5), 5e-4);
}

std::vector<Parameter> two_parameters(std::vector<float> a, std::vector<float> b) {
  std::vector<Parameter> parameters(2);
  parameters[0].grad = std::move(a);
  parameters[1].grad = std::move(b);
  return parameters;
}

TEST(GradientClipping, ScalesToMaximumNorm) {
  // The global norm of (3, 0) and (4) is 5.
  std::vector<Parameter> parameters = two_parameters({3.0f, 0.0f}, {4.0f});
  EXPECT_DOUBLE_EQ(train::clip_grad_norm(parameters, 1.0), 5.0);
  const double factor = 1.0 / (5.0 + 1e-6);
  EXPECT_FLOAT_EQ(parameters[0].grad[0], static_cast<float>(3.0 * factor));
  EXPECT_FLOAT_EQ(parameters[1].grad[0], static_cast<float>(4.0 * factor));
  EXPECT_NEAR(train::global_grad_norm(parameters), 1.0, 1e-6);
}

TEST(GradientClipping, LeavesSmallNormAlone) {
  std::vector<Parameter> parameters = two_parameters({0.3f, 0.0f}, {0.4f});
  EXPECT_NEAR(train::clip_grad_norm(parameters, 1.0), 0.5, 1e-7);
  EXPECT_EQ(parameters[0].grad[0], 0.3f);
  EXPECT_EQ(parameters[1].grad[0], 0.4f);
}

TEST(GradientClipping, NonFiniteNormIsReturnedUnscaled) {
  std::vector<Parameter> parameters = two_parameters({INFINITY, 1.0f}, {1.0f});
  EXPECT_TRUE(std::isinf(train::clip_grad_norm(parameters, 1.0)));
  EXPECT_EQ(parameters[1].grad[0], 1.0f);
}

}  // namespace
}  // namespace mambacpp::testing
