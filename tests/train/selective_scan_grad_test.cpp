// The training selective scan: the forward pass against a double-precision sequential
// reference, every gradient against central finite differences of that reference, and
// the thread-count independence and accumulation contracts of the backward pass.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "mambacpp/error.h"
#include "mambacpp/thread_pool.h"
#include "ops/selective_scan.h"
#include "train/selective_scan_grad.h"

namespace mambacpp::train {
namespace {

// Inputs of one scan call, generated in f32.
struct ScanCase {
  SelectiveScanShape shape;
  std::vector<float> x, dt, dt_bias, A_log, B, C, D;

  // With `threshold_tokens`, dt is 25 at every seventh (token, channel) pair, so that
  // dt + dt_bias > 20 takes the softplus(v) = v branch.
  ScanCase(SelectiveScanShape s, uint32_t seed, bool threshold_tokens) : shape(s) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> unit(-1.0f, 1.0f);
    std::uniform_real_distribution<float> dt_range(-4.0f, 1.0f);
    std::uniform_real_distribution<float> rate_noise(0.8f, 1.2f);
    const int64_t tokens = s.batch * s.seq_len;
    x.resize(tokens * s.d_inner);
    dt.resize(tokens * s.d_inner);
    dt_bias.resize(s.d_inner);
    A_log.resize(s.d_inner * s.d_state);
    B.resize(tokens * s.d_state);
    C.resize(tokens * s.d_state);
    D.resize(s.d_inner);
    for (float& v : x) v = unit(rng);
    for (size_t i = 0; i < dt.size(); ++i) dt[i] = threshold_tokens && i % 7 == 3 ? 25.0f : dt_range(rng);
    for (float& v : dt_bias) v = unit(rng);
    // S4D-real initialization A = -(n + 1), with noise so channels differ.
    for (int64_t c = 0; c < s.d_inner; ++c) {
      for (int64_t n = 0; n < s.d_state; ++n) {
        A_log[c * s.d_state + n] = std::log(static_cast<float>(n + 1) * rate_noise(rng));
      }
    }
    for (float& v : B) v = unit(rng);
    for (float& v : C) v = unit(rng);
    for (float& v : D) v = 1.0f + 0.5f * unit(rng);
  }
};

template <typename T>
T softplus_reference(T v) {
  return v > T(20) ? v : std::log1p(std::exp(v));
}

// The scan as written in the reference, one token after another, in precision T.
template <typename T>
std::vector<T> reference_scan(const SelectiveScanShape& s, const std::vector<T>& x,
                              const std::vector<T>& dt, const std::vector<T>& dt_bias,
                              const std::vector<T>& A_log, const std::vector<T>& B,
                              const std::vector<T>& C, const std::vector<T>& D) {
  const int64_t L = s.seq_len, E = s.d_inner, N = s.d_state;
  std::vector<T> y(s.batch * L * E);
  std::vector<T> h(N), A(N);
  for (int64_t b = 0; b < s.batch; ++b) {
    for (int64_t c = 0; c < E; ++c) {
      for (int64_t n = 0; n < N; ++n) A[n] = -std::exp(A_log[c * N + n]);
      std::fill(h.begin(), h.end(), T(0));
      for (int64_t t = 0; t < L; ++t) {
        const int64_t i = (b * L + t) * E + c;
        const T delta = softplus_reference(dt[i] + dt_bias[c]);
        T out = D[c] * x[i];
        for (int64_t n = 0; n < N; ++n) {
          h[n] = std::exp(delta * A[n]) * h[n] + delta * B[(b * L + t) * N + n] * x[i];
          out += h[n] * C[(b * L + t) * N + n];
        }
        y[i] = out;
      }
    }
  }
  return y;
}

std::vector<double> widen(const std::vector<float>& v) { return {v.begin(), v.end()}; }

// The inputs in double, indexable by position so finite differences can perturb any one.
struct DoubleInputs {
  std::vector<double> x, dt, dt_bias, A_log, B, C, D;

