#include "model/mamba2_mixer.h"

#include <algorithm>
#include <cmath>

#include "ops/activations.h"
#include "ops/causal_conv1d.h"
#include "ops/gated_rms_norm.h"
#include "ops/linear.h"
#include "ops/scratch.h"
#include "ops/ssd_scan.h"

namespace mambacpp {

Mamba2Mixer::Mamba2Mixer(const ModelConfig& c, int64_t chunk_size)
    : d_model_(c.d_model),
      d_inner_(c.d_inner),
      d_ssm_(c.d_ssm),
      d_mlp_(c.d_inner - c.d_ssm),
      d_state_(c.d_state),
      d_conv_(c.d_conv),
      n_heads_(c.n_heads()),
      headdim_(c.headdim),
      ngroups_(c.ngroups),
      chunk_size_(chunk_size),
      conv_channels_(c.d_ssm + 2 * c.ngroups * c.d_state),
      in_proj_rows_(2 * c.d_inner + 2 * c.ngroups * c.d_state + c.n_heads()),
      bias_(c.bias),
      conv_bias_(c.conv_bias),
      D_has_hdim_(c.D_has_hdim),
      rmsnorm_(c.rmsnorm),
      norm_before_gate_(c.norm_before_gate),
      norm_eps_(static_cast<float>(c.norm_eps)),
      dt_min_(static_cast<float>(c.dt_limit.first)),
      dt_max_(static_cast<float>(c.dt_limit.second)) {}

void Mamba2Mixer::add_weights(WeightTable& table, const std::string& p) {
  const int64_t H = n_heads_;
  table.add_matrix(p + "in_proj.weight", {in_proj_rows_, d_model_}, &in_proj_);
  if (bias_) table.add_values(p + "in_proj.bias", {in_proj_rows_}, &in_proj_bias_);
  table.add_values(p + "conv1d.weight", {conv_channels_, 1, d_conv_}, &conv_weight_);
  if (conv_bias_) table.add_values(p + "conv1d.bias", {conv_channels_}, &conv_bias_values_);
  table.add_values(p + "dt_bias", {H}, &dt_bias_);
  table.add_values(p + "A_log", {H}, &A_log_);
  table.add_values(p + "D", {D_has_hdim_ ? d_ssm_ : H}, &D_);
  if (rmsnorm_) table.add_values(p + "norm.weight", {d_ssm_}, &norm_weight_);
  table.add_matrix(p + "out_proj.weight", {d_model_, d_inner_}, &out_proj_);
  if (bias_) table.add_values(p + "out_proj.bias", {d_model_}, &out_proj_bias_);
}

void Mamba2Mixer::finish_loading() {
  A_.resize(A_log_.size());
  for (size_t i = 0; i < A_log_.size(); ++i) A_[i] = -std::exp(A_log_[i]);
}

void Mamba2Mixer::init_state(LayerState& state) const {
  state.conv_state.assign(static_cast<size_t>(conv_channels_ * d_conv_), 0.0f);
  state.ssm_state.assign(static_cast<size_t>(n_heads_ * headdim_ * d_state_), 0.0f);
}

int64_t Mamba2Mixer::weight_bytes() const {
  int64_t small = static_cast<int64_t>(in_proj_bias_.size() + conv_weight_.size() +
                                       conv_bias_values_.size() + dt_bias_.size() + A_.size() +
                                       D_.size() + norm_weight_.size() + out_proj_bias_.size()) *
                  4;
  return in_proj_.bytes() + out_proj_.bytes() + small;
}

void Mamba2Mixer::run(const float* u, int64_t L, std::span<const Segment> segments, float* out,
                      ThreadPool& pool) const {
  const int64_t H = n_heads_, GN = ngroups_ * d_state_, W = in_proj_rows_;
  const int64_t z0_offset = 0, x0_offset = d_mlp_, z_offset = 2 * d_mlp_;
  const int64_t xbc_offset = 2 * d_mlp_ + d_ssm_, dt_offset = xbc_offset + conv_channels_;

  ScratchFrame scratch;

  // zxbcdt = in_proj(u) [L, W]
  float* zxbcdt = scratch.take<float>(L * W);
  linear(u, L, in_proj_, data_or_null(in_proj_bias_), zxbcdt, pool);

  // xBC~ = silu(conv1d(xBC)) [L, conv_channels], continuing each segment's raw-xBC window
  float* xbc = scratch.take<float>(L * conv_channels_);
  ConvSegment* convs = scratch.take<ConvSegment>(segments.size());
  for (size_t i = 0; i < segments.size(); ++i) {
    const Segment& s = segments[i];
    convs[i] = {zxbcdt + s.row_begin * W + xbc_offset, s.n_rows, s.state->conv_state.data(),
                xbc + s.row_begin * conv_channels_};
  }
  causal_conv1d_many({convs, segments.size()}, W, conv_channels_, d_conv_, conv_weight_.data(),
                     data_or_null(conv_bias_values_), /*apply_silu=*/true, pool);

  // Δ = clamp(softplus(dt + dt_bias), dt_limit) [L, H]
  float* dt = scratch.take<float>(L * H);
  for (int64_t t = 0; t < L; ++t)
    for (int64_t h = 0; h < H; ++h) {
      float value = softplus(zxbcdt[t * W + dt_offset + h] + dt_bias_[h]);
      dt[t * H + h] = std::min(std::max(value, dt_min_), dt_max_);
    }

  // y = SSD scan over x = xBC~[:, :d_ssm] and B, C [L, G, N], continuing each segment's
  // ssm_state: the recurrent step for one token, the chunked scan for more.
  float* y = scratch.take<float>(L * d_ssm_);
  for (const Segment& s : segments) {
    const int64_t t0 = s.row_begin;
    SsdScanArgs scan;
    scan.L = s.n_rows;
    scan.H = H;
    scan.P = headdim_;
    scan.G = ngroups_;
    scan.N = d_state_;
    scan.x = xbc + t0 * conv_channels_;
    scan.x_stride = conv_channels_;
    scan.B = scan.x + d_ssm_;
    scan.C = scan.x + d_ssm_ + GN;
    scan.bc_stride = conv_channels_;
    scan.dt = dt + t0 * H;
    scan.A = A_.data();
    scan.D = D_.data();
    scan.D_has_hdim = D_has_hdim_;
    scan.chunk_size = chunk_size_;
    float* y_segment = y + t0 * d_ssm_;
    if (s.n_rows == 1) {
      ssd_scan_recurrent(scan, s.state->ssm_state.data(), y_segment, pool);
    } else {
      ssd_scan_chunked(scan, s.state->ssm_state.data(), y_segment, pool);
    }
  }

  // y = norm(y ⊙ silu(z)) per group, or y ⊙ silu(z) without rmsnorm
  const float* z = zxbcdt + z_offset;
  if (rmsnorm_) {
    gated_rms_norm(y, z, W, L, d_ssm_, ngroups_, norm_weight_.data(), norm_eps_,
                   norm_before_gate_, pool);
  } else {
    for (int64_t t = 0; t < L; ++t)
      for (int64_t c = 0; c < d_ssm_; ++c) y[t * d_ssm_ + c] *= silu(z[t * W + c]);
  }

  if (d_mlp_ == 0) {
    linear(y, L, out_proj_, data_or_null(out_proj_bias_), out, pool);
    return;
  }

  // With d_ssm < d_inner, out_proj reads [silu(z0) ⊙ x0 | y].
  // NOTE: no golden model has d_ssm < d_inner, so this path follows mamba2.Mamba2's code
  // but has not been compared with the reference's outputs.
  float* mixed = scratch.take<float>(L * d_inner_);
  for (int64_t t = 0; t < L; ++t) {
    float* row = mixed + t * d_inner_;
    const float* source = zxbcdt + t * W;
    for (int64_t c = 0; c < d_mlp_; ++c) row[c] = silu(source[z0_offset + c]) * source[x0_offset + c];
    std::copy(y + t * d_ssm_, y + (t + 1) * d_ssm_, row + d_mlp_);
  }
  linear(mixed, L, out_proj_, data_or_null(out_proj_bias_), out, pool);
}

}  // namespace mambacpp
