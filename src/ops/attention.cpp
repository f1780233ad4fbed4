#include "ops/attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "mambacpp/error.h"
#include "ops/scratch.h"

namespace mambacpp {

namespace {

void check_args(const AttentionArgs& a) {
  MAMBACPP_CHECK(a.q_heads > 0 && a.kv_heads > 0 && a.head_dim > 0);
  MAMBACPP_CHECK(a.q_heads % a.kv_heads == 0);
  MAMBACPP_CHECK(a.n_past >= 0);
}

// One query row against keys [0, n_keys): softmax(q · k · scale) v into out [head_dim].
// `scores` has room for n_keys values.
void attend_one(const AttentionArgs& a, int64_t t, int64_t j, float* scores, float* out) {
  const int64_t hd = a.head_dim, kv_row = 2 * a.kv_heads * hd;
  const int64_t kv_head = j / (a.q_heads / a.kv_heads);
  const int64_t n_keys = a.n_past + t + 1;
  const float* q = a.q + t * a.q_stride + j * hd;

  float max_score = -INFINITY;
  for (int64_t s = 0; s < n_keys; ++s) {
    const float* k = a.kv_cache + s * kv_row + kv_head * hd;
    float dot = 0.0f;
    for (int64_t i = 0; i < hd; ++i) dot += q[i] * k[i];
    scores[s] = dot * a.scale;
    max_score = std::max(max_score, scores[s]);
  }

  float total = 0.0f;
  for (int64_t s = 0; s < n_keys; ++s) {
    scores[s] = std::exp(scores[s] - max_score);
    total += scores[s];
  }

  std::fill(out, out + hd, 0.0f);
  for (int64_t s = 0; s < n_keys; ++s) {
    const float* v = a.kv_cache + s * kv_row + a.kv_heads * hd + kv_head * hd;
    const float weight = scores[s] / total;
    for (int64_t i = 0; i < hd; ++i) out[i] += weight * v[i];
  }
}

}  // namespace

void apply_rotary(float* x, int64_t x_stride, int64_t L, int64_t heads, int64_t head_dim,
                  int64_t rotary_dim, int64_t position0, double base) {
  MAMBACPP_CHECK(rotary_dim % 2 == 0 && rotary_dim <= head_dim);
  const int64_t half = rotary_dim / 2;
  std::vector<float> inv_freq(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i)
    inv_freq[i] = 1.0f / std::pow(static_cast<float>(base),
                                  static_cast<float>(2 * i) / static_cast<float>(rotary_dim));

  for (int64_t t = 0; t < L; ++t) {
    const float position = static_cast<float>(position0 + t);
    for (int64_t i = 0; i < half; ++i) {
      const float angle = position * inv_freq[i];
      const float cos_angle = std::cos(angle), sin_angle = std::sin(angle);
      for (int64_t h = 0; h < heads; ++h) {
        float* v = x + t * x_stride + h * head_dim;
        const float first = v[i], second = v[i + half];
        v[i] = first * cos_angle - second * sin_angle;
        v[i + half] = second * cos_angle + first * sin_angle;
      }
    }
  }
}

void causal_attention(const AttentionArgs& args, float* out, ThreadPool& pool) {
  check_args(args);
  const int64_t hd = args.head_dim;
  pool.parallel_for(args.L * args.q_heads, 1, [&](int64_t begin, int64_t end) {
    ScratchFrame scratch;
    float* scores = scratch.take<float>(args.n_past + args.L);
    for (int64_t task = begin; task < end; ++task) {
      const int64_t t = task / args.q_heads, j = task % args.q_heads;
      attend_one(args, t, j, scores, out + t * args.q_heads * hd + j * hd);
    }
  });
}

void causal_attention_reference(const AttentionArgs& args, float* out) {
  check_args(args);
  const int64_t hd = args.head_dim, kv_row = 2 * args.kv_heads * hd;
  const int64_t group = args.q_heads / args.kv_heads;
  for (int64_t t = 0; t < args.L; ++t) {
    for (int64_t j = 0; j < args.q_heads; ++j) {
      const int64_t kv_head = j / group, n_keys = args.n_past + t + 1;
      std::vector<double> weights(static_cast<size_t>(n_keys));
      double max_score = -INFINITY;
      for (int64_t s = 0; s < n_keys; ++s) {
        double dot = 0.0;
        for (int64_t i = 0; i < hd; ++i)
          dot += static_cast<double>(args.q[t * args.q_stride + j * hd + i]) *
                 args.kv_cache[s * kv_row + kv_head * hd + i];
        weights[s] = dot * args.scale;
        max_score = std::max(max_score, weights[s]);
      }
      double total = 0.0;
      for (double& w : weights) {
        w = std::exp(w - max_score);
        total += w;
      }
      for (int64_t i = 0; i < hd; ++i) {
        double sum = 0.0;
        for (int64_t s = 0; s < n_keys; ++s)
          sum += weights[s] * args.kv_cache[s * kv_row + args.kv_heads * hd + kv_head * hd + i];
        out[t * args.q_heads * hd + j * hd + i] = static_cast<float>(sum / total);
      }
    }
  }
}

}  // namespace mambacpp
