// Forward and backward passes of the Mamba-1 selective scan for training.
//
// selective_scan_backward overwrites dx, d_dt, dB and dC, and adds into d_dt_bias,
// d_A_log and d_D, so that the parameter gradients of several calls (layers sharing a
// parameter, or several micro-batches) sum up.
//
// The backward pass runs the recurrence in reverse time: with dh[t] the gradient of the
// loss with respect to h[t] through all later tokens,
//   dh[t]         = dy[t] * C[t] + exp(delta[t + 1] * A) * dh[t + 1]
//   d(exponent)   = dh[t] * h[t - 1] * exp(delta[t] * A)      (exponent = delta[t] * A)
//   d_delta[t]    = sum_n d(exponent) * A + x[t] * sum_n dh[t] * B[t]
//   dB[t], dC[t]  = sums over channels of dh[t] * delta[t] * x[t] and dy[t] * h[t]
// It needs h[t - 1] and h[t] at each step. The forward pass stores the state only at the
// start of every chunk of kCheckpointInterval tokens, and the backward pass recomputes the
// states of one chunk at a time from there.
//
// Determinism: dB and dC sum over channels. Each sequence's channels are split into
// groups whose count does not depend on the pool size. Each group sums its channels in
// ascending order into its own [seq_len, d_state] buffer, and a second pass adds the
// groups in ascending order. The parameter gradients are summed over sequences in
// ascending order the same way, so every result is bitwise the same for any number of
// threads.

#include "train/selective_scan_grad.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <string_view>
#include <vector>

#include "mambacpp/error.h"
#include "ops/cpu_kernels.h"

