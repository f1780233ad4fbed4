// Forward and backward of the Mamba-2 chunked scan (state space duality, SSD) for training.
//
// Gradients: dx, d_dt, dB and dC are overwritten. d_dt_bias, d_A_log and d_D are added to.
//
// Within a chunk of T tokens (local indices s <= t), with a_t = delta_t A and cum_t the
// inclusive in-chunk cumulative sum of a:
//   decay[t, s] = exp(cum_t - cum_s),  M[t, s] = (C_t . B_s) decay[t, s] delta_s
//   Y = M X + diag(exp(cum)) C S_inᵀ + D X
//   S_out = exp(cum_{T-1}) S_in + (diag(w) X)ᵀ B,  w_s = exp(cum_{T-1} - cum_s) delta_s
// The backward pass walks the chunks in reverse order, carrying dS_out of the chunk (the
// dS_in of the next one), and per chunk computes
//   dM = dY Xᵀ, dX = Mᵀ dY + diag(w) B dS_outᵀ + D dY, dCB = dM ∘ decay ∘ delta_s,
//   dC = dCB B + diag(exp(cum)) dY S_in, dB = dCBᵀ C + diag(w) X dS_out,
//   dS_in = (diag(exp(cum)) dY)ᵀ C + exp(cum_{T-1}) dS_out,
// all as sgemm calls. The element-wise terms give d(delta) and d(cum). A reverse cumulative
// sum turns d(cum) into d(a), which splits into d(delta) and dA. The softplus derivative
// then gives d_dt and d_dt_bias, and dA times A gives d_A_log.
//
// The backward pass runs in two phases. The first is split over (sequence, head) pairs and
// stores each head's dCB, dZ = diag(exp(cum)) dY, diag(w) X and dS_out. The second is split
// over (sequence, chunk, group) and forms dC and dB with one set of sgemm calls per group,
// summing dCB over the group's heads in head order. No sum depends on how the pool splits
// the work, so the results are the same for any pool size.
#include "train/ssd_scan_grad.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "mambacpp/error.h"
#include "ops/blas.h"

namespace mambacpp::train {

namespace {

// Sizes derived from SsdShape, with the row strides of the [batch, L, ...] tensors.
struct Dims {
  int64_t batch, L, H, P, G, N, chunk, n_chunks, heads_per_group;
  int64_t HP, GN;  // row strides of x/y and of B/C
};

Dims make_dims(const SsdShape& s) {
  MAMBACPP_CHECK(s.batch >= 0 && s.seq_len >= 0);
  MAMBACPP_CHECK(s.n_heads > 0 && s.head_dim > 0 && s.n_groups > 0 && s.d_state > 0);
  MAMBACPP_CHECK(s.n_heads % s.n_groups == 0);
  MAMBACPP_CHECK(s.chunk_size > 0);
  Dims d;
  d.batch = s.batch;
  d.L = s.seq_len;
  d.H = s.n_heads;
  d.P = s.head_dim;
  d.G = s.n_groups;
  d.N = s.d_state;
  d.chunk = s.chunk_size;
  d.n_chunks = (s.seq_len + s.chunk_size - 1) / s.chunk_size;
  d.heads_per_group = s.n_heads / s.n_groups;
  d.HP = d.H * d.P;
  d.GN = d.G * d.N;
  return d;
}

bool same_shape(const SsdShape& a, const SsdShape& b) {
  return a.batch == b.batch && a.seq_len == b.seq_len && a.n_heads == b.n_heads &&
         a.head_dim == b.head_dim && a.n_groups == b.n_groups && a.d_state == b.d_state &&
         a.chunk_size == b.chunk_size;
}

// Softplus with PyTorch's default threshold of 20: above it the function returns v, which
// log1p(exp(v)) also rounds to in f32.
float softplus(float v) { return v > 20.0f ? v : std::log1p(std::exp(v)); }
float softplus_derivative(float v) { return v > 20.0f ? 1.0f : 1.0f / (1.0f + std::exp(-v)); }

// scores[b, c, g] = C Bᵀ [T, T] of chunk c, stored with row stride T in blocks of chunk².
void compute_scores(const Dims& d, const float* B, const float* C, std::vector<float>& scores,
                    ThreadPool& pool) {
  const int64_t block = d.chunk * d.chunk;
  scores.resize(static_cast<size_t>(d.batch * d.n_chunks * d.G * block));
  pool.parallel_for(d.batch * d.n_chunks * d.G, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t g = i % d.G;
      const int64_t c = (i / d.G) % d.n_chunks;
      const int64_t b = i / (d.G * d.n_chunks);
      const int64_t t0 = c * d.chunk;
      const int64_t T = std::min(d.chunk, d.L - t0);
      const int64_t offset = ((b * d.L + t0) * d.G + g) * d.N;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, d.N, 1.0f, C + offset, d.GN,
                  B + offset, d.GN, 0.0f, scores.data() + i * block, T);
    }
  });
}

