// The Mamba-2 chunked scan for training: the forward pass against a plain sequential
// recurrence in double, the backward pass against central finite differences of that
// recurrence, and the chunk-size, pool-size and accumulation contracts.
#include "train/ssd_scan_grad.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "mambacpp/thread_pool.h"

namespace mambacpp::train {
namespace {

// All inputs of one scan, in f32 or f64.
template <typename T>
struct ScanInputs {
  std::vector<T> x, dt, dt_bias, A_log, B, C, D;
};

template <typename To, typename From>
std::vector<To> convert(const std::vector<From>& values) {
  return std::vector<To>(values.begin(), values.end());
}

template <typename To, typename From>
ScanInputs<To> convert(const ScanInputs<From>& in) {
  return {convert<To>(in.x),     convert<To>(in.dt), convert<To>(in.dt_bias),
          convert<To>(in.A_log), convert<To>(in.B),  convert<To>(in.C),
          convert<To>(in.D)};
}

int64_t numel_x(const SsdShape& s) { return s.batch * s.seq_len * s.n_heads * s.head_dim; }
int64_t numel_dt(const SsdShape& s) { return s.batch * s.seq_len * s.n_heads; }
int64_t numel_bc(const SsdShape& s) { return s.batch * s.seq_len * s.n_groups * s.d_state; }

// Random inputs of order one, with decay rates -A in [0.37, 4.5]. Every 11th entry of dt is raised
// so that dt + dt_bias is about 25, on the identity branch of the softplus (above 20).
ScanInputs<float> random_inputs(const SsdShape& s, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> raw_dt(-3.0f, 1.0f);
  std::uniform_real_distribution<float> bias(-1.0f, 0.5f);
  std::uniform_real_distribution<float> log_rate(-1.0f, 1.5f);
  ScanInputs<float> in;
  in.x.resize(static_cast<size_t>(numel_x(s)));
  in.dt.resize(static_cast<size_t>(numel_dt(s)));
  in.dt_bias.resize(static_cast<size_t>(s.n_heads));
  in.A_log.resize(static_cast<size_t>(s.n_heads));
  in.D.resize(static_cast<size_t>(s.n_heads));
  in.B.resize(static_cast<size_t>(numel_bc(s)));
  in.C.resize(static_cast<size_t>(numel_bc(s)));
  for (float& v : in.x) v = normal(rng);
  for (float& v : in.dt) v = raw_dt(rng);
  for (size_t i = 0; i < in.dt.size(); i += 11) in.dt[i] = 25.0f + raw_dt(rng);
  for (float& v : in.dt_bias) v = bias(rng);
  for (float& v : in.A_log) v = log_rate(rng);
  for (float& v : in.D) v = normal(rng);
  for (float& v : in.B) v = normal(rng);
  for (float& v : in.C) v = normal(rng);
  return in;
}

template <typename T>
T softplus(T v) {
  return v > T(20) ? v : std::log1p(std::exp(v));
}

// The scan token by token, as the recurrence is written: y [batch, L, H, P].
template <typename T>
std::vector<T> reference_scan(const SsdShape& s, const ScanInputs<T>& in) {
  const int64_t L = s.seq_len, H = s.n_heads, P = s.head_dim, G = s.n_groups, N = s.d_state;
  std::vector<T> y(static_cast<size_t>(numel_x(s)));
  for (int64_t b = 0; b < s.batch; ++b) {
    for (int64_t h = 0; h < H; ++h) {
      const int64_t g = h / (H / G);
      const T A = -std::exp(in.A_log[h]);
      std::vector<T> state(static_cast<size_t>(P * N), T(0));
      for (int64_t t = 0; t < L; ++t) {
        const T delta = softplus(in.dt[(b * L + t) * H + h] + in.dt_bias[h]);
        const T decay = std::exp(delta * A);
        const T* B = in.B.data() + ((b * L + t) * G + g) * N;
        const T* C = in.C.data() + ((b * L + t) * G + g) * N;
        for (int64_t p = 0; p < P; ++p) {
          const int64_t i = ((b * L + t) * H + h) * P + p;
          T sum = 0;
          for (int64_t n = 0; n < N; ++n) {
            T& S = state[p * N + n];
            S = decay * S + delta * in.x[i] * B[n];
            sum += S * C[n];
          }
          y[i] = sum + in.D[h] * in.x[i];
        }
      }
    }
  }
  return y;
}

// The gradients of one backward call.
struct Gradients {
  std::vector<float> dx, d_dt, dB, dC, d_dt_bias, d_A_log, d_D;

