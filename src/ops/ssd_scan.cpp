#include "ops/ssd_scan.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "mambacpp/error.h"
#include "ops/blas.h"
#include "ops/cpu_kernels.h"

namespace mambacpp {

namespace {

float skip_weight(const SsdScanArgs& a, int64_t h, int64_t p) {
  return a.D_has_hdim ? a.D[h * a.P + p] : a.D[h];
}

// y_t[h, :] += D x_t[h, :] for all tokens of the heads [h_begin, h_end).
void add_skip(const SsdScanArgs& a, int64_t h_begin, int64_t h_end, float* y) {
  const int64_t HP = a.H * a.P;
  for (int64_t t = 0; t < a.L; ++t)
    for (int64_t h = h_begin; h < h_end; ++h)
      for (int64_t p = 0; p < a.P; ++p)
        y[t * HP + h * a.P + p] += skip_weight(a, h, p) * a.x[t * a.x_stride + h * a.P + p];
}

void check_args(const SsdScanArgs& a) {
  MAMBACPP_CHECK(a.H > 0 && a.P > 0 && a.G > 0 && a.N > 0);
  MAMBACPP_CHECK(a.H % a.G == 0);
  MAMBACPP_CHECK(a.chunk_size > 0);
}

// Work buffers of one chunked scan, sized for its largest chunk.
struct ChunkBuffers {
  std::vector<float> scores;      // [G, T, T]: C_t · B_s per group
  std::vector<float> mixing;      // [H, T, T]: scores ∘ decay(s → t) Δ_s for s <= t, else 0
  std::vector<float> x_to_state;  // [T, H * P]: x_s decay(s → chunk end) Δ_s
};

// Does the element-wise work of one chunk for heads [h_begin, h_end). It builds the masked
// mixing matrices and the inputs scaled for the state update. It also scales the incoming
// state's output (already in y) and decays the state over the chunk.
//
// decay(s → t) = exp(Σ_{r=s+1..t} Δ_r A) is the product of the step decays
// exp(Δ_r A) for r in (s, t]. Row t of the decay matrix is row t - 1 times exp(Δ_t A), so
// the chunk needs T exponentials per head instead of T²/2. The rows are kept in double,
// which bounds the rounding of a product of up to T factors far below float precision.
void prepare_chunk_heads(const SsdScanArgs& a, int64_t t0, int64_t T, int64_t h_begin,
                         int64_t h_end, ChunkBuffers& buf, float* ssm_state, float* y) {
  const int64_t P = a.P, N = a.N, HP = a.H * a.P, heads_per_group = a.H / a.G;
  std::vector<double> step_decay(static_cast<size_t>(T));
  std::vector<double> decay_row(static_cast<size_t>(T));
  std::vector<float> dt(static_cast<size_t>(T));

  for (int64_t h = h_begin; h < h_end; ++h) {
    const int64_t g = h / heads_per_group;
    for (int64_t t = 0; t < T; ++t) {
      dt[t] = a.dt[(t0 + t) * a.H + h];
      step_decay[t] = std::exp(static_cast<double>(dt[t]) * a.A[h]);
    }

    // y_t += decay(chunk start → t) C_t · S, where the state also decays by token 0's step:
    // scale the incoming-state term that sgemm wrote.
    double from_start = 1.0;
    for (int64_t t = 0; t < T; ++t) {
      from_start *= step_decay[t];
      const float scale = static_cast<float>(from_start);
      float* y_row = y + (t0 + t) * HP + h * P;
      for (int64_t p = 0; p < P; ++p) y_row[p] *= scale;
    }

    // mixing[t, s] = (C_t · B_s) decay(s → t) Δ_s for s <= t, else 0.
    const float* scores = buf.scores.data() + g * T * T;
    float* mixing = buf.mixing.data() + h * T * T;
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t s = 0; s < t; ++s) decay_row[s] *= step_decay[t];
      decay_row[t] = 1.0;
      float* mixing_row = mixing + t * T;
      const float* scores_row = scores + t * T;
      for (int64_t s = 0; s <= t; ++s)
        mixing_row[s] = scores_row[s] * static_cast<float>(decay_row[s]) * dt[s];
      for (int64_t s = t + 1; s < T; ++s) mixing_row[s] = 0.0f;
    }

    // x_to_state[s, h] = x_s[h] decay(s → T - 1) Δ_s, read from decay_row, now row T - 1.
    for (int64_t s = 0; s < T; ++s) {
      const float weight = static_cast<float>(decay_row[s]) * dt[s];
      const float* x_row = a.x + (t0 + s) * a.x_stride + h * P;
      float* out = buf.x_to_state.data() + s * HP + h * P;
      for (int64_t p = 0; p < P; ++p) out[p] = x_row[p] * weight;
    }

