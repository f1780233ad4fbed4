#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "mambacpp/state.h"
#include "mambacpp/thread_pool.h"
#include "model/weight_table.h"

namespace mambacpp {

// A sequence mixer: Mamba-1, Mamba-2 or attention. Prefill, a prompt fed in pieces, and
// one-token decode are the same forward() call, so they cannot drift apart.
class Mixer {
 public:
  virtual ~Mixer() = default;

  // Adds this mixer's tensors, named under `prefix` ("backbone.layers.3.mixer."), to the
  // weight table; their destinations are this object's members.
  virtual void add_weights(WeightTable& table, const std::string& prefix) = 0;

  // Sizes and zeroes this mixer's part of a new sequence's state.
  virtual void init_state(LayerState& state) const = 0;

  // y [L, d_model] = mixer(x [L, d_model]), continuing from `state` (which has seen
  // `position` tokens) and leaving it after token L - 1.
  virtual void forward(const float* x, int64_t L, LayerState& state, int64_t position, float* y,
                       ThreadPool& pool) const = 0;

  // One decode step of several sequences. Row b of x [B, d_model] is the next token of
  // the sequence whose state is *states[b], which has seen positions[b] tokens, and y is
  // [B, d_model]. A row's result never depends on the other rows. This default runs
  // forward() once per sequence; mixers override it to read their weights once per step.
  virtual void forward_batch(const float* x, std::span<LayerState* const> states,
                             std::span<const int64_t> positions, int64_t d_model, float* y,
                             ThreadPool& pool) const {
    for (size_t b = 0; b < states.size(); ++b)
      forward(x + b * d_model, 1, *states[b], positions[b], y + b * d_model, pool);
  }

  // Total bytes of this mixer's weights as used.
  virtual int64_t weight_bytes() const = 0;

  // Called once after the weight table is bound, to derive values from the loaded
  // weights (A = -exp(A_log)).
  virtual void finish_loading() {}
};

// A mixer whose projections run over all rows of a call at once, in one pass over the
// weights, and whose conv and scan run per sequence, each continuing its own state.
// forward() is one sequence of L rows and forward_batch() is B sequences of one row each.
class SegmentedMixer : public Mixer {
 public:
  void forward(const float* x, int64_t L, LayerState& state, int64_t position, float* y,
               ThreadPool& pool) const final;
  void forward_batch(const float* x, std::span<LayerState* const> states,
                     std::span<const int64_t> positions, int64_t d_model, float* y,
                     ThreadPool& pool) const final;

 protected:
  // Rows [row_begin, row_begin + n_rows) of a call belong to one sequence and its state.
  struct Segment {
    int64_t row_begin;
    int64_t n_rows;
    LayerState* state;
  };

  // y [n_rows, d_model] = mixer(x [n_rows, d_model]) for the given segments.
  virtual void run(const float* x, int64_t n_rows, std::span<const Segment> segments, float* y,
                   ThreadPool& pool) const = 0;
};

// Returns the data of an optional tensor (a bias), or nullptr when it is absent.
inline const float* data_or_null(const std::vector<float>& values) {
  return values.empty() ? nullptr : values.data();
}

}  // namespace mambacpp
