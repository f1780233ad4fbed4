// Forward and backward of the Mamba-1 mixer, made of the linear, conv1d and selective
// scan passes. du is overwritten; parameter gradients accumulate.
#include "train/mamba1_block.h"

#include "ops/activations.h"
#include "ops/scratch.h"
#include "train/conv1d_grad.h"
#include "train/linear_grad.h"
#include "train/strided_copy.h"

namespace mambacpp::train {

void mamba1_forward(const ModelConfig& config, const Mamba1Params& p, const float* u,
                    int64_t batch, int64_t seq_len, float* out, Mamba1Activations& act,
                    ThreadPool& pool) {
  const int64_t M = batch * seq_len, Dm = config.d_model, E = config.d_inner,
                N = config.d_state, R = config.dt_rank, K = config.d_conv;
  const size_t m = static_cast<size_t>(M);

  act.xz.resize(m * 2 * E);
  linear_forward(u, Dm, M, Dm, p.in_proj_weight->value.data(), values_or_null(p.in_proj_bias),
                 2 * E, act.xz.data(), pool);

  act.conv_pre.resize(m * E);
  act.xc.resize(m * E);
  conv1d_silu_forward({batch, seq_len, E, K}, act.xz.data(), 2 * E, p.conv_weight->value.data(),
                      values_or_null(p.conv_bias), act.conv_pre.data(), act.xc.data(), pool);

  act.x_dbl.resize(m * (R + 2 * N));
  linear_forward(act.xc.data(), E, M, E, p.x_proj_weight->value.data(), nullptr, R + 2 * N,
                 act.x_dbl.data(), pool);
  act.delta_low.resize(m * R);
  act.B.resize(m * N);
  act.C.resize(m * N);
  copy_columns(act.x_dbl.data(), R + 2 * N, 0, M, R, act.delta_low.data(), R, 0);
  copy_columns(act.x_dbl.data(), R + 2 * N, R, M, N, act.B.data(), N, 0);
  copy_columns(act.x_dbl.data(), R + 2 * N, R + N, M, N, act.C.data(), N, 0);

  act.dt.resize(m * E);
  linear_forward(act.delta_low.data(), R, M, R, p.dt_proj_weight->value.data(), nullptr, E,
                 act.dt.data(), pool);

  act.y.resize(m * E);
  selective_scan_forward({batch, seq_len, E, N}, act.xc.data(), act.dt.data(),
                         p.dt_proj_bias->value.data(), p.A_log->value.data(), act.B.data(),
                         act.C.data(), p.D->value.data(), act.y.data(), &act.scan, pool);

  act.gated.resize(m * E);
  for (int64_t i = 0; i < M; ++i) {
    for (int64_t c = 0; c < E; ++c) {
      act.gated[i * E + c] = act.y[i * E + c] * silu(act.xz[i * 2 * E + E + c]);
    }
  }

  linear_forward(act.gated.data(), E, M, E, p.out_proj_weight->value.data(),
                 values_or_null(p.out_proj_bias), Dm, out, pool);
}

void mamba1_backward(const ModelConfig& config, const Mamba1Params& p, const float* u,
                     int64_t batch, int64_t seq_len, const Mamba1Activations& act,
                     const float* dout, float* du, ThreadPool& pool) {
  ScratchFrame scratch;
  const int64_t M = batch * seq_len, Dm = config.d_model, E = config.d_inner,
                N = config.d_state, R = config.dt_rank, K = config.d_conv;
  const size_t m = static_cast<size_t>(M);

  float* d_gated = scratch.take<float>(m * E);
  linear_backward(act.gated.data(), E, dout, M, E, p.out_proj_weight->value.data(), Dm,
                  d_gated, E, p.out_proj_weight->grad.data(),
                  grad_or_null(p.out_proj_bias), pool);

  // Through the gate y ⊙ silu(z): dz goes straight into the in_proj output gradient.
  float* d_xz = scratch.take<float>(m * 2 * E);
  float* dy = scratch.take<float>(m * E);
  for (int64_t i = 0; i < M; ++i) {
    for (int64_t c = 0; c < E; ++c) {
      float z = act.xz[i * 2 * E + E + c];
      float g = d_gated[i * E + c];
      dy[i * E + c] = g * silu(z);
      d_xz[i * 2 * E + E + c] = g * act.y[i * E + c] * silu_derivative(z);
    }
  }

  float* dxc = scratch.take<float>(m * E);
  float* d_dt = scratch.take<float>(m * E);
  float* d_x_dbl = scratch.take<float>(m * (R + 2 * N));
  float* dB = scratch.take<float>(m * N);
  float* dC = scratch.take<float>(m * N);
  selective_scan_backward({batch, seq_len, E, N}, act.xc.data(), act.dt.data(),
                          p.dt_proj_bias->value.data(), p.A_log->value.data(), act.B.data(),
                          act.C.data(), p.D->value.data(), act.scan, dy, dxc,
                          d_dt, dB, dC, p.dt_proj_bias->grad.data(),
                          p.A_log->grad.data(), p.D->grad.data(), pool);

  // dt_proj writes its input gradient into the first R columns of d_x_dbl.
  linear_backward(act.delta_low.data(), R, d_dt, M, R, p.dt_proj_weight->value.data(), E,
                  d_x_dbl, R + 2 * N, p.dt_proj_weight->grad.data(), nullptr, pool);
  copy_columns(dB, N, 0, M, N, d_x_dbl, R + 2 * N, R);
  copy_columns(dC, N, 0, M, N, d_x_dbl, R + 2 * N, R + N);

  float* dxc_from_proj = scratch.take<float>(m * E);
  linear_backward(act.xc.data(), E, d_x_dbl, M, E, p.x_proj_weight->value.data(),
                  R + 2 * N, dxc_from_proj, E, p.x_proj_weight->grad.data(), nullptr, pool);
  for (size_t i = 0; i < m * E; ++i) dxc[i] += dxc_from_proj[i];

  conv1d_silu_backward({batch, seq_len, E, K}, act.xz.data(), 2 * E, p.conv_weight->value.data(),
                       act.conv_pre.data(), dxc, d_xz, 2 * E,
                       p.conv_weight->grad.data(), grad_or_null(p.conv_bias), pool);

  linear_backward(u, Dm, d_xz, M, Dm, p.in_proj_weight->value.data(), 2 * E, du, Dm,
                  p.in_proj_weight->grad.data(), grad_or_null(p.in_proj_bias), pool);
}

}  // namespace mambacpp::train