// Buffers of one worker, sized for a full chunk.
struct Workspace {
  std::vector<float> v;              // [T] dt + dt_bias
  std::vector<float> delta;          // [T] softplus(v)
  std::vector<double> step_decay;    // [T] exp(delta_t A)
  std::vector<double> decay_row;     // [T] decay[t, :] of the row being built
  std::vector<float> from_start;     // [T] exp(cum_t)
  std::vector<float> to_end;         // [T] exp(cum_{T-1} - cum_s)
  std::vector<float> decay;          // [T, T] exp(cum_t - cum_s) for s <= t, else 0
  std::vector<float> mix;            // [T, T] M
  std::vector<float> scratch_a;      // [T, P] scratch
  std::vector<float> scratch_b;      // [T, P] scratch
  std::vector<double> d_delta;       // [T]
  std::vector<double> d_cum;         // [T]
  std::vector<float> d_delta_intra;  // [T] intra-chunk part of d(delta)
  std::vector<double> d_cum_minus;   // [T] column sums of dM ∘ M
  std::vector<float> row_terms;      // [T] one row of dM ∘ M

  explicit Workspace(const Dims& d) {
    const auto T = static_cast<size_t>(d.chunk);
    const auto P = static_cast<size_t>(d.P);
    v.resize(T);
    delta.resize(T);
    step_decay.resize(T);
    decay_row.resize(T);
    from_start.resize(T);
    to_end.resize(T);
    decay.resize(T * T);
    mix.resize(T * T);
    scratch_a.resize(T * P);
    scratch_b.resize(T * P);
    d_delta.resize(T);
    d_cum.resize(T);
    d_delta_intra.resize(T);
    d_cum_minus.resize(T);
    row_terms.resize(T);
  }
};

// Fills v, delta, from_start, to_end, decay and mix of head h for tokens [t0, t0 + T) of
// sequence b.
//
// exp(cum_t - cum_s) is the product of the step decays exp(delta_r A) for r in (s, t], so
// row t of decay is row t - 1 times exp(delta_t A). That needs T exponentials per chunk
// instead of T²/2. The rows are built in double, where the rounding of a product of up to
// T factors stays far below float precision.
void prepare_chunk(const Dims& d, int64_t b, int64_t h, int64_t t0, int64_t T, float A,
                   const float* dt, const float* dt_bias, const float* scores, Workspace& ws) {
  double from_start = 1.0;
  for (int64_t t = 0; t < T; ++t) {
    ws.v[t] = dt[(b * d.L + t0 + t) * d.H + h] + dt_bias[h];
    ws.delta[t] = softplus(ws.v[t]);
    ws.step_decay[t] = std::exp(static_cast<double>(ws.delta[t]) * A);
    from_start *= ws.step_decay[t];
    ws.from_start[t] = static_cast<float>(from_start);
  }

  double* running_row = ws.decay_row.data();
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t s = 0; s < t; ++s) running_row[s] *= ws.step_decay[t];
    running_row[t] = 1.0;

    float* decay_row = ws.decay.data() + t * T;
    float* mix_row = ws.mix.data() + t * T;
    const float* scores_row = scores + t * T;
    for (int64_t s = 0; s <= t; ++s) {
      decay_row[s] = static_cast<float>(running_row[s]);
      mix_row[s] = scores_row[s] * decay_row[s] * ws.delta[s];
    }
    for (int64_t s = t + 1; s < T; ++s) {
      decay_row[s] = 0.0f;
      mix_row[s] = 0.0f;
    }
  }

  // running_row now contains row T - 1.
  for (int64_t s = 0; s < T; ++s) ws.to_end[s] = static_cast<float>(running_row[s]);
}