  explicit Gradients(const SsdShape& s)
      : dx(static_cast<size_t>(numel_x(s))),
        d_dt(static_cast<size_t>(numel_dt(s))),
        dB(static_cast<size_t>(numel_bc(s))),
        dC(static_cast<size_t>(numel_bc(s))),
        d_dt_bias(static_cast<size_t>(s.n_heads)),
        d_A_log(static_cast<size_t>(s.n_heads)),
        d_D(static_cast<size_t>(s.n_heads)) {}
};

std::vector<float> run_forward(const SsdShape& s, const ScanInputs<float>& in, SsdSaved* saved,
                               ThreadPool& pool) {
  std::vector<float> y(static_cast<size_t>(numel_x(s)));
  ssd_scan_forward(s, in.x.data(), in.dt.data(), in.dt_bias.data(), in.A_log.data(), in.B.data(),
                   in.C.data(), in.D.data(), y.data(), saved, pool);
  return y;
}

void run_backward(const SsdShape& s, const ScanInputs<float>& in, const SsdSaved& saved,
                  const std::vector<float>& dy, Gradients& grads, ThreadPool& pool) {
  ssd_scan_backward(s, in.x.data(), in.dt.data(), in.dt_bias.data(), in.A_log.data(),
                    in.B.data(), in.C.data(), in.D.data(), saved, dy.data(), grads.dx.data(),
                    grads.d_dt.data(), grads.dB.data(), grads.dC.data(), grads.d_dt_bias.data(),
                    grads.d_A_log.data(), grads.d_D.data(), pool);
}

double max_abs(const std::vector<double>& values) {
  double m = 0.0;
  for (double v : values) m = std::max(m, std::abs(v));
  return m;
}

// max_i |actual_i - expected_i|.
double max_abs_difference(const std::vector<float>& actual, const std::vector<double>& expected) {
  double m = 0.0;
  for (size_t i = 0; i < actual.size(); ++i) m = std::max(m, std::abs(actual[i] - expected[i]));
  return m;
}

std::string shape_name(const SsdShape& s) {
  return "batch " + std::to_string(s.batch) + ", L " + std::to_string(s.seq_len) + ", G " +
         std::to_string(s.n_groups) + ", chunk " + std::to_string(s.chunk_size);
}

SsdShape small_shape(int64_t L, int64_t G, int64_t chunk) { return {2, L, 4, 3, G, 5, chunk}; }

TEST(SsdScanForward, MatchesSequentialRecurrence) {
  ThreadPool pool(2);
  for (int64_t chunk : {8, 16})
    for (int64_t G : {1, 2})
      for (int64_t L : {1, 7, 16, 17, 40}) {
        const SsdShape s = small_shape(L, G, chunk);
        SCOPED_TRACE(shape_name(s));
        const ScanInputs<float> in = random_inputs(s, 100 + static_cast<uint32_t>(L));
        SsdSaved saved;
        const std::vector<float> y = run_forward(s, in, &saved, pool);
        const std::vector<double> expected = reference_scan(s, convert<double>(in));

        const double scale = max_abs(expected);
        ASSERT_GT(scale, 0.0);
        EXPECT_LE(max_abs_difference(y, expected), 1e-5 * scale);
      }
}

TEST(SsdScanForward, IndependentOfChunkSize) {
  ThreadPool pool(2);
  for (int64_t G : {1, 2}) {
    const SsdShape base = small_shape(40, G, 4);
    const ScanInputs<float> in = random_inputs(base, 7);
    SsdSaved saved;
    const std::vector<float> y4 = run_forward(base, in, &saved, pool);
    const std::vector<double> y4_wide(y4.begin(), y4.end());
    const double scale = max_abs(y4_wide);

    for (int64_t chunk : {8, 64}) {
      SsdShape s = base;
      s.chunk_size = chunk;
      SCOPED_TRACE(shape_name(s));
      const std::vector<float> y = run_forward(s, in, &saved, pool);
      EXPECT_LE(max_abs_difference(y, y4_wide), 1e-5 * scale);
    }
  }
}

// d(loss)/d(input) for loss = sum(y R) by central differences of the double recurrence.
std::vector<double> finite_difference(const SsdShape& s, ScanInputs<double> in,
                                      std::vector<double> ScanInputs<double>::*tensor,
                                      const std::vector<double>& R) {
  const double step = 1e-5;
  auto loss = [&] {
    const std::vector<double> y = reference_scan(s, in);
    double sum = 0.0;
    for (size_t i = 0; i < y.size(); ++i) sum += y[i] * R[i];
    return sum;
  };
  std::vector<double>& values = in.*tensor;
  std::vector<double> grad(values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    const double saved = values[i];
    values[i] = saved + step;
    const double plus = loss();
    values[i] = saved - step;
    const double minus = loss();
    values[i] = saved;
    grad[i] = (plus - minus) / (2 * step);
  }
  return grad;
}

// Expects |actual - expected| <= 1e-3 max|expected| over the tensor.
void expect_gradient_near(const char* name, const std::vector<float>& actual,
                          const std::vector<double>& expected) {
  const double scale = max_abs(expected);
  EXPECT_GT(scale, 0.0) << name << " has an all-zero finite-difference gradient";
  EXPECT_LE(max_abs_difference(actual, expected), 1e-3 * scale)
      << name << ": largest |finite difference| is " << scale;
}

TEST(SsdScanBackward, MatchesFiniteDifferences) {
  ThreadPool pool(2);
  const int64_t chunk = 8;
  for (int64_t G : {1, 2, 4})
    for (int64_t L : {7, 16, 17, 40}) {
      const SsdShape s = small_shape(L, G, chunk);
      SCOPED_TRACE(shape_name(s));
      const ScanInputs<float> in = random_inputs(s, 300 + static_cast<uint32_t>(L * G));
      std::mt19937 rng(9);
      std::normal_distribution<float> normal(0.0f, 1.0f);
      std::vector<float> R(static_cast<size_t>(numel_x(s)));
      for (float& v : R) v = normal(rng);

      SsdSaved saved;
      run_forward(s, in, &saved, pool);
      Gradients grads(s);
      run_backward(s, in, saved, R, grads, pool);

      const ScanInputs<double> wide = convert<double>(in);
      const std::vector<double> R_wide(R.begin(), R.end());
      using Inputs = ScanInputs<double>;
      expect_gradient_near("dx", grads.dx, finite_difference(s, wide, &Inputs::x, R_wide));
      expect_gradient_near("d_dt", grads.d_dt, finite_difference(s, wide, &Inputs::dt, R_wide));
      expect_gradient_near("dB", grads.dB, finite_difference(s, wide, &Inputs::B, R_wide));
      expect_gradient_near("dC", grads.dC, finite_difference(s, wide, &Inputs::C, R_wide));
      expect_gradient_near("d_dt_bias", grads.d_dt_bias,
                           finite_difference(s, wide, &Inputs::dt_bias, R_wide));
      expect_gradient_near("d_A_log", grads.d_A_log,
                           finite_difference(s, wide, &Inputs::A_log, R_wide));
      expect_gradient_near("d_D", grads.d_D, finite_difference(s, wide, &Inputs::D, R_wide));
    }
}

// Output and gradients of one forward and backward pass.
struct PassResult {
  std::vector<float> y;
  Gradients grads;
};

// Runs forward and backward with dy = R on a fresh pool of n_threads.
PassResult run_both(const SsdShape& s, const ScanInputs<float>& in, const std::vector<float>& R,
                    int n_threads) {
  ThreadPool pool(n_threads);
  SsdSaved saved;
  PassResult result{run_forward(s, in, &saved, pool), Gradients(s)};
  run_backward(s, in, saved, R, result.grads, pool);
  return result;
}

std::vector<float> random_cotangent(const SsdShape& s, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> R(static_cast<size_t>(numel_x(s)));
  for (float& v : R) v = normal(rng);
  return R;
}

TEST(SsdScanBackward, SameResultOnOneAndTwoThreads) {
  // G 1 and 2 sum per-head dB/dC buffers, G 4 (one head per group) writes them directly.
  for (int64_t G : {1, 2, 4}) {
    const SsdShape s{3, 37, 4, 8, G, 16, 16};
    SCOPED_TRACE(shape_name(s));
    const ScanInputs<float> in = random_inputs(s, 11);
    const std::vector<float> R = random_cotangent(s, 12);
    const PassResult one_thread = run_both(s, in, R, 1);
    const PassResult two_threads = run_both(s, in, R, 2);
    EXPECT_EQ(one_thread.y, two_threads.y);
    EXPECT_EQ(one_thread.grads.dx, two_threads.grads.dx);
    EXPECT_EQ(one_thread.grads.d_dt, two_threads.grads.d_dt);
    EXPECT_EQ(one_thread.grads.dB, two_threads.grads.dB);
    EXPECT_EQ(one_thread.grads.dC, two_threads.grads.dC);
    EXPECT_EQ(one_thread.grads.d_dt_bias, two_threads.grads.d_dt_bias);
    EXPECT_EQ(one_thread.grads.d_A_log, two_threads.grads.d_A_log);
    EXPECT_EQ(one_thread.grads.d_D, two_threads.grads.d_D);
  }
}

TEST(SsdScanBackward, IndependentOfChunkSize) {
  const SsdShape s8 = small_shape(40, 2, 8);
  SsdShape s64 = s8;
  s64.chunk_size = 64;
  const ScanInputs<float> in = random_inputs(s8, 21);
  const std::vector<float> R = random_cotangent(s8, 22);
  const PassResult a = run_both(s8, in, R, 2);
  const PassResult b = run_both(s64, in, R, 2);

  auto expect_close = [](const char* name, const std::vector<float>& x,
                         const std::vector<float>& y) {
    const std::vector<double> y_wide(y.begin(), y.end());
    EXPECT_LE(max_abs_difference(x, y_wide), 1e-4 * max_abs(y_wide)) << name;
  };
  expect_close("dx", a.grads.dx, b.grads.dx);
  expect_close("d_dt", a.grads.d_dt, b.grads.d_dt);
  expect_close("dB", a.grads.dB, b.grads.dB);
  expect_close("dC", a.grads.dC, b.grads.dC);
  expect_close("d_dt_bias", a.grads.d_dt_bias, b.grads.d_dt_bias);
  expect_close("d_A_log", a.grads.d_A_log, b.grads.d_A_log);
  expect_close("d_D", a.grads.d_D, b.grads.d_D);
}

TEST(SsdScanBackward, AccumulatesParameterGradients) {
  const SsdShape s = small_shape(17, 2, 8);
  const ScanInputs<float> in = random_inputs(s, 31);
  const std::vector<float> R = random_cotangent(s, 32);
  ThreadPool pool(2);
  SsdSaved saved;
  run_forward(s, in, &saved, pool);

  Gradients first(s);
  run_backward(s, in, saved, R, first, pool);

  // Start the second call from garbage in the overwritten outputs and from the first
  // call's values in the accumulated ones.
  Gradients second = first;
  for (std::vector<float>* v : {&second.dx, &second.d_dt, &second.dB, &second.dC})
    std::fill(v->begin(), v->end(), 1e6f);
  run_backward(s, in, saved, R, second, pool);

  EXPECT_EQ(second.dx, first.dx);
  EXPECT_EQ(second.d_dt, first.d_dt);
  EXPECT_EQ(second.dB, first.dB);
  EXPECT_EQ(second.dC, first.dC);
  for (int64_t h = 0; h < s.n_heads; ++h) {
    SCOPED_TRACE("head " + std::to_string(h));
    EXPECT_NE(first.d_dt_bias[h], 0.0f);
    EXPECT_EQ(second.d_dt_bias[h], 2.0f * first.d_dt_bias[h]);
    EXPECT_EQ(second.d_A_log[h], 2.0f * first.d_A_log[h]);
    EXPECT_EQ(second.d_D[h], 2.0f * first.d_D[h]);
  }
}

}  // namespace
}  // namespace mambacpp::train