  explicit DoubleInputs(const ScanCase& f)
      : x(widen(f.x)), dt(widen(f.dt)), dt_bias(widen(f.dt_bias)), A_log(widen(f.A_log)),
        B(widen(f.B)), C(widen(f.C)), D(widen(f.D)) {}

  std::vector<double> scan(const SelectiveScanShape& s) const {
    return reference_scan<double>(s, x, dt, dt_bias, A_log, B, C, D);
  }
};

double weighted_sum(const std::vector<double>& y, const std::vector<double>& weights) {
  double sum = 0.0;
  for (size_t i = 0; i < y.size(); ++i) sum += y[i] * weights[i];
  return sum;
}

// d(sum(y * weights)) / d(tensor[i]) for each i in `indices`, by central differences of
// the double reference.
std::vector<double> numeric_gradient(const SelectiveScanShape& s, DoubleInputs& inputs,
                                     std::vector<double>& tensor, const std::vector<double>& weights,
                                     const std::vector<size_t>& indices) {
  std::vector<double> grad;
  for (size_t i : indices) {
    const double saved = tensor[i];
    const double step = 1e-6 * std::max(1.0, std::abs(saved));
    tensor[i] = saved + step;
    const double plus = weighted_sum(inputs.scan(s), weights);
    tensor[i] = saved - step;
    const double minus = weighted_sum(inputs.scan(s), weights);
    tensor[i] = saved;
    grad.push_back((plus - minus) / (2.0 * step));
  }
  return grad;
}

// Every index below `size` when there are at most `max_count`, else `max_count` random ones.
std::vector<size_t> indices_to_check(size_t size, size_t max_count, uint32_t seed) {
  std::vector<size_t> indices(size);
  for (size_t i = 0; i < size; ++i) indices[i] = i;
  if (size <= max_count) return indices;
  std::mt19937 rng(seed);
  std::shuffle(indices.begin(), indices.end(), rng);
  indices.resize(max_count);
  return indices;
}

double max_abs(const std::vector<double>& v) {
  double m = 0.0;
  for (double e : v) m = std::max(m, std::abs(e));
  return m;
}

// max_k |actual[indices[k]] - expected[k]|.
double max_abs_difference(const std::vector<float>& actual, const std::vector<size_t>& indices,
                          const std::vector<double>& expected) {
  double m = 0.0;
  for (size_t k = 0; k < indices.size(); ++k) {
    m = std::max(m, std::abs(static_cast<double>(actual[indices[k]]) - expected[k]));
  }
  return m;
}

// The outputs of one forward and backward call.
struct ScanResults {
  std::vector<float> y, dx, d_dt, dB, dC, d_dt_bias, d_A_log, d_D;
};

ScanResults run_scan(const ScanCase& f, const std::vector<float>& dy, int n_threads) {
  const SelectiveScanShape& s = f.shape;
  const int64_t tokens = s.batch * s.seq_len;
  ThreadPool pool(n_threads);
  ScanResults r;
  r.y.assign(tokens * s.d_inner, std::numeric_limits<float>::quiet_NaN());
  SelectiveScanSaved saved;
  selective_scan_forward(s, f.x.data(), f.dt.data(), f.dt_bias.data(), f.A_log.data(), f.B.data(),
                         f.C.data(), f.D.data(), r.y.data(), &saved, pool);

  // NaN in the overwritten outputs shows any element the backward pass fails to write.
  const float nan = std::numeric_limits<float>::quiet_NaN();
  r.dx.assign(tokens * s.d_inner, nan);
  r.d_dt.assign(tokens * s.d_inner, nan);
  r.dB.assign(tokens * s.d_state, nan);
  r.dC.assign(tokens * s.d_state, nan);
  r.d_dt_bias.assign(s.d_inner, 0.0f);
  r.d_A_log.assign(s.d_inner * s.d_state, 0.0f);
  r.d_D.assign(s.d_inner, 0.0f);
  selective_scan_backward(s, f.x.data(), f.dt.data(), f.dt_bias.data(), f.A_log.data(), f.B.data(),
                          f.C.data(), f.D.data(), saved, dy.data(), r.dx.data(), r.d_dt.data(),
                          r.dB.data(), r.dC.data(), r.d_dt_bias.data(), r.d_A_log.data(),
                          r.d_D.data(), pool);
  return r;
}

std::vector<float> random_weights(size_t count, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> unit(-1.0f, 1.0f);
  std::vector<float> w(count);
  for (float& v : w) v = unit(rng);
  return w;
}

struct ShapeCase {
  SelectiveScanShape shape;
  bool threshold_tokens;
};

// Several token counts (one chunk, a partial chunk, two full chunks and a partial one),
// both the d_state = 16 and the generic state loops, a d_inner of 16 channel groups of 65
// channels, so that each group runs a full channel block and a one-channel block, and a
// d_inner of 130 for full 64-channel blocks with d_state = 16.
const ShapeCase kShapes[] = {
    {{2, 1, 8, 16}, false},  {{2, 5, 8, 16}, false},  {{2, 37, 8, 16}, false},
    {{2, 37, 8, 16}, true},  {{2, 1, 8, 4}, false},   {{2, 5, 8, 4}, true},
    {{2, 37, 8, 4}, false},  {{2, 37, 8, 4}, true},   {{1, 17, 1040, 2}, true}, {{1, 17, 130, 16}, true},
};

std::string shape_name(const SelectiveScanShape& s, bool threshold) {
  return "batch=" + std::to_string(s.batch) + " L=" + std::to_string(s.seq_len) +
         " E=" + std::to_string(s.d_inner) + " N=" + std::to_string(s.d_state) +
         (threshold ? " with dt + dt_bias > 20" : "");
}

TEST(SelectiveScanGrad, ForwardMatchesDoubleReference) {
  uint32_t seed = 1;
  for (const ShapeCase& shape_case : kShapes) {
    SCOPED_TRACE(shape_name(shape_case.shape, shape_case.threshold_tokens));
    const ScanCase f(shape_case.shape, seed++, shape_case.threshold_tokens);
    const ScanResults r = run_scan(f, random_weights(f.x.size(), 99), 2);
    const std::vector<double> expected = DoubleInputs(f).scan(f.shape);

    for (size_t i = 0; i < expected.size(); ++i) {
      ASSERT_NEAR(r.y[i], expected[i], 1e-5 * std::max(1.0, std::abs(expected[i]))) << "y[" << i << "]";
    }
  }
}

TEST(SelectiveScanGrad, ForwardMatchesInferenceScan) {
  // The inference scan multiplies its output by silu(z), so a constant z = 1 scales both
  // sides by the same factor.
  const ScanCase f({2, 37, 130, 16}, 21, true);
  const SelectiveScanShape& s = f.shape;
  const ScanResults r = run_scan(f, random_weights(f.x.size(), 22), 2);
  const std::vector<float> A = [&] {
    std::vector<float> values(f.A_log.size());
    for (size_t i = 0; i < values.size(); ++i) values[i] = -std::exp(f.A_log[i]);
    return values;
  }();
  const std::vector<float> z(s.seq_len * s.d_inner, 1.0f);
  const float gate = 1.0f / (1.0f + std::exp(-1.0f));
  ThreadPool pool(2);

  for (int64_t b = 0; b < s.batch; ++b) {
    SCOPED_TRACE("sequence " + std::to_string(b));
    const int64_t x_offset = b * s.seq_len * s.d_inner;
    const int64_t bc_offset = b * s.seq_len * s.d_state;
    SelectiveScanArgs args;
    args.L = s.seq_len;
    args.E = s.d_inner;
    args.N = s.d_state;
    args.x = f.x.data() + x_offset;
    args.delta = f.dt.data() + x_offset;
    args.delta_bias = f.dt_bias.data();
    args.A = A.data();
    args.B = f.B.data() + bc_offset;
    args.C = f.C.data() + bc_offset;
    args.bc_stride = s.d_state;
    args.D = f.D.data();
    args.z = z.data();
    args.z_stride = s.d_inner;
    std::vector<float> state(s.d_inner * s.d_state, 0.0f);
    std::vector<float> y_inference(s.seq_len * s.d_inner);
    selective_scan(args, state.data(), y_inference.data(), pool);

    for (int64_t i = 0; i < s.seq_len * s.d_inner; ++i) {
      const float expected = y_inference[i] / gate;
      // The two scans sum the states in different orders, so they agree to f32 rounding of
      // sums of 16 terms, not bitwise.
      ASSERT_NEAR(r.y[x_offset + i], expected, 1e-5f * std::max(1.0f, std::abs(expected))) << "y[" << i << "]";
    }
  }
}

TEST(SelectiveScanGrad, BackwardMatchesFiniteDifferences) {
  uint32_t seed = 100;
  for (const ShapeCase& shape_case : kShapes) {
    const SelectiveScanShape& s = shape_case.shape;
    SCOPED_TRACE(shape_name(s, shape_case.threshold_tokens));
    const ScanCase f(s, seed++, shape_case.threshold_tokens);
    const std::vector<float> weights = random_weights(f.x.size(), seed++);
    const ScanResults r = run_scan(f, weights, 2);

    DoubleInputs inputs(f);
    const std::vector<double> w = widen(weights);
    // Cases with d_inner > 64 check 256 random elements of each tensor, to keep the test
    // fast. The other cases check every element.
    const size_t max_checked = s.d_inner > 64 ? 256 : std::numeric_limits<size_t>::max();
    const auto check = [&](const char* name, const std::vector<float>& actual, std::vector<double>& tensor) {
      const std::vector<size_t> indices = indices_to_check(tensor.size(), max_checked, seed++);
      const std::vector<double> expected = numeric_gradient(s, inputs, tensor, w, indices);
      const double scale = max_abs(expected);
      // With one token h[-1] = 0 is the only state A multiplies, so d_A_log is zero there.
      if (s.seq_len > 1) {
        EXPECT_GT(scale, 0.0) << name << " has an all-zero numeric gradient, so the check is void";
      }
      EXPECT_LE(max_abs_difference(actual, indices, expected), 1e-3 * scale) << name;
    };
    check("dx", r.dx, inputs.x);
    check("d_dt", r.d_dt, inputs.dt);
    check("dB", r.dB, inputs.B);
    check("dC", r.dC, inputs.C);
    check("d_dt_bias", r.d_dt_bias, inputs.dt_bias);
    check("d_A_log", r.d_A_log, inputs.A_log);
    check("d_D", r.d_D, inputs.D);
  }
}

void expect_bitwise_equal(const std::vector<float>& a, const std::vector<float>& b, const char* name) {
  ASSERT_EQ(a.size(), b.size()) << name;
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0) << name;
}

