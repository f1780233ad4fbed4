#pragma once

#include <cstdint>

#include "mambacpp/thread_pool.h"

namespace mambacpp {

// Rotary position embedding in the GPT-NeoX layout (rotate halves, not interleaved), in
// place on the first `rotary_dim` features of each of `heads` heads of x [L, heads *
// head_dim] (row stride x_stride). Token t sits at absolute position position0 + t and
// feature pair (i, i + rotary_dim / 2) turns by θ = position · base^(-2i / rotary_dim).
// The angles are computed in float32, as flash-attn's RotaryEmbedding builds its table.
void apply_rotary(float* x, int64_t x_stride, int64_t L, int64_t heads, int64_t head_dim,
                  int64_t rotary_dim, int64_t position0, double base);

// Causal multi-head attention of L new queries over a key/value cache that contains the
// n_past earlier tokens followed by the L new ones. Query head j reads kv head
// j / (q_heads / kv_heads) (grouped-query attention), and the query at absolute position
// n_past + t sees keys 0 .. n_past + t, so a prompt fed whole or in pieces gets the
// same outputs.
struct AttentionArgs {
  int64_t L = 0, n_past = 0;
  int64_t q_heads = 0, kv_heads = 0, head_dim = 0;
  const float* q = nullptr;         // [L, q_heads * head_dim], row stride q_stride
  int64_t q_stride = 0;
  const float* kv_cache = nullptr;  // [n_past + L, 2, kv_heads, head_dim]: k, then v
  float scale = 0.0f;               // applied to q · k before the softmax
};

// Writes out [L, q_heads * head_dim]; the (token, head) pairs are split over the pool.
void causal_attention(const AttentionArgs& args, float* out, ThreadPool& pool);

// The scalar twin of causal_attention(): plain loops in double on one thread.
void causal_attention_reference(const AttentionArgs& args, float* out);

}  // namespace mambacpp