    // S ← decay(chunk start → T - 1) S, before the chunk's inputs are added.
    const float state_decay = static_cast<float>(from_start);
    float* S = ssm_state + h * P * N;
    for (int64_t i = 0; i < P * N; ++i) S[i] *= state_decay;
  }
}

}  // namespace

void ssd_scan_reference(const SsdScanArgs& a, float* ssm_state, float* y) {
  check_args(a);
  const int64_t P = a.P, N = a.N, HP = a.H * a.P;
  for (int64_t t = 0; t < a.L; ++t) {
    for (int64_t h = 0; h < a.H; ++h) {
      const int64_t g = h / (a.H / a.G);
      const float dt = a.dt[t * a.H + h];
      const float decay = std::exp(dt * a.A[h]);
      for (int64_t p = 0; p < P; ++p) {
        const float x = a.x[t * a.x_stride + h * P + p];
        float sum = 0.0f;
        for (int64_t n = 0; n < N; ++n) {
          float& S = ssm_state[(h * P + p) * N + n];
          S = decay * S + dt * x * a.B[t * a.bc_stride + g * N + n];
          sum += S * a.C[t * a.bc_stride + g * N + n];
        }
        y[t * HP + h * P + p] = sum + skip_weight(a, h, p) * x;
      }
    }
  }
}

void ssd_scan_recurrent(const SsdScanArgs& args, float* ssm_state, float* y, ThreadPool& pool) {
  check_args(args);
  const CpuKernels& kernels = active_cpu_kernels();
  pool.parallel_for(args.H, 1, [&](int64_t h_begin, int64_t h_end) {
    kernels.ssd_recurrent_heads(args, ssm_state, y, h_begin, h_end);
  });
}

void ssd_scan_chunked(const SsdScanArgs& a, float* ssm_state, float* y, ThreadPool& pool) {
  prepare_blas();
  check_args(a);
  if (a.L <= 0) return;
  const int64_t H = a.H, P = a.P, G = a.G, N = a.N, HP = H * P;
  const int64_t heads_per_group = H / G, group_width = heads_per_group * P;
  const int64_t T_max = std::min(a.chunk_size, a.L);

  ChunkBuffers buf;
  buf.scores.resize(static_cast<size_t>(G * T_max * T_max));
  buf.mixing.resize(static_cast<size_t>(H * T_max * T_max));
  buf.x_to_state.resize(static_cast<size_t>(T_max * HP));

  for (int64_t t0 = 0; t0 < a.L; t0 += a.chunk_size) {
    const int64_t T = std::min(a.chunk_size, a.L - t0);
    const float* B = a.B + t0 * a.bc_stride;
    const float* C = a.C + t0 * a.bc_stride;
    const float* x = a.x + t0 * a.x_stride;
    float* y_chunk = y + t0 * HP;

    // Per group: scores = C Bᵀ [T, T], and y = C S_gᵀ [T, heads_per_group * P], the
    // incoming state read out at every token before its decay is applied.
    // The products are split over the pool by channel slices of a group (or by heads),
    // each a single-threaded sgemm: linear() keeps OpenBLAS itself single-threaded.
    for (int64_t g = 0; g < G; ++g) {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, N, 1.0f, C + g * N, a.bc_stride,
                  B + g * N, a.bc_stride, 0.0f, buf.scores.data() + g * T * T, T);
      pool.parallel_for(group_width, P, [&](int64_t c0, int64_t c1) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, c1 - c0, N, 1.0f, C + g * N,
                    a.bc_stride, ssm_state + (g * group_width + c0) * N, N, 0.0f,
                    y_chunk + g * group_width + c0, HP);
      });
    }

    pool.parallel_for(H, 1, [&](int64_t h_begin, int64_t h_end) {
      prepare_chunk_heads(a, t0, T, h_begin, h_end, buf, ssm_state, y);
    });

    // Per head: y += mixing x [T, P], the chunk's own inputs.
    pool.parallel_for(H, 1, [&](int64_t h_begin, int64_t h_end) {
      for (int64_t h = h_begin; h < h_end; ++h)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, P, T, 1.0f,
                    buf.mixing.data() + h * T * T, T, x + h * P, a.x_stride, 1.0f, y_chunk + h * P,
                    HP);
    });

    // Per group: S_g += x_to_stateᵀ B [heads_per_group * P, N].
    for (int64_t g = 0; g < G; ++g)
      pool.parallel_for(group_width, P, [&](int64_t c0, int64_t c1) {
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, c1 - c0, N, T, 1.0f,
                    buf.x_to_state.data() + g * group_width + c0, HP, B + g * N, a.bc_stride, 1.0f,
                    ssm_state + (g * group_width + c0) * N, N);
      });
  }

  pool.parallel_for(H, 1, [&](int64_t h_begin, int64_t h_end) { add_skip(a, h_begin, h_end, y); });
}

}  // namespace mambacpp
