// Forward and backward of the Mamba-2 mixer: in_proj, conv1d + SiLU, the chunked SSD
// scan, the gated RMSNorm per group and out_proj. du is overwritten; parameter gradients
// accumulate.
#include "train/mamba2_block.h"

#include "ops/scratch.h"
#include "train/conv1d_grad.h"
#include "train/linear_grad.h"
#include "train/norm_grad.h"
#include "train/strided_copy.h"

namespace mambacpp::train {

namespace {

struct Mamba2Dims {
  int64_t M, Dm, E, H, P, G, N, K, Cx, d_in_proj;
};

Mamba2Dims dims_of(const ModelConfig& config, int64_t batch, int64_t seq_len) {
  Mamba2Dims d{};
  d.M = batch * seq_len;
  d.Dm = config.d_model;
  d.E = config.d_inner;
  d.H = config.n_heads();
  d.P = config.headdim;
  d.G = config.ngroups;
  d.N = config.d_state;
  d.K = config.d_conv;
  d.Cx = d.E + 2 * d.G * d.N;
  d.d_in_proj = d.E + d.Cx + d.H;
  return d;
}

SsdShape ssd_shape_of(const ModelConfig& config, const Mamba2Dims& d, int64_t batch,
                      int64_t seq_len) {
  return {batch, seq_len, d.H, d.P, d.G, d.N, config.chunk_size};
}

}  // namespace

void mamba2_forward(const ModelConfig& config, const Mamba2Params& p, const float* u,
                    int64_t batch, int64_t seq_len, float* out, Mamba2Activations& act,
                    ThreadPool& pool) {
  const Mamba2Dims d = dims_of(config, batch, seq_len);
  const size_t M = static_cast<size_t>(d.M);

  act.zxbcdt.resize(M * d.d_in_proj);
  linear_forward(u, d.Dm, d.M, d.Dm, p.in_proj_weight->value.data(), values_or_null(p.in_proj_bias),
                 d.d_in_proj, act.zxbcdt.data(), pool);

  act.conv_pre.resize(M * d.Cx);
  act.xbc.resize(M * d.Cx);
  conv1d_silu_forward({batch, seq_len, d.Cx, d.K}, act.zxbcdt.data() + d.E, d.d_in_proj,
                      p.conv_weight->value.data(), values_or_null(p.conv_bias), act.conv_pre.data(),
                      act.xbc.data(), pool);

  act.x.resize(M * d.E);
  act.B.resize(M * d.G * d.N);
  act.C.resize(M * d.G * d.N);
  act.dt.resize(M * d.H);
  act.z.resize(M * d.E);
  copy_columns(act.xbc.data(), d.Cx, 0, d.M, d.E, act.x.data(), d.E, 0);
  copy_columns(act.xbc.data(), d.Cx, d.E, d.M, d.G * d.N, act.B.data(), d.G * d.N, 0);
  copy_columns(act.xbc.data(), d.Cx, d.E + d.G * d.N, d.M, d.G * d.N, act.C.data(), d.G * d.N, 0);
  copy_columns(act.zxbcdt.data(), d.d_in_proj, d.E + d.Cx, d.M, d.H, act.dt.data(), d.H, 0);
  copy_columns(act.zxbcdt.data(), d.d_in_proj, 0, d.M, d.E, act.z.data(), d.E, 0);

  act.y.resize(M * d.E);
  ssd_scan_forward(ssd_shape_of(config, d, batch, seq_len), act.x.data(), act.dt.data(),
                   p.dt_bias->value.data(), p.A_log->value.data(), act.B.data(), act.C.data(),
                   p.D->value.data(), act.y.data(), &act.scan, pool);

  act.norm_rstd.resize(M * d.G);
  act.normed.resize(M * d.E);
  gated_rms_norm_forward(act.y.data(), act.z.data(), d.M, d.E, d.E / d.G,
                         p.norm_weight->value.data(), config.norm_eps, act.normed.data(),
                         act.norm_rstd.data(), pool);

  linear_forward(act.normed.data(), d.E, d.M, d.E, p.out_proj_weight->value.data(),
                 values_or_null(p.out_proj_bias), d.Dm, out, pool);
}

void mamba2_backward(const ModelConfig& config, const Mamba2Params& p, const float* u,
                     int64_t batch, int64_t seq_len, const Mamba2Activations& act,
                     const float* dout, float* du, ThreadPool& pool) {
  ScratchFrame scratch;
  const Mamba2Dims d = dims_of(config, batch, seq_len);
  const size_t M = static_cast<size_t>(d.M);

  float* d_normed = scratch.take<float>(M * d.E);
  linear_backward(act.normed.data(), d.E, dout, d.M, d.E, p.out_proj_weight->value.data(), d.Dm,
                  d_normed, d.E, p.out_proj_weight->grad.data(),
                  grad_or_null(p.out_proj_bias), pool);

  float* dy = scratch.take<float>(M * d.E);
  float* dz = scratch.take<float>(M * d.E);
  gated_rms_norm_backward(act.y.data(), act.z.data(), act.norm_rstd.data(), d_normed, d.M,
                          d.E, d.E / d.G, p.norm_weight->value.data(), dy, dz,
                          p.norm_weight->grad.data(), pool);

  float* dx = scratch.take<float>(M * d.E);
  float* d_dt = scratch.take<float>(M * d.H);
  float* dB = scratch.take<float>(M * d.G * d.N);
  float* dC = scratch.take<float>(M * d.G * d.N);
  ssd_scan_backward(ssd_shape_of(config, d, batch, seq_len), act.x.data(), act.dt.data(),
                    p.dt_bias->value.data(), p.A_log->value.data(), act.B.data(), act.C.data(),
                    p.D->value.data(), act.scan, dy, dx, d_dt, dB,
                    dC, p.dt_bias->grad.data(), p.A_log->grad.data(), p.D->grad.data(),
                    pool);

  // Reassemble the conv output gradient [x | B | C], then the in_proj output gradient
  // [z | xBC | dt], whose xBC part the conv backward writes.
  float* d_xbc = scratch.take<float>(M * d.Cx);
  float* d_zxbcdt = scratch.take<float>(M * d.d_in_proj);
  copy_columns(dx, d.E, 0, d.M, d.E, d_xbc, d.Cx, 0);
  copy_columns(dB, d.G * d.N, 0, d.M, d.G * d.N, d_xbc, d.Cx, d.E);
  copy_columns(dC, d.G * d.N, 0, d.M, d.G * d.N, d_xbc, d.Cx, d.E + d.G * d.N);
  copy_columns(dz, d.E, 0, d.M, d.E, d_zxbcdt, d.d_in_proj, 0);
  copy_columns(d_dt, d.H, 0, d.M, d.H, d_zxbcdt, d.d_in_proj, d.E + d.Cx);

  conv1d_silu_backward({batch, seq_len, d.Cx, d.K}, act.zxbcdt.data() + d.E, d.d_in_proj,
                       p.conv_weight->value.data(), act.conv_pre.data(), d_xbc,
                       d_zxbcdt + d.E, d.d_in_proj, p.conv_weight->grad.data(),
                       grad_or_null(p.conv_bias), pool);

  linear_backward(u, d.Dm, d_zxbcdt, d.M, d.Dm, p.in_proj_weight->value.data(),
                  d.d_in_proj, du, d.Dm, p.in_proj_weight->grad.data(),
                  grad_or_null(p.in_proj_bias), pool);
}

}  // namespace mambacpp::train
