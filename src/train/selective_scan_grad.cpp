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
#include <vector>

#include "mambacpp/error.h"
#include "ops/activations.h"
#include "ops/cpu_kernels.h"

namespace mambacpp::train {

namespace {

// Tokens per stored state. 16 keeps the saved states as large as `delta` (d_state = 16)
// and the recomputed chunk of one channel block (17 * 16 * 16 floats) in L1.
constexpr int64_t kCheckpointInterval = 16;
// Channels whose state updates are done together, so that one exp_f32 call covers
// kChannelBlock * d_state exponents.
constexpr int64_t kChannelBlock = 16;
// Maximum number of channel groups per sequence in the backward pass. Each group has its
// own partial dB and dC buffer of seq_len * d_state floats.
constexpr int64_t kMaxChannelGroups = 16;
// Reductions over the state index keep this many partial sums, so that the compiler can
// vectorize them without reordering float additions.
constexpr int kLanes = 8;

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

float sum_lanes(const float* lanes) {
  return ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
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
    for (; n < N; ++n) {
      h[n] = decay[n] * h[n] + delta_x * Bt[n];
      lanes[0] += h[n] * Ct[n];
    }
  }
  return sum_lanes(lanes);
}

// Runs the forward scan of sequence b for channels [c0, c1) and stores delta and the
// chunk-start states into `saved`.
template <int64_t kN>
void forward_block(const ScanTensors& in, int64_t b, int64_t c0, int64_t c1, float* y,
                   SelectiveScanSaved& saved, const CpuKernels& kernels) {
  const int64_t L = in.shape.seq_len, E = in.shape.d_inner;
  const int64_t N = kN > 0 ? kN : in.shape.d_state;
  const int64_t n_chunks = chunk_count(L);
  const int64_t width = c1 - c0;

  std::vector<float> h(width * N, 0.0f);
  std::vector<float> exponent(width * N);
  std::vector<float> decay(width * N);

  for (int64_t t = 0; t < L; ++t) {
    if (t % kCheckpointInterval == 0) {
      float* checkpoint =
          saved.h_checkpoints.data() + ((b * n_chunks + t / kCheckpointInterval) * E + c0) * N;
      std::copy(h.begin(), h.end(), checkpoint);
    }

    const int64_t row = (b * L + t) * E + c0;
    for (int64_t c = 0; c < width; ++c) {
      const float delta = softplus(in.dt[row + c] + in.dt_bias[c0 + c]);
      saved.delta[row + c] = delta;
      const float* A = in.A + (c0 + c) * N;
      for (int64_t n = 0; n < N; ++n) exponent[c * N + n] = delta * A[n];
    }
    kernels.exp_f32(exponent.data(), width * N, decay.data());

    const float* Bt = in.B + (b * L + t) * N;
    const float* Ct = in.C + (b * L + t) * N;
    for (int64_t c = 0; c < width; ++c) {
      const float x = in.x[row + c];
      const float delta = saved.delta[row + c];
      const float out = advance_state<kN>(N, decay.data() + c * N, Bt, Ct, delta * x, h.data() + c * N);
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
    for (; n < N; ++n) {
      const float dh_i = dh[n] + dy * Ct[n];
      dC_t[n] += dy * h_cur[n];
      const float d_exponent = dh_i * h_prev[n] * decay[n];
      lanes_A[0] += d_exponent * A[n];
      lanes_B[0] += dh_i * Bt[n];
      d_A_sum[n] += d_exponent * delta;
      dB_t[n] += dh_i * delta_x;
      dh[n] = dh_i * decay[n];
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
void backward_block(const ScanTensors& in, const SelectiveScanSaved& saved, const float* dy,
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

  for (int64_t k = n_chunks - 1; k >= 0; --k) {
    const int64_t t0 = k * kCheckpointInterval;
    const int64_t len = std::min(kCheckpointInterval, L - t0);

    const float* checkpoint = saved.h_checkpoints.data() + ((b * n_chunks + k) * E + c0) * N;
    std::copy(checkpoint, checkpoint + block_size, states.begin());

    for (int64_t i = 0; i < len; ++i) {
      const int64_t row = (b * L + t0 + i) * E + c0;
      for (int64_t c = 0; c < width; ++c) {
        const float delta = saved.delta[row + c];
        const float* A = in.A + (c0 + c) * N;
        float* exponent = exponents.data() + i * block_size + c * N;
        for (int64_t n = 0; n < N; ++n) exponent[n] = delta * A[n];
      }
    }
    kernels.exp_f32(exponents.data(), len * block_size, decays.data());

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
        // softplus'(v) = sigmoid(v), and 1 above the threshold where softplus(v) = v.
        const float v = in.dt[row + c] + in.dt_bias[c0 + c];
        const float d_dt = v > 20.0f ? d_delta : d_delta * sigmoid(v);
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

  const int64_t blocks_per_sequence = (E + kChannelBlock - 1) / kChannelBlock;
  pool.parallel_for(s.batch * blocks_per_sequence, 1, [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      const int64_t b = item / blocks_per_sequence;
      const int64_t c0 = (item % blocks_per_sequence) * kChannelBlock;
      const int64_t c1 = std::min(E, c0 + kChannelBlock);
      if (N == 16) {
        forward_block<16>(in, b, c0, c1, y, *saved, kernels);
      } else {
        forward_block<0>(in, b, c0, c1, y, *saved, kernels);
      }
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
        if (N == 16) {
          backward_block<16>(in, saved, dy, b, c0, c1, out, kernels);
        } else {
          backward_block<0>(in, saved, dy, b, c0, c1, out, kernels);
        }
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