namespace mambacpp::train {

namespace {

// Tokens per stored state. 16 keeps the saved states as large as `delta` (d_state = 16)
// and the recomputed chunk of one channel block (17 * 64 * 16 floats, 70 KB) in L2.
constexpr int64_t kCheckpointInterval = 16;
// Channels whose state updates are done together. One token's row of a block is 256
// bytes of x, dt and y, so the strided walk over tokens reads whole neighboring cache
// lines, and one exp_f32 call covers kChannelBlock * d_state exponents. 64 channels took
// the forward plus backward time at batch 8, seq_len 256, d_inner 256 from 46 ms to
// 32 ms of CPU time against 16 channels (AVX-512, one thread, shared 2-core AMD EPYC VM).
constexpr int64_t kChannelBlock = 64;
// Maximum number of channel groups per sequence in the backward pass. Each group has its
// own partial dB and dC buffer of seq_len * d_state floats.
constexpr int64_t kMaxChannelGroups = 16;
// Reductions over the state index keep this many partial sums, so that the compiler can
// vectorize them without reordering float additions. 16 is the usual d_state, so one
// token's state is one set of lanes.
constexpr int kLanes = 16;

// The tensors of one call, with A = -exp(A_log) already formed.
struct ScanTensors {
  SelectiveScanShape shape;
  const float* x;
  const float* dt;
  const float* dt_bias;
  const float* A;  // [d_inner, d_state]
  const float* B;
  const float* C;
  const float* D;
};

// Sums the lanes by halves, an order that vector code of any width can follow.
inline float sum_lanes(const float* lanes) {
  float halves[8], quarters[4];
  for (int i = 0; i < 8; ++i) halves[i] = lanes[i] + lanes[i + 8];
  for (int i = 0; i < 4; ++i) quarters[i] = halves[i] + halves[i + 4];
  return (quarters[0] + quarters[2]) + (quarters[1] + quarters[3]);
}

int64_t chunk_count(int64_t seq_len) {
  return (seq_len + kCheckpointInterval - 1) / kCheckpointInterval;
}

void check_shape(const SelectiveScanShape& s) {
  if (s.batch < 0 || s.seq_len < 0 || s.d_inner < 0 || s.d_state < 0) {
    throw Error("selective scan: invalid shape batch=" + std::to_string(s.batch) +
                " seq_len=" + std::to_string(s.seq_len) + " d_inner=" + std::to_string(s.d_inner) +
                " d_state=" + std::to_string(s.d_state) + ", expected sizes >= 0");
  }
}

std::vector<float> negative_exp(const float* A_log, int64_t count) {
  std::vector<float> A(count);
  for (int64_t i = 0; i < count; ++i) A[i] = -std::exp(A_log[i]);
  return A;
}

// Fills delta[i] = softplus(v[i]) and sigmoid[i] = softplus'(v[i]) with PyTorch's
// threshold: above 20, softplus(v) = v and its derivative is 1. Both come from
// u = exp(-|v|) of one exp_f32 call, which avoids a libm log1pf call per value:
//   softplus(v) = max(v, 0) + log1p(u),  sigmoid(v) = (v >= 0 ? 1 : u) / (1 + u),
// with log1p(u) = 2 atanh(s), s = u / (2 + u) <= 1/3, summed to s^15 (truncation below
// 2e-9 relative). `scratch` must have room for 2 * count floats. For v < -87, exp_f32
// may return its floor of about 1e-38 for u, so delta is then about 1e-38, not exp(v).
void softplus_and_sigmoid(const float* v, int64_t count, const CpuKernels& kernels, float* scratch,
                          float* __restrict delta, float* __restrict sigmoid) {
  float* __restrict neg_abs = scratch;
  float* __restrict u = scratch + count;
  for (int64_t i = 0; i < count; ++i) neg_abs[i] = -std::abs(v[i]);
  kernels.exp_f32(neg_abs, count, u);

  for (int64_t i = 0; i < count; ++i) {
    const float s = u[i] / (2.0f + u[i]);
    const float s2 = s * s;
    float series = 1.0f / 15.0f;
    series = series * s2 + 1.0f / 13.0f;
    series = series * s2 + 1.0f / 11.0f;
    series = series * s2 + 1.0f / 9.0f;
    series = series * s2 + 1.0f / 7.0f;
    series = series * s2 + 1.0f / 5.0f;
    series = series * s2 + 1.0f / 3.0f;
    series = series * s2 + 1.0f;
    const float log1p_u = 2.0f * s * series;
    const float positive_part = v[i] > 0.0f ? v[i] : 0.0f;
    const float numerator = v[i] >= 0.0f ? 1.0f : u[i];
    delta[i] = positive_part + log1p_u;
    sigmoid[i] = numerator / (1.0f + u[i]);
  }
  // The threshold is applied in its own loop with a quiet comparison (isgreater), so each
  // select picks between values already computed. Under the default -ftrapping-math,
  // GCC 12 does not vectorize a select whose arm still has arithmetic to do.
  for (int64_t i = 0; i < count; ++i) {
    const bool above = std::isgreater(v[i], 20.0f);
    const float softplus_below = delta[i];
    const float sigmoid_below = sigmoid[i];
    delta[i] = above ? v[i] : softplus_below;
    sigmoid[i] = above ? 1.0f : sigmoid_below;
  }
}

// exponent[c, n] = delta[c] * A[c, n] for `width` channels.
template <int64_t kN>
inline void fill_exponents(const float* __restrict delta, const float* __restrict A, int64_t width,
                           int64_t d_state, float* __restrict exponent) {
  const int64_t N = kN > 0 ? kN : d_state;
  for (int64_t c = 0; c < width; ++c) {
    for (int64_t n = 0; n < N; ++n) exponent[c * N + n] = delta[c] * A[c * N + n];
  }
}

// Advances one channel's state by one token, h = decay * h + delta_x * B, and returns
// sum_n h * C. kN is d_state when known at compile time, else 0.
template <int64_t kN>
inline float advance_state(int64_t d_state, const float* __restrict decay, const float* __restrict Bt,
                           const float* __restrict Ct, float delta_x, float* __restrict h) {
  const int64_t N = kN > 0 ? kN : d_state;
  float lanes[kLanes] = {};
  int64_t n = 0;
  for (; n + kLanes <= N; n += kLanes) {
    for (int j = 0; j < kLanes; ++j) {
      float next = decay[n + j] * h[n + j] + delta_x * Bt[n + j];
      h[n + j] = next;
      lanes[j] += next * Ct[n + j];
    }
  }
  // The tail exists only for a d_state that is not a multiple of kLanes.
  if constexpr (kN == 0 || kN % kLanes != 0) {
    for (int64_t j = 0; n + j < N; ++j) {
      const int64_t i = n + j;
      h[i] = decay[i] * h[i] + delta_x * Bt[i];
      lanes[j] += h[i] * Ct[i];
    }
  }
  return sum_lanes(lanes);
}

// Runs the forward scan of sequence b for channels [c0, c1) and stores delta and the
// chunk-start states into `saved`.
template <int64_t kN>
[[gnu::always_inline]] inline void forward_block(const ScanTensors& in, int64_t b, int64_t c0, int64_t c1, float* y,
                   SelectiveScanSaved& saved, const CpuKernels& kernels) {
  const int64_t L = in.shape.seq_len, E = in.shape.d_inner;
  const int64_t N = kN > 0 ? kN : in.shape.d_state;
  const int64_t n_chunks = chunk_count(L);
  const int64_t width = c1 - c0;

  std::vector<float> h(width * N, 0.0f);
  std::vector<float> exponent(width * N);
  std::vector<float> decay(width * N);
  std::vector<float> v(width), delta(width), sigmoid(width), scratch(2 * width);

  for (int64_t t = 0; t < L; ++t) {
    if (t % kCheckpointInterval == 0) {
      float* checkpoint =
          saved.h_checkpoints.data() + ((b * n_chunks + t / kCheckpointInterval) * E + c0) * N;
      std::copy(h.begin(), h.end(), checkpoint);
    }

    const int64_t row = (b * L + t) * E + c0;
    for (int64_t c = 0; c < width; ++c) v[c] = in.dt[row + c] + in.dt_bias[c0 + c];
    softplus_and_sigmoid(v.data(), width, kernels, scratch.data(), delta.data(), sigmoid.data());
    std::copy(delta.begin(), delta.end(), saved.delta.begin() + row);
    fill_exponents<kN>(delta.data(), in.A + c0 * N, width, N, exponent.data());
    kernels.exp_f32(exponent.data(), width * N, decay.data());

    const float* Bt = in.B + (b * L + t) * N;
    const float* Ct = in.C + (b * L + t) * N;
    for (int64_t c = 0; c < width; ++c) {
      const float x = in.x[row + c];
      const float out = advance_state<kN>(N, decay.data() + c * N, Bt, Ct, delta[c] * x, h.data() + c * N);
      y[row + c] = out + in.D[c0 + c] * x;
    }
  }
}

// The two sums over the state index that one backward step needs.
struct StepSums {
  float d_exponent_dot_A;  // sum_n d(exponent)[n] * A[n]
  float dh_dot_B;          // sum_n dh[n] * B[n]
};

// One reverse step of one channel. On entry dh is the gradient from later tokens,
// already multiplied by their decay. Adds this token's terms into dB_t, dC_t and
// d_A_sum (the gradient with respect to A), and leaves decay * dh in dh for token t - 1.
template <int64_t kN>
inline StepSums reverse_step(int64_t d_state, float dy, float delta, float delta_x,
                             const float* __restrict Bt, const float* __restrict Ct,
                             const float* __restrict A, const float* __restrict h_cur,
                             const float* __restrict h_prev, const float* __restrict decay,
                             float* __restrict dh, float* __restrict d_A_sum,
                             float* __restrict dB_t, float* __restrict dC_t) {
  const int64_t N = kN > 0 ? kN : d_state;
  float lanes_A[kLanes] = {};
  float lanes_B[kLanes] = {};
  int64_t n = 0;
  for (; n + kLanes <= N; n += kLanes) {
    for (int j = 0; j < kLanes; ++j) {
      const int64_t i = n + j;
      const float dh_i = dh[i] + dy * Ct[i];
      dC_t[i] += dy * h_cur[i];
      const float d_exponent = dh_i * h_prev[i] * decay[i];
      lanes_A[j] += d_exponent * A[i];
      lanes_B[j] += dh_i * Bt[i];
      d_A_sum[i] += d_exponent * delta;
      dB_t[i] += dh_i * delta_x;
      dh[i] = dh_i * decay[i];
    }
  }
  if constexpr (kN == 0 || kN % kLanes != 0) {
    for (int64_t j = 0; n + j < N; ++j) {
      const int64_t i = n + j;
      const float dh_i = dh[i] + dy * Ct[i];
      dC_t[i] += dy * h_cur[i];
      const float d_exponent = dh_i * h_prev[i] * decay[i];
      lanes_A[j] += d_exponent * A[i];
      lanes_B[j] += dh_i * Bt[i];
      d_A_sum[i] += d_exponent * delta;
      dB_t[i] += dh_i * delta_x;
      dh[i] = dh_i * decay[i];
    }
  }
  return {sum_lanes(lanes_A), sum_lanes(lanes_B)};
}

// Output pointers of the backward pass of one channel block.
struct BlockGrads {
  float* dx;
  float* d_dt;
  float* dB_partial;         // [seq_len, d_state] of this block's channel group
  float* dC_partial;         // [seq_len, d_state] of this block's channel group
  float* d_dt_bias_partial;  // [batch, d_inner]
  float* d_A_log_partial;    // [batch, d_inner, d_state]
  float* d_D_partial;        // [batch, d_inner]
};

// Runs the backward scan of sequence b for channels [c0, c1), chunk by chunk from the
// last, recomputing each chunk's states from its checkpoint.
template <int64_t kN>
[[gnu::always_inline]] inline void backward_block(const ScanTensors& in, const SelectiveScanSaved& saved, const float* dy,
                    int64_t b, int64_t c0, int64_t c1, const BlockGrads& out,
                    const CpuKernels& kernels) {
  const int64_t L = in.shape.seq_len, E = in.shape.d_inner;
  const int64_t N = kN > 0 ? kN : in.shape.d_state;
  const int64_t n_chunks = chunk_count(L);
  const int64_t width = c1 - c0;
  const int64_t block_size = width * N;

  std::vector<float> dh(block_size, 0.0f);
  std::vector<float> d_A_sum(block_size, 0.0f);
  std::vector<float> d_dt_bias_sum(width, 0.0f);
  std::vector<float> d_D_sum(width, 0.0f);
  // For the chunk starting at t0, states[i] is h[t0 + i - 1] and decays[i] is
  // exp(delta[t0 + i] * A).
  std::vector<float> states((kCheckpointInterval + 1) * block_size);
  std::vector<float> exponents(kCheckpointInterval * block_size);
  std::vector<float> decays(kCheckpointInterval * block_size);
  // [token in chunk, channel]: dt + dt_bias, softplus of it (unused), and its derivative.
  std::vector<float> v(kCheckpointInterval * width), delta_unused(kCheckpointInterval * width);
  std::vector<float> sigmoids(kCheckpointInterval * width), scratch(2 * kCheckpointInterval * width);

  for (int64_t k = n_chunks - 1; k >= 0; --k) {
    const int64_t t0 = k * kCheckpointInterval;
    const int64_t len = std::min(kCheckpointInterval, L - t0);

    const float* checkpoint = saved.h_checkpoints.data() + ((b * n_chunks + k) * E + c0) * N;
    std::copy(checkpoint, checkpoint + block_size, states.begin());

    for (int64_t i = 0; i < len; ++i) {
      const int64_t row = (b * L + t0 + i) * E + c0;
      fill_exponents<kN>(saved.delta.data() + row, in.A + c0 * N, width, N,
                         exponents.data() + i * block_size);
      for (int64_t c = 0; c < width; ++c) v[i * width + c] = in.dt[row + c] + in.dt_bias[c0 + c];
    }
    kernels.exp_f32(exponents.data(), len * block_size, decays.data());
    softplus_and_sigmoid(v.data(), len * width, kernels, scratch.data(), delta_unused.data(),
                         sigmoids.data());

    // Recompute the chunk's states with the same exp_f32 and advance_state calls as the
    // forward pass, so they match the forward states.
    for (int64_t i = 0; i < len; ++i) {
      const int64_t t = t0 + i;
      const int64_t row = (b * L + t) * E + c0;
      const float* Bt = in.B + (b * L + t) * N;
      const float* Ct = in.C + (b * L + t) * N;
      std::copy(states.begin() + i * block_size, states.begin() + (i + 1) * block_size,
                states.begin() + (i + 1) * block_size);
      for (int64_t c = 0; c < width; ++c) {
        const float delta_x = saved.delta[row + c] * in.x[row + c];
        advance_state<kN>(N, decays.data() + i * block_size + c * N, Bt, Ct, delta_x,
                          states.data() + (i + 1) * block_size + c * N);
      }
    }

    for (int64_t i = len - 1; i >= 0; --i) {
      const int64_t t = t0 + i;
      const int64_t row = (b * L + t) * E + c0;
      const float* Bt = in.B + (b * L + t) * N;
      const float* Ct = in.C + (b * L + t) * N;
      float* dB_t = out.dB_partial + t * N;
      float* dC_t = out.dC_partial + t * N;

      for (int64_t c = 0; c < width; ++c) {
        const float g = dy[row + c];
        const float x = in.x[row + c];
        const float delta = saved.delta[row + c];
        const StepSums sums = reverse_step<kN>(
            N, g, delta, delta * x, Bt, Ct, in.A + (c0 + c) * N,
            states.data() + (i + 1) * block_size + c * N, states.data() + i * block_size + c * N,
            decays.data() + i * block_size + c * N, dh.data() + c * N, d_A_sum.data() + c * N,
            dB_t, dC_t);

        out.dx[row + c] = g * in.D[c0 + c] + delta * sums.dh_dot_B;
        const float d_delta = sums.d_exponent_dot_A + x * sums.dh_dot_B;
        const float d_dt = d_delta * sigmoids[i * width + c];
        out.d_dt[row + c] = d_dt;
        d_dt_bias_sum[c] += d_dt;
        d_D_sum[c] += g * x;
      }
    }
  }

  // dA / dA_log = A because A = -exp(A_log).
  for (int64_t c = 0; c < width; ++c) {
    out.d_dt_bias_partial[b * E + c0 + c] = d_dt_bias_sum[c];
    out.d_D_partial[b * E + c0 + c] = d_D_sum[c];
    const float* A = in.A + (c0 + c) * N;
    float* d_A_log = out.d_A_log_partial + (b * E + c0 + c) * N;
    for (int64_t n = 0; n < N; ++n) d_A_log[n] = d_A_sum[c * N + n] * A[n];
  }
}

using ForwardBlockFn = void (*)(const ScanTensors&, int64_t, int64_t, int64_t, float*,
                                SelectiveScanSaved&, const CpuKernels&);
using BackwardBlockFn = void (*)(const ScanTensors&, const SelectiveScanSaved&, const float*,
                                 int64_t, int64_t, int64_t, const BlockGrads&, const CpuKernels&);

// Copies of the block passes compiled for each instruction set. The blocks are inlined
// into them, so the compiler vectorizes the state loops at that set's width. The lane
// sums fix the order of the float additions, but the copies still differ in rounding
// where the compiler fuses a multiply and an add into an FMA, and through exp_f32.
template <int64_t kN>
void forward_block_baseline(const ScanTensors& in, int64_t b, int64_t c0, int64_t c1, float* y,
                            SelectiveScanSaved& saved, const CpuKernels& kernels) {
  forward_block<kN>(in, b, c0, c1, y, saved, kernels);
}

template <int64_t kN>
void backward_block_baseline(const ScanTensors& in, const SelectiveScanSaved& saved, const float* dy,
                             int64_t b, int64_t c0, int64_t c1, const BlockGrads& out,
                             const CpuKernels& kernels) {
  backward_block<kN>(in, saved, dy, b, c0, c1, out, kernels);
}

#ifdef MAMBACPP_X86
template <int64_t kN>
[[gnu::target("avx2,fma")]] void forward_block_avx2(const ScanTensors& in, int64_t b, int64_t c0,
                                                    int64_t c1, float* y, SelectiveScanSaved& saved,
                                                    const CpuKernels& kernels) {
  forward_block<kN>(in, b, c0, c1, y, saved, kernels);
}

template <int64_t kN>
[[gnu::target("avx2,fma")]] void backward_block_avx2(const ScanTensors& in, const SelectiveScanSaved& saved,
                                                     const float* dy, int64_t b, int64_t c0, int64_t c1,
                                                     const BlockGrads& out, const CpuKernels& kernels) {
  backward_block<kN>(in, saved, dy, b, c0, c1, out, kernels);
}

template <int64_t kN>
[[gnu::target("avx512f,avx512bw,fma")]] void forward_block_avx512(const ScanTensors& in, int64_t b,
                                                                  int64_t c0, int64_t c1, float* y,
                                                                  SelectiveScanSaved& saved,
                                                                  const CpuKernels& kernels) {
  forward_block<kN>(in, b, c0, c1, y, saved, kernels);
}

template <int64_t kN>
[[gnu::target("avx512f,avx512bw,fma")]] void backward_block_avx512(
    const ScanTensors& in, const SelectiveScanSaved& saved, const float* dy, int64_t b, int64_t c0,
    int64_t c1, const BlockGrads& out, const CpuKernels& kernels) {
  backward_block<kN>(in, saved, dy, b, c0, c1, out, kernels);
}
#endif

// Picks the copy for the instruction set of `kernels`, which follows MAMBACPP_ISA, and the
// d_state = 16 instance when it applies.
ForwardBlockFn choose_forward_block(const CpuKernels& kernels, int64_t d_state) {
  const std::string_view isa = kernels.isa;
  const bool n16 = d_state == 16;
#ifdef MAMBACPP_X86
  if (isa == "avx512") return n16 ? forward_block_avx512<16> : forward_block_avx512<0>;
  if (isa == "avx2") return n16 ? forward_block_avx2<16> : forward_block_avx2<0>;
#endif
  return n16 ? forward_block_baseline<16> : forward_block_baseline<0>;
}

BackwardBlockFn choose_backward_block(const CpuKernels& kernels, int64_t d_state) {
  const std::string_view isa = kernels.isa;
  const bool n16 = d_state == 16;
#ifdef MAMBACPP_X86
  if (isa == "avx512") return n16 ? backward_block_avx512<16> : backward_block_avx512<0>;
  if (isa == "avx2") return n16 ? backward_block_avx2<16> : backward_block_avx2<0>;
#endif
  return n16 ? backward_block_baseline<16> : backward_block_baseline<0>;
}

}  // namespace

void selective_scan_forward(const SelectiveScanShape& s, const float* x, const float* dt,
                            const float* dt_bias, const float* A_log, const float* B,
                            const float* C, const float* D, float* y, SelectiveScanSaved* saved,
                            ThreadPool& pool) {
  check_shape(s);
  const int64_t L = s.seq_len, E = s.d_inner, N = s.d_state;
  saved->shape = s;
  saved->checkpoint_interval = kCheckpointInterval;
  saved->delta.assign(s.batch * L * E, 0.0f);
  saved->h_checkpoints.assign(s.batch * chunk_count(L) * E * N, 0.0f);
  if (s.batch == 0 || L == 0 || E == 0) return;

  const std::vector<float> A = negative_exp(A_log, E * N);
  const ScanTensors in{s, x, dt, dt_bias, A.data(), B, C, D};
  const CpuKernels& kernels = active_cpu_kernels();
  const ForwardBlockFn forward_block_fn = choose_forward_block(kernels, N);

  const int64_t blocks_per_sequence = (E + kChannelBlock - 1) / kChannelBlock;
  pool.parallel_for(s.batch * blocks_per_sequence, 1, [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      const int64_t b = item / blocks_per_sequence;
      const int64_t c0 = (item % blocks_per_sequence) * kChannelBlock;
      const int64_t c1 = std::min(E, c0 + kChannelBlock);
      forward_block_fn(in, b, c0, c1, y, *saved, kernels);
    }
  });
}

