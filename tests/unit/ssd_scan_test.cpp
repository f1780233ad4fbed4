// The Mamba-2 scan: the chunked and recurrent kernels against their scalar twin, and all
// of them against values derived by hand from the recurrence.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "mambacpp/thread_pool.h"
#include "ops/cpu_kernels.h"
#include "ops/ssd_scan.h"

namespace mambacpp {
namespace {

// Random scan inputs with contiguous x [L, H * P] and a shared [L, 2 * G * N] row for B
// and C, like the conv output the mixer passes.
struct ScanInputs {
  int64_t L, H, P, G, N;
  std::vector<float> x, bc, dt, A, D;
  bool D_has_hdim = false;

  ScanInputs(int64_t L_, int64_t H_, int64_t P_, int64_t G_, int64_t N_, uint32_t seed,
             bool per_channel_D = false)
      : L(L_), H(H_), P(P_), G(G_), N(N_), D_has_hdim(per_channel_D) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::uniform_real_distribution<float> step(0.001f, 0.5f);
    std::uniform_real_distribution<float> rate(1.0f, 16.0f);
    x.resize(static_cast<size_t>(L * H * P));
    bc.resize(static_cast<size_t>(L * 2 * G * N));
    dt.resize(static_cast<size_t>(L * H));
    A.resize(static_cast<size_t>(H));
    D.resize(static_cast<size_t>(per_channel_D ? H * P : H));
    for (float& v : x) v = normal(rng);
    for (float& v : bc) v = normal(rng);
    for (float& v : dt) v = step(rng);
    for (float& v : A) v = -rate(rng);
    for (float& v : D) v = normal(rng);
  }

  SsdScanArgs args(int64_t chunk_size) const {
    SsdScanArgs a;
    a.L = L;
    a.H = H;
    a.P = P;
    a.G = G;
    a.N = N;
    a.x = x.data();
    a.x_stride = H * P;
    a.B = bc.data();
    a.C = bc.data() + G * N;
    a.bc_stride = 2 * G * N;
    a.dt = dt.data();
    a.A = A.data();
    a.D = D.data();
    a.D_has_hdim = D_has_hdim;
    a.chunk_size = chunk_size;
    return a;
  }