// Read-only inputs of both passes.
struct Inputs {
  const float *x, *dt, *dt_bias, *A_log, *B, *C, *D;
};

// The forward scan of head h of sequence b. Writes y and the chunk-start states.
void forward_head(const Dims& d, int64_t b, int64_t h, const Inputs& in, const float* scores,
                  float* y, float* states, Workspace& ws) {
  const int64_t P = d.P, N = d.N, g = h / d.heads_per_group;
  const float A = -std::exp(in.A_log[h]);
  for (int64_t c = 0; c < d.n_chunks; ++c) {
    const int64_t t0 = c * d.chunk;
    const int64_t T = std::min(d.chunk, d.L - t0);
    const float* score_block = scores + ((b * d.n_chunks + c) * d.G + g) * d.chunk * d.chunk;
    prepare_chunk(d, b, h, t0, T, A, in.dt, in.dt_bias, score_block, ws);

    const int64_t xy_offset = ((b * d.L + t0) * d.H + h) * P;
    const int64_t bc_offset = ((b * d.L + t0) * d.G + g) * N;
    const float* x = in.x + xy_offset;
    const float* Bc = in.B + bc_offset;
    const float* Cc = in.C + bc_offset;
    float* yc = y + xy_offset;
    float* state_in = states + ((b * d.n_chunks + c) * d.H + h) * P * N;
    if (c == 0) std::fill(state_in, state_in + P * N, 0.0f);

    // Y = M X, the chunk's own tokens.
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, P, T, 1.0f, ws.mix.data(), T, x,
                d.HP, 0.0f, yc, d.HP);

    // Y += diag(exp(cum)) C S_inᵀ, the incoming state (zero in chunk 0).
    float* read = ws.scratch_a.data();
    if (c > 0) {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, P, N, 1.0f, Cc, d.GN, state_in, N,
                  0.0f, read, P);
      for (int64_t t = 0; t < T; ++t)
        for (int64_t p = 0; p < P; ++p) yc[t * d.HP + p] += ws.from_start[t] * read[t * P + p];
    }

    for (int64_t t = 0; t < T; ++t)
      for (int64_t p = 0; p < P; ++p) yc[t * d.HP + p] += in.D[h] * x[t * d.HP + p];

    // S_out = exp(cum_{T-1}) S_in + (diag(w) X)ᵀ B, stored as the next chunk's S_in.
    if (c + 1 < d.n_chunks) {
      float* state_out = state_in + d.H * P * N;
      const float state_decay = ws.from_start[T - 1];
      for (int64_t i = 0; i < P * N; ++i) state_out[i] = state_decay * state_in[i];
      float* weighted_x = ws.scratch_b.data();
      for (int64_t s = 0; s < T; ++s) {
        const float w = ws.to_end[s] * ws.delta[s];
        for (int64_t p = 0; p < P; ++p) weighted_x[s * P + p] = w * x[s * d.HP + p];
      }
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, P, N, T, 1.0f, weighted_x, P, Bc,
                  d.GN, 1.0f, state_out, N);
    }
  }
}

// Per-head terms that the backward pass of each head leaves for the per-group products.
struct HeadTerms {
  float* d_scores;    // [batch, n_chunks, H, chunk, chunk]: dCB of each head
  float* d_read;      // [batch, L, H, P]: diag(exp(cum)) dY, unused in chunk 0
  float* weighted_x;  // [batch, L, H, P]: diag(w) X, unused in the last chunk
  float* d_states;    // [batch, n_chunks, H, P, N]: dS_out of each chunk, unused in the last
  double *d_dt_bias, *d_A_log, *d_D;  // [batch, H], summed over the batch afterwards
};

// Reductions of float terms in kSumLanes separate double partial sums. The compiler
// vectorizes these, which it does not do for a single sum because that would reorder its
// additions. The sums stay in double because d(cum) is later summed over the chunk, where
// its terms largely cancel: float sums there cost d_A_log about two digits in the tests.
constexpr int64_t kSumLanes = 8;