TEST(SelectiveScanGrad, ThreadCountDoesNotChangeResults) {
  // 16 channel groups of 65 channels per sequence, so dB and dC come from a cross-group
  // reduction and each group runs two channel blocks.
  const ScanCase f({3, 37, 1040, 16}, 7, true);
  const std::vector<float> dy = random_weights(f.x.size(), 8);
  const ScanResults single_thread = run_scan(f, dy, 1);

  for (int n_threads : {2, 3}) {
    SCOPED_TRACE("threads=" + std::to_string(n_threads));
    const ScanResults many = run_scan(f, dy, n_threads);
    expect_bitwise_equal(single_thread.y, many.y, "y");
    expect_bitwise_equal(single_thread.dx, many.dx, "dx");
    expect_bitwise_equal(single_thread.d_dt, many.d_dt, "d_dt");
    expect_bitwise_equal(single_thread.dB, many.dB, "dB");
    expect_bitwise_equal(single_thread.dC, many.dC, "dC");
    expect_bitwise_equal(single_thread.d_dt_bias, many.d_dt_bias, "d_dt_bias");
    expect_bitwise_equal(single_thread.d_A_log, many.d_A_log, "d_A_log");
    expect_bitwise_equal(single_thread.d_D, many.d_D, "d_D");
  }
}