void selective_scan_backward(const SelectiveScanShape& s, const float* x, const float* dt,
                             const float* dt_bias, const float* A_log, const float* B,
                             const float* C, const float* D, const SelectiveScanSaved& saved,
                             const float* dy, float* dx, float* d_dt, float* dB, float* dC,
                             float* d_dt_bias, float* d_A_log, float* d_D, ThreadPool& pool) {
  check_shape(s);
  const SelectiveScanShape& f = saved.shape;
  if (f.batch != s.batch || f.seq_len != s.seq_len || f.d_inner != s.d_inner ||
      f.d_state != s.d_state || saved.checkpoint_interval != kCheckpointInterval) {
    throw Error("selective scan backward: the saved forward state has shape batch=" +
                std::to_string(f.batch) + " seq_len=" + std::to_string(f.seq_len) +
                " d_inner=" + std::to_string(f.d_inner) + " d_state=" + std::to_string(f.d_state) +
                " but the backward call has batch=" + std::to_string(s.batch) +
                " seq_len=" + std::to_string(s.seq_len) + " d_inner=" + std::to_string(s.d_inner) +
                " d_state=" + std::to_string(s.d_state) + "; pass the saved state of the matching forward call");
  }
  const int64_t L = s.seq_len, E = s.d_inner, N = s.d_state;
  std::fill(dB, dB + s.batch * L * N, 0.0f);
  std::fill(dC, dC + s.batch * L * N, 0.0f);
  if (s.batch == 0 || L == 0 || E == 0) return;

  const std::vector<float> A = negative_exp(A_log, E * N);
  const ScanTensors in{s, x, dt, dt_bias, A.data(), B, C, D};
  const CpuKernels& kernels = active_cpu_kernels();
  const BackwardBlockFn backward_block_fn = choose_backward_block(kernels, N);

  // Channel groups: at least kChannelBlock channels each and at most kMaxChannelGroups per
  // sequence, independent of the pool size.
  int64_t group_size = std::max(kChannelBlock, (E + kMaxChannelGroups - 1) / kMaxChannelGroups);
  const int64_t n_groups = (E + group_size - 1) / group_size;

  std::vector<float> dB_partial(s.batch * n_groups * L * N, 0.0f);
  std::vector<float> dC_partial(s.batch * n_groups * L * N, 0.0f);
  std::vector<float> d_dt_bias_partial(s.batch * E);
  std::vector<float> d_A_log_partial(s.batch * E * N);
  std::vector<float> d_D_partial(s.batch * E);

  pool.parallel_for(s.batch * n_groups, 1, [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      const int64_t b = item / n_groups;
      const int64_t g = item % n_groups;
      const BlockGrads out{dx, d_dt, dB_partial.data() + item * L * N, dC_partial.data() + item * L * N,
                           d_dt_bias_partial.data(), d_A_log_partial.data(), d_D_partial.data()};
      const int64_t group_end = std::min(E, (g + 1) * group_size);
      for (int64_t c0 = g * group_size; c0 < group_end; c0 += kChannelBlock) {
        const int64_t c1 = std::min(group_end, c0 + kChannelBlock);
        backward_block_fn(in, saved, dy, b, c0, c1, out, kernels);
      }
    }
  });

  // Sum the channel groups of each token in ascending group order.
  pool.parallel_for(s.batch * L, 64, [&](int64_t begin, int64_t end) {
    for (int64_t bt = begin; bt < end; ++bt) {
      const int64_t b = bt / L, t = bt % L;
      for (int64_t g = 0; g < n_groups; ++g) {
        const float* dB_g = dB_partial.data() + ((b * n_groups + g) * L + t) * N;
        const float* dC_g = dC_partial.data() + ((b * n_groups + g) * L + t) * N;
        for (int64_t n = 0; n < N; ++n) {
          dB[bt * N + n] += dB_g[n];
          dC[bt * N + n] += dC_g[n];
        }
      }
    }
  });

  // Sum the sequences in ascending order, then add the sum into the caller's gradients.
  for (int64_t c = 0; c < E; ++c) {
    float bias_sum = 0.0f, D_sum = 0.0f;
    for (int64_t b = 0; b < s.batch; ++b) {
      bias_sum += d_dt_bias_partial[b * E + c];
      D_sum += d_D_partial[b * E + c];
    }
    d_dt_bias[c] += bias_sum;
    d_D[c] += D_sum;
    for (int64_t n = 0; n < N; ++n) {
      float A_sum = 0.0f;
      for (int64_t b = 0; b < s.batch; ++b) A_sum += d_A_log_partial[(b * E + c) * N + n];
      d_A_log[c * N + n] += A_sum;
    }
  }
}

}  // namespace mambacpp::train