double sum_lanes(const float* values, int64_t n) {
  double lanes[kSumLanes] = {};
  const int64_t n_lanes = n / kSumLanes * kSumLanes;
  for (int64_t i = 0; i < n_lanes; i += kSumLanes)
    for (int64_t k = 0; k < kSumLanes; ++k) lanes[k] += values[i + k];
  double sum = 0.0;
  for (int64_t k = 0; k < kSumLanes; ++k) sum += lanes[k];
  for (int64_t i = n_lanes; i < n; ++i) sum += values[i];
  return sum;
}

double dot_lanes(const float* a, const float* b, int64_t n) {
  double lanes[kSumLanes] = {};
  const int64_t n_lanes = n / kSumLanes * kSumLanes;
  for (int64_t i = 0; i < n_lanes; i += kSumLanes)
    for (int64_t k = 0; k < kSumLanes; ++k) lanes[k] += static_cast<double>(a[i + k]) * b[i + k];
  double sum = 0.0;
  for (int64_t k = 0; k < kSumLanes; ++k) sum += lanes[k];
  for (int64_t i = n_lanes; i < n; ++i) sum += static_cast<double>(a[i]) * b[i];
  return sum;
}

// Intra-chunk part of the backward pass: dM = dY Xᵀ and dX = Mᵀ dY, then dCB, d(delta) and
// d(cum) element-wise. Overwrites dX of the chunk and writes dCB [T, T] to d_scores.
void backward_intra(const Dims& d, int64_t T, const float* x, const float* dy,
                    const float* score_block, float* dx, float* d_scores, Workspace& ws) {
  const int64_t P = d.P;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, P, 1.0f, dy, d.HP, x, d.HP, 0.0f,
              d_scores, T);
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, P, T, 1.0f, ws.mix.data(), T, dy, d.HP,
              0.0f, dx, d.HP);

  // M[t, s] = CB[t, s] decay[t, s] delta_s with decay = exp(cum_t - cum_s), so
  // dCB = dM decay delta_s, d(delta_s) += dM CB decay, and dM M goes to d(cum_t) with a plus
  // and to d(cum_s) with a minus. The diagonal s = t cancels in d(cum), so it is left out.
  // The loop over s has no reduction, so it vectorizes. The row sums of dM M are taken
  // afterwards with sum_lanes.
  float* d_delta_intra = ws.d_delta_intra.data();
  double* d_cum_minus = ws.d_cum_minus.data();
  float* row_terms = ws.row_terms.data();
  const float* delta = ws.delta.data();
  std::fill(d_delta_intra, d_delta_intra + T, 0.0f);
  std::fill(d_cum_minus, d_cum_minus + T, 0.0);
  for (int64_t t = 0; t < T; ++t) {
    float* row = d_scores + t * T;
    const float* decay_row = ws.decay.data() + t * T;
    const float* scores_row = score_block + t * T;
    for (int64_t s = 0; s < t; ++s) {
      const float u = row[s] * decay_row[s];
      const float d_score = u * delta[s];
      const float d_log = d_score * scores_row[s];
      d_delta_intra[s] += u * scores_row[s];
      d_cum_minus[s] += d_log;
      row_terms[s] = d_log;
      row[s] = d_score;
    }
    const float u_diagonal = row[t] * decay_row[t];
    d_delta_intra[t] += u_diagonal * scores_row[t];
    row[t] = u_diagonal * delta[t];
    for (int64_t s = t + 1; s < T; ++s) row[s] = 0.0f;
    ws.d_cum[t] += sum_lanes(row_terms, t);
  }
  for (int64_t s = 0; s < T; ++s) {
    ws.d_delta[s] += d_delta_intra[s];
    ws.d_cum[s] -= d_cum_minus[s];
  }
}

