#pragma once

#include <cstdint>
#include <vector>

namespace mambacpp {

// One layer's memory of the tokens it has seen. Which fields are used depends on
// the layer's mixer; the shapes are fixed by the model config.
struct LayerState {
  // The last d_conv raw inputs of the causal conv, newest last:
  // Mamba-1 [d_inner, d_conv]; Mamba-2 [d_ssm + 2 * ngroups * d_state, d_conv];
  // attention [(num_heads + 2 * num_heads_kv) * head_dim, d_conv] when it has a conv.
  std::vector<float> conv_state;
  // The recurrent state: Mamba-1 [d_inner, d_state]; Mamba-2 [n_heads, headdim, d_state].
  std::vector<float> ssm_state;
  // Attention layers: keys (after rotary) and values of every past token,
  // [n_tokens, 2, num_heads_kv, head_dim].
  std::vector<float> kv_cache;
};

// A sequence's whole memory of the past. Its size is fixed for Mamba layers, so copying
// it forks a sequence.
struct State {
  std::vector<LayerState> layers;
  int64_t n_tokens = 0;  // tokens consumed so far: the position of the next token
};

}  // namespace mambacpp