  std::vector<float> random_state(uint32_t seed) const {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> state(static_cast<size_t>(H * P * N));
    for (float& v : state) v = normal(rng);
    return state;
  }
};

void expect_near_all(const std::vector<float>& actual, const std::vector<float>& expected,
                     double atol, double rtol, const std::string& what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  for (size_t i = 0; i < expected.size(); ++i)
    ASSERT_LE(std::abs(actual[i] - expected[i]), atol + rtol * std::abs(expected[i]))
        << what << " at index " << i << ": " << actual[i] << " vs " << expected[i];
}

// One head, one channel, N = 1, two tokens, D = 0.5:
//   S_0 = Δ_0 x_0 B_0,                        y_0 = S_0 C_0 + 0.5 x_0
//   S_1 = exp(Δ_1 A) S_0 + Δ_1 x_1 B_1,       y_1 = S_1 C_1 + 0.5 x_1
TEST(SsdScan, MatchesHandDerivedRecurrence) {
  const float x[] = {2.0f, -1.0f};
  const float bc[] = {0.5f, 3.0f, 1.5f, -2.0f};  // B_0, C_0, B_1, C_1
  const float dt[] = {0.1f, 0.2f};
  const float A[] = {-1.5f};
  const float D[] = {0.5f};
  SsdScanArgs a;
  a.L = 2;
  a.H = a.P = a.G = a.N = 1;
  a.x = x;
  a.x_stride = 1;
  a.B = bc;
  a.C = bc + 1;
  a.bc_stride = 2;
  a.dt = dt;
  a.A = A;
  a.D = D;
  a.chunk_size = 2;

  const double s0 = 0.1 * 2.0 * 0.5;
  const double y0 = s0 * 3.0 + 0.5 * 2.0;
  const double s1 = std::exp(0.2 * -1.5) * s0 + 0.2 * -1.0 * 1.5;
  const double y1 = s1 * -2.0 + 0.5 * -1.0;

  ThreadPool pool(2);
  for (int variant = 0; variant < 3; ++variant) {
    float state = 0.0f;
    float y[2];
    if (variant == 0) ssd_scan_reference(a, &state, y);
    if (variant == 1) ssd_scan_recurrent(a, &state, y, pool);
    if (variant == 2) ssd_scan_chunked(a, &state, y, pool);
    EXPECT_NEAR(y[0], y0, 1e-6) << "variant " << variant;
    EXPECT_NEAR(y[1], y1, 1e-6) << "variant " << variant;
    EXPECT_NEAR(state, s1, 1e-6) << "variant " << variant;
  }
}

// The chunked kernel against the scalar recurrence for lengths around the chunk size,
// several chunk sizes, groups, D per channel and a non-zero starting state.
TEST(SsdScan, ChunkedMatchesReference) {
  ThreadPool pool(2);
  struct Shape {
    int64_t H, P, G, N;
    bool D_has_hdim;
  };
  const Shape shapes[] = {{4, 8, 1, 16, false}, {8, 4, 2, 8, true}, {6, 16, 3, 32, false}};
  for (const Shape& shape : shapes) {
    for (int64_t chunk : {1, 8, 16, 64}) {
      for (int64_t L : {int64_t{1}, int64_t{2}, chunk - 1, chunk, chunk + 1, 3 * chunk + 5}) {
        if (L < 1) continue;
        ScanInputs in(L, shape.H, shape.P, shape.G, shape.N, static_cast<uint32_t>(L * 31 + chunk),
                      shape.D_has_hdim);
        std::vector<float> start = in.random_state(7);
        std::vector<float> state_ref = start, state_fast = start;
        std::vector<float> y_ref(static_cast<size_t>(L * shape.H * shape.P));
        std::vector<float> y_fast(y_ref.size());
        ssd_scan_reference(in.args(chunk), state_ref.data(), y_ref.data());
        ssd_scan_chunked(in.args(chunk), state_fast.data(), y_fast.data(), pool);
        std::string what = "H " + std::to_string(shape.H) + " G " + std::to_string(shape.G) +
                           " chunk " + std::to_string(chunk) + " L " + std::to_string(L);
        expect_near_all(y_fast, y_ref, 1e-5, 1e-4, what + " y");
        expect_near_all(state_fast, state_ref, 1e-5, 1e-4, what + " state");
      }
    }
  }
}

TEST(SsdScan, RecurrentMatchesReference) {
  ThreadPool pool(2);
  ScanInputs in(5, 8, 4, 2, 8, 99, /*per_channel_D=*/true);
  std::vector<float> state_ref = in.random_state(3), state_fast = state_ref;
  std::vector<float> y_ref(static_cast<size_t>(5 * 8 * 4)), y_fast(y_ref.size());
  ssd_scan_reference(in.args(256), state_ref.data(), y_ref.data());
  ssd_scan_recurrent(in.args(256), state_fast.data(), y_fast.data(), pool);
  expect_near_all(y_fast, y_ref, 1e-6, 1e-5, "y");
  expect_near_all(state_fast, state_ref, 1e-6, 1e-5, "state");
}

// Each kernel set's recurrence, on all heads and on a range of them, against the scalar
// twin: state sizes below, at and past the vector widths (8, 16) and with a partial last
// vector, and both shapes of D.
TEST(SsdScan, EveryKernelSetMatchesReference) {
  for (const CpuKernels* k : available_cpu_kernels())
  for (int64_t N : {1, 8, 13, 16, 21, 128})
  for (bool per_channel_D : {false, true}) {
    const int64_t L = 3, H = 6, P = 5, G = 2;
    ScanInputs in(L, H, P, G, N, 7, per_channel_D);
    const std::vector<float> state_in = in.random_state(8);
    std::vector<float> state_ref = state_in, y_ref(static_cast<size_t>(L * H * P));
    ssd_scan_reference(in.args(256), state_ref.data(), y_ref.data());

    std::vector<float> state_all = state_in, y_all(y_ref.size());
    k->ssd_recurrent_heads(in.args(256), state_all.data(), y_all.data(), 0, H);
    const std::string label = std::string(k->isa) + " N " + std::to_string(N);
    expect_near_all(y_all, y_ref, 1e-6 * N, 1e-5, label + " y");
    expect_near_all(state_all, state_ref, 1e-6, 1e-5, label + " state");

    // Heads 2 and 3 only: their outputs and states match, the rest stay untouched.
    std::vector<float> state_part = state_in, y_part(y_ref.size(), -5.0f);
    k->ssd_recurrent_heads(in.args(256), state_part.data(), y_part.data(), 2, 4);
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = h * P * N; i < (h + 1) * P * N; ++i)
        ASSERT_NEAR(state_part[i], h >= 2 && h < 4 ? state_ref[i] : state_in[i], 1e-5) << label;
    for (int64_t t = 0; t < L; ++t)
      for (int64_t i = 0; i < H * P; ++i) {
        const int64_t h = i / P;
        const float expected = h >= 2 && h < 4 ? y_ref[t * H * P + i] : -5.0f;
        ASSERT_NEAR(y_part[t * H * P + i], expected, 1e-6 * N + 1e-5 * std::abs(expected)) << label;
      }
  }
}