// The backward scan of head h of sequence b, chunks in reverse order. Writes dx, d_dt and
// the head's share of `terms`. dB and dC come later from backward_group_chunk.
void backward_head(const Dims& d, int64_t b, int64_t h, const Inputs& in, const float* scores,
                   const float* states, const float* dy_all, float* dx_all, float* d_dt,
                   const HeadTerms& terms, Workspace& ws) {
  const int64_t P = d.P, N = d.N, g = h / d.heads_per_group;
  const float A = -std::exp(in.A_log[h]);
  double d_A = 0.0, d_D = 0.0, d_bias = 0.0;

  for (int64_t c = d.n_chunks - 1; c >= 0; --c) {
    const int64_t t0 = c * d.chunk;
    const int64_t T = std::min(d.chunk, d.L - t0);
    const int64_t block = d.chunk * d.chunk;
    const float* score_block = scores + ((b * d.n_chunks + c) * d.G + g) * block;
    prepare_chunk(d, b, h, t0, T, A, in.dt, in.dt_bias, score_block, ws);
    std::fill(ws.d_delta.begin(), ws.d_delta.begin() + T, 0.0);
    std::fill(ws.d_cum.begin(), ws.d_cum.begin() + T, 0.0);

    const int64_t xy_offset = ((b * d.L + t0) * d.H + h) * P;
    const int64_t bc_offset = ((b * d.L + t0) * d.G + g) * N;
    const int64_t state_offset = ((b * d.n_chunks + c) * d.H + h) * P * N;
    const float* x = in.x + xy_offset;
    const float* dy = dy_all + xy_offset;
    const float* Bc = in.B + bc_offset;
    const float* Cc = in.C + bc_offset;
    float* dx = dx_all + xy_offset;
    const float* state_in = states + state_offset;

    float* d_scores = terms.d_scores + ((b * d.n_chunks + c) * d.H + h) * block;
    backward_intra(d, T, x, dy, score_block, dx, d_scores, ws);

    // State read Y += diag(exp(cum)) C S_inᵀ: with dZ = diag(exp(cum)) dY, dS_in = dZᵀ C and
    // d(cum_t) += exp(cum_t) dY_t . (C S_inᵀ)_t. dC += dZ S_in is left to the group pass.
    // Chunk 0 reads the zero state, so it has no such terms.
    // dS_in of chunk c is dS_out of chunk c - 1.
    float* d_state_in = c > 0 ? terms.d_states + state_offset - d.H * P * N : nullptr;
    if (c > 0) {
      float* read = ws.scratch_a.data();
      float* d_read = terms.d_read + xy_offset;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, P, N, 1.0f, Cc, d.GN, state_in, N,
                  0.0f, read, P);
      for (int64_t t = 0; t < T; ++t) {
        const float* dy_row = dy + t * d.HP;
        ws.d_cum[t] += ws.from_start[t] * dot_lanes(dy_row, read + t * P, P);
        for (int64_t p = 0; p < P; ++p) d_read[t * d.HP + p] = ws.from_start[t] * dy_row[p];
      }
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, P, N, T, 1.0f, d_read, d.HP, Cc, d.GN,
                  0.0f, d_state_in, N);
    }

    // State write S_out = exp(cum_{T-1}) S_in + (diag(w) X)ᵀ B with w_s = to_end_s delta_s:
    // with Q = B dS_outᵀ, dX += diag(w) Q, and dw_s = Q_s . x_s feeds d(delta_s) and d(cum).
    // dB += diag(w) X dS_out is left to the group pass. The last chunk's S_out is not an
    // output, so dS_out is zero there.
    if (c + 1 < d.n_chunks) {
      const float* d_state_out = terms.d_states + state_offset;
      float* q = ws.scratch_a.data();
      float* weighted_x = terms.weighted_x + xy_offset;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, P, N, 1.0f, Bc, d.GN, d_state_out, N,
                  0.0f, q, P);
      for (int64_t s = 0; s < T; ++s) {
        const float w = ws.to_end[s] * ws.delta[s];
        const float* q_row = q + s * P;
        const float* x_row = x + s * d.HP;
        const double d_w = dot_lanes(q_row, x_row, P);
        for (int64_t p = 0; p < P; ++p) {
          dx[s * d.HP + p] += w * q_row[p];
          weighted_x[s * d.HP + p] = w * x_row[p];
        }
        ws.d_delta[s] += d_w * ws.to_end[s];
        ws.d_cum[T - 1] += d_w * w;
        ws.d_cum[s] -= d_w * w;
      }

      if (c > 0) {
        const float state_decay = ws.from_start[T - 1];
        for (int64_t i = 0; i < P * N; ++i) d_state_in[i] += state_decay * d_state_out[i];
        ws.d_cum[T - 1] += state_decay * dot_lanes(d_state_out, state_in, P * N);
      }
    }

    // Skip connection D x.
    for (int64_t t = 0; t < T; ++t) {
      const float* dy_row = dy + t * d.HP;
      float* dx_row = dx + t * d.HP;
      d_D += dot_lanes(dy_row, x + t * d.HP, P);
      for (int64_t p = 0; p < P; ++p) dx_row[p] += in.D[h] * dy_row[p];
    }

    // cum_t = sum_{r <= t} delta_r A, so d(a_r) = sum_{t >= r} d(cum_t). Then the softplus.
    double d_a = 0.0;
    for (int64_t t = T - 1; t >= 0; --t) {
      d_a += ws.d_cum[t];
      ws.d_delta[t] += d_a * A;
      d_A += d_a * ws.delta[t];
    }
    for (int64_t t = 0; t < T; ++t) {
      const float d_v = static_cast<float>(ws.d_delta[t]) * softplus_derivative(ws.v[t]);
      d_dt[(b * d.L + t0 + t) * d.H + h] = d_v;
      d_bias += d_v;
    }
  }

  // A = -exp(A_log), so dA/dA_log = A.
  terms.d_A_log[b * d.H + h] = d_A * A;
  terms.d_D[b * d.H + h] = d_D;
  terms.d_dt_bias[b * d.H + h] = d_bias;
}

