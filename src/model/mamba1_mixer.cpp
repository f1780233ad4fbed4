#include "model/mamba1_mixer.h"

#include <cmath>

#include "ops/causal_conv1d.h"
#include "ops/linear.h"
#include "ops/scratch.h"
#include "ops/selective_scan.h"

namespace mambacpp {

Mamba1Mixer::Mamba1Mixer(const ModelConfig& c)
    : d_model_(c.d_model),
      d_inner_(c.d_inner),
      d_state_(c.d_state),
      d_conv_(c.d_conv),
      dt_rank_(c.dt_rank),
      bias_(c.bias),
      conv_bias_(c.conv_bias) {}

void Mamba1Mixer::add_weights(WeightTable& table, const std::string& p) {
  const int64_t E = d_inner_, N = d_state_, R = dt_rank_;
  table.add_matrix(p + "in_proj.weight", {2 * E, d_model_}, &in_proj_);
  if (bias_) table.add_values(p + "in_proj.bias", {2 * E}, &in_proj_bias_);
  table.add_values(p + "conv1d.weight", {E, 1, d_conv_}, &conv_weight_);
  if (conv_bias_) table.add_values(p + "conv1d.bias", {E}, &conv_bias_values_);
  table.add_matrix(p + "x_proj.weight", {R + 2 * N, E}, &x_proj_);
  table.add_matrix(p + "dt_proj.weight", {E, R}, &dt_proj_);
  table.add_values(p + "dt_proj.bias", {E}, &dt_proj_bias_);
  table.add_values(p + "A_log", {E, N}, &A_log_);
  table.add_values(p + "D", {E}, &D_);
  table.add_matrix(p + "out_proj.weight", {d_model_, E}, &out_proj_);
  if (bias_) table.add_values(p + "out_proj.bias", {d_model_}, &out_proj_bias_);
}

void Mamba1Mixer::finish_loading() {
  A_.resize(A_log_.size());
  for (size_t i = 0; i < A_log_.size(); ++i) A_[i] = -std::exp(A_log_[i]);
}

void Mamba1Mixer::init_state(LayerState& state) const {
  state.conv_state.assign(static_cast<size_t>(d_inner_ * d_conv_), 0.0f);
  state.ssm_state.assign(static_cast<size_t>(d_inner_ * d_state_), 0.0f);
}

int64_t Mamba1Mixer::weight_bytes() const {
  int64_t small = static_cast<int64_t>(in_proj_bias_.size() + conv_weight_.size() +
                                       conv_bias_values_.size() + dt_proj_bias_.size() +
                                       A_.size() + D_.size() + out_proj_bias_.size()) *
                  4;
  return in_proj_.bytes() + x_proj_.bytes() + dt_proj_.bytes() + out_proj_.bytes() + small;
}

void Mamba1Mixer::run(const float* u, int64_t L, std::span<const Segment> segments, float* out,
                      ThreadPool& pool) const {
  const int64_t E = d_inner_, N = d_state_, R = dt_rank_;
  ScratchFrame scratch;

  // [x | z] = in_proj(u): xz [L, 2E], x = xz[:, :E], z = xz[:, E:]
  float* xz = scratch.take<float>(L * 2 * E);
  linear(u, L, in_proj_, data_or_null(in_proj_bias_), xz, pool);

  // x~ = silu(conv1d(x)) [L, E], continuing each segment's raw-x window in conv_state [E, K]
  float* x_conv = scratch.take<float>(L * E);
  ConvSegment* convs = scratch.take<ConvSegment>(segments.size());
  for (size_t i = 0; i < segments.size(); ++i) {
    const Segment& s = segments[i];
    convs[i] = {xz + s.row_begin * 2 * E, s.n_rows, s.state->conv_state.data(), x_conv + s.row_begin * E};
  }
  causal_conv1d_many({convs, segments.size()}, 2 * E, E, d_conv_, conv_weight_.data(),
                     data_or_null(conv_bias_values_), /*apply_silu=*/true, pool);

  // [δ | B | C] = x_proj(x~): x_dbl [L, R + 2N]
  float* x_dbl = scratch.take<float>(L * (R + 2 * N));
  linear(x_conv, L, x_proj_, nullptr, x_dbl, pool);

  // dt = dt_proj.weight · δ [L, E]; δ is a strided view, so gather it first.
  float* delta_low = scratch.take<float>(L * R);
  for (int64_t t = 0; t < L; ++t)
    for (int64_t r = 0; r < R; ++r) delta_low[t * R + r] = x_dbl[t * (R + 2 * N) + r];
  float* delta = scratch.take<float>(L * E);
  linear(delta_low, L, dt_proj_, nullptr, delta, pool);

  // y = scan(x~, Δ, A, B, C, D) * silu(z) [L, E], continuing each segment's ssm_state [E, N]
  float* y = scratch.take<float>(L * E);
  const size_t n_segments = segments.size();
  SelectiveScanArgs* scans = scratch.take<SelectiveScanArgs>(n_segments);
  float** ssm_states = scratch.take<float*>(n_segments);
  float** outputs = scratch.take<float*>(n_segments);
  for (size_t i = 0; i < n_segments; ++i) {
    const Segment& s = segments[i];
    const int64_t t0 = s.row_begin;
    SelectiveScanArgs& scan = scans[i];
    scan = SelectiveScanArgs{};
    scan.L = s.n_rows;
    scan.E = E;
    scan.N = N;
    scan.x = x_conv + t0 * E;
    scan.delta = delta + t0 * E;
    scan.delta_bias = dt_proj_bias_.data();
    scan.A = A_.data();
    scan.B = x_dbl + t0 * (R + 2 * N) + R;
    scan.C = x_dbl + t0 * (R + 2 * N) + R + N;
    scan.bc_stride = R + 2 * N;
    scan.D = D_.data();
    scan.z = xz + t0 * 2 * E + E;
    scan.z_stride = 2 * E;
    ssm_states[i] = s.state->ssm_state.data();
    outputs[i] = y + t0 * E;
  }
  selective_scan_many({scans, n_segments}, {ssm_states, n_segments}, {outputs, n_segments}, pool);

  // out = out_proj(y) [L, d_model]
  linear(y, L, out_proj_, data_or_null(out_proj_bias_), out, pool);
}

}  // namespace mambacpp