// Scanning a prompt in two calls, the second starting from the first call's state, gives
// the one-call result: the carried state decays from the first new token on.
TEST(SsdScan, ContinuingFromStateMatchesOneCall) {
  ThreadPool pool(2);
  const int64_t L = 45, H = 4, P = 8, G = 2, N = 16, HP = H * P;
  ScanInputs in(L, H, P, G, N, 5);
  std::vector<float> state_once(static_cast<size_t>(H * P * N), 0.0f);
  std::vector<float> y_once(static_cast<size_t>(L * HP));
  ssd_scan_chunked(in.args(16), state_once.data(), y_once.data(), pool);

  for (int64_t split : {1, 7, 16, 17, 33}) {
    std::vector<float> state(static_cast<size_t>(H * P * N), 0.0f);
    std::vector<float> y(static_cast<size_t>(L * HP));
    SsdScanArgs first = in.args(16);
    first.L = split;
    ssd_scan_chunked(first, state.data(), y.data(), pool);
    SsdScanArgs second = in.args(16);
    second.L = L - split;
    second.x += split * second.x_stride;
    second.B += split * second.bc_stride;
    second.C += split * second.bc_stride;
    second.dt += split * H;
    ssd_scan_chunked(second, state.data(), y.data() + split * HP, pool);
    expect_near_all(y, y_once, 1e-5, 1e-4, "split at " + std::to_string(split) + " y");
    expect_near_all(state, state_once, 1e-5, 1e-4, "split at " + std::to_string(split) + " state");
  }
}

// With H = 4 heads and G = 2 groups, heads 0 and 1 read group 0 and heads 2 and 3 read
// group 1 (h / (H / G)). B of group 1 is zero, so only heads 0 and 1 gain state. Mapping
// heads to groups as h % G would give heads 0 and 2 the state instead.
TEST(SsdScan, ConsecutiveHeadsShareAGroup) {
  ThreadPool pool(2);
  const int64_t L = 3, H = 4, P = 2, G = 2, N = 4;
  ScanInputs in(L, H, P, G, N, 11);
  for (int64_t t = 0; t < L; ++t)
    for (int64_t n = 0; n < N; ++n) in.bc[t * 2 * G * N + 1 * N + n] = 0.0f;  // B of group 1

  for (int variant = 0; variant < 3; ++variant) {
    std::vector<float> state(static_cast<size_t>(H * P * N), 0.0f);
    std::vector<float> y(static_cast<size_t>(L * H * P));
    if (variant == 0) ssd_scan_reference(in.args(2), state.data(), y.data());
    if (variant == 1) ssd_scan_recurrent(in.args(2), state.data(), y.data(), pool);
    if (variant == 2) ssd_scan_chunked(in.args(2), state.data(), y.data(), pool);
    for (int64_t h = 0; h < H; ++h) {
      double magnitude = 0.0;
      for (int64_t i = 0; i < P * N; ++i) magnitude += std::abs(state[h * P * N + i]);
      if (h < 2) {
        EXPECT_GT(magnitude, 1e-3) << "variant " << variant << " head " << h;
      } else {
        EXPECT_EQ(magnitude, 0.0) << "variant " << variant << " head " << h;
      }
    }
  }
}

}  // namespace
}  // namespace mambacpp