// dC and dB of group g in chunk c of sequence b, from the terms of the group's heads:
//   dCB = sum over the heads, in head order, of their dCB
//   dC = dCB B + [dZ of the heads] [S_in of the heads]
//   dB = dCBᵀ C + [diag(w) X of the heads] [dS_out of the heads]
// where [.] places the heads' [T, P] blocks side by side and their [P, N] blocks on top of
// each other, so each sum over heads is one sgemm with K = heads_per_group * P.
void backward_group_chunk(const Dims& d, int64_t b, int64_t g, int64_t c, const Inputs& in,
                          const float* states, const HeadTerms& terms, float* dB, float* dC,
                          std::vector<float>& group_scores) {
  const int64_t N = d.N, hpg = d.heads_per_group, block = d.chunk * d.chunk;
  const int64_t t0 = c * d.chunk;
  const int64_t T = std::min(d.chunk, d.L - t0);
  const int64_t bc_offset = ((b * d.L + t0) * d.G + g) * N;
  const int64_t first_head = g * hpg;
  const int64_t xy_offset = (b * d.L + t0) * d.HP + first_head * d.P;
  const int64_t state_offset = ((b * d.n_chunks + c) * d.H + first_head) * d.P * N;

  const float* head_scores = terms.d_scores + ((b * d.n_chunks + c) * d.H + first_head) * block;
  const float* d_scores = head_scores;
  if (hpg > 1) {
    std::copy(head_scores, head_scores + T * T, group_scores.begin());
    for (int64_t k = 1; k < hpg; ++k) {
      const float* next = head_scores + k * block;
      for (int64_t i = 0; i < T * T; ++i) group_scores[i] += next[i];
    }
    d_scores = group_scores.data();
  }

  float* dC_rows = dC + bc_offset;
  float* dB_rows = dB + bc_offset;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, N, T, 1.0f, d_scores, T,
              in.B + bc_offset, d.GN, 0.0f, dC_rows, d.GN);
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, N, T, 1.0f, d_scores, T,
              in.C + bc_offset, d.GN, 0.0f, dB_rows, d.GN);
  if (c > 0)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, N, hpg * d.P, 1.0f,
                terms.d_read + xy_offset, d.HP, states + state_offset, N, 1.0f, dC_rows, d.GN);
  if (c + 1 < d.n_chunks)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, N, hpg * d.P, 1.0f,
                terms.weighted_x + xy_offset, d.HP, terms.d_states + state_offset, N, 1.0f,
                dB_rows, d.GN);
}

}  // namespace