TEST(SelectiveScanGrad, BackwardAddsParameterGradients) {
  const ScanCase f({2, 21, 24, 16}, 11, false);
  const SelectiveScanShape& s = f.shape;
  const std::vector<float> dy = random_weights(f.x.size(), 12);
  ThreadPool pool(2);
  std::vector<float> y(f.x.size());
  SelectiveScanSaved saved;
  selective_scan_forward(s, f.x.data(), f.dt.data(), f.dt_bias.data(), f.A_log.data(), f.B.data(),
                         f.C.data(), f.D.data(), y.data(), &saved, pool);

  std::vector<float> dx(f.x.size()), d_dt(f.x.size()), dB(f.B.size()), dC(f.C.size());
  std::vector<float> d_dt_bias(s.d_inner, 0.0f), d_A_log(s.d_inner * s.d_state, 0.0f), d_D(s.d_inner, 0.0f);
  const auto backward = [&] {
    selective_scan_backward(s, f.x.data(), f.dt.data(), f.dt_bias.data(), f.A_log.data(), f.B.data(),
                            f.C.data(), f.D.data(), saved, dy.data(), dx.data(), d_dt.data(), dB.data(),
                            dC.data(), d_dt_bias.data(), d_A_log.data(), d_D.data(), pool);
  };
  backward();
  const std::vector<float> dx_once = dx, d_dt_once = d_dt, dB_once = dB, dC_once = dC;
  const std::vector<float> d_dt_bias_once = d_dt_bias, d_A_log_once = d_A_log, d_D_once = d_D;
  backward();

  std::vector<float> twice;
  const auto doubled = [&](const std::vector<float>& v) {
    twice = v;
    for (float& e : twice) e *= 2.0f;
    return twice;
  };
  expect_bitwise_equal(d_dt_bias, doubled(d_dt_bias_once), "d_dt_bias");
  expect_bitwise_equal(d_A_log, doubled(d_A_log_once), "d_A_log");
  expect_bitwise_equal(d_D, doubled(d_D_once), "d_D");
  // The activation gradients are overwritten, not added.
  expect_bitwise_equal(dx, dx_once, "dx");
  expect_bitwise_equal(d_dt, d_dt_once, "d_dt");
  expect_bitwise_equal(dB, dB_once, "dB");
  expect_bitwise_equal(dC, dC_once, "dC");
}

TEST(SelectiveScanGrad, BackwardRejectsMismatchedSavedState) {
  const ScanCase f({1, 5, 8, 4}, 13, false);
  ThreadPool pool(1);
  std::vector<float> y(f.x.size());
  SelectiveScanSaved saved;
  selective_scan_forward(f.shape, f.x.data(), f.dt.data(), f.dt_bias.data(), f.A_log.data(), f.B.data(),
                         f.C.data(), f.D.data(), y.data(), &saved, pool);

  SelectiveScanShape shorter = f.shape;
  shorter.seq_len = 4;
  std::vector<float> buffer(f.x.size() + f.B.size(), 0.0f);
  float* out = buffer.data();
  EXPECT_THROW(selective_scan_backward(shorter, f.x.data(), f.dt.data(), f.dt_bias.data(), f.A_log.data(),
                                       f.B.data(), f.C.data(), f.D.data(), saved, y.data(), out, out, out,
                                       out, out, out, out, pool),
               Error);
}

}  // namespace
}  // namespace mambacpp::train