void ssd_scan_forward(const SsdShape& s, const float* x, const float* dt, const float* dt_bias,
                      const float* A_log, const float* B, const float* C, const float* D, float* y,
                      SsdSaved* saved, ThreadPool& pool) {
  const Dims d = make_dims(s);
  MAMBACPP_CHECK(saved != nullptr);
  prepare_blas();
  saved->shape = s;
  // forward_head writes every element, so a reused SsdSaved is not cleared first.
  saved->chunk_states.resize(static_cast<size_t>(d.batch * d.H * d.n_chunks * d.P * d.N));
  if (d.batch == 0 || d.L == 0) return;

  compute_scores(d, B, C, saved->scores, pool);
  const std::vector<float>& scores = saved->scores;
  const Inputs in{x, dt, dt_bias, A_log, B, C, D};
  pool.parallel_for(d.batch * d.H, 1, [&](int64_t begin, int64_t end) {
    Workspace ws(d);
    for (int64_t i = begin; i < end; ++i)
      forward_head(d, i / d.H, i % d.H, in, scores.data(), y, saved->chunk_states.data(), ws);
  });
}

void ssd_scan_backward(const SsdShape& s, const float* x, const float* dt, const float* dt_bias,
                       const float* A_log, const float* B, const float* C, const float* D,
                       const SsdSaved& saved, const float* dy, float* dx, float* d_dt, float* dB,
                       float* dC, float* d_dt_bias, float* d_A_log, float* d_D, ThreadPool& pool) {
  const Dims d = make_dims(s);
  MAMBACPP_CHECK(same_shape(saved.shape, s));
  const auto n_states = static_cast<size_t>(d.batch * d.n_chunks * d.H * d.P * d.N);
  const auto block = d.chunk * d.chunk;
  MAMBACPP_CHECK(saved.chunk_states.size() == n_states);
  MAMBACPP_CHECK(saved.scores.size() == static_cast<size_t>(d.batch * d.n_chunks * d.G * block));
  prepare_blas();
  if (d.batch == 0 || d.L == 0) return;

  // Left uninitialized: each phase reads only elements that an earlier one wrote.
  const auto d_scores = std::make_unique_for_overwrite<float[]>(
      static_cast<size_t>(d.batch * d.n_chunks * d.H * block));
  const auto d_read =
      std::make_unique_for_overwrite<float[]>(static_cast<size_t>(d.batch * d.L * d.HP));
  const auto weighted_x =
      std::make_unique_for_overwrite<float[]>(static_cast<size_t>(d.batch * d.L * d.HP));
  const auto d_states = std::make_unique_for_overwrite<float[]>(n_states);
  std::vector<double> bias_terms(static_cast<size_t>(d.batch * d.H));
  std::vector<double> A_log_terms(bias_terms.size());
  std::vector<double> D_terms(bias_terms.size());
  const HeadTerms terms{d_scores.get(),    d_read.get(),       weighted_x.get(), d_states.get(),
                        bias_terms.data(), A_log_terms.data(), D_terms.data()};

  const Inputs in{x, dt, dt_bias, A_log, B, C, D};
  pool.parallel_for(d.batch * d.H, 1, [&](int64_t begin, int64_t end) {
    Workspace ws(d);
    for (int64_t i = begin; i < end; ++i)
      backward_head(d, i / d.H, i % d.H, in, saved.scores.data(), saved.chunk_states.data(), dy,
                    dx, d_dt, terms, ws);
  });

  pool.parallel_for(d.batch * d.n_chunks * d.G, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> group_scores(static_cast<size_t>(block));
    for (int64_t i = begin; i < end; ++i) {
      const int64_t g = i % d.G;
      const int64_t c = (i / d.G) % d.n_chunks;
      const int64_t b = i / (d.G * d.n_chunks);
      backward_group_chunk(d, b, g, c, in, saved.chunk_states.data(), terms, dB, dC,
                           group_scores);
    }
  });

  for (int64_t h = 0; h < d.H; ++h) {
    double bias_sum = 0.0, A_log_sum = 0.0, D_sum = 0.0;
    for (int64_t b = 0; b < d.batch; ++b) {
      bias_sum += bias_terms[b * d.H + h];
      A_log_sum += A_log_terms[b * d.H + h];
      D_sum += D_terms[b * d.H + h];
    }
    d_dt_bias[h] += static_cast<float>(bias_sum);
    d_A_log[h] += static_cast<float>(A_log_sum);
    d_D[h] += static_cast<float>(D_sum);
  }
}

}  // namespace mambacpp::train
