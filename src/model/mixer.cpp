#include "model/mixer.h"

#include "ops/scratch.h"

namespace mambacpp {

void SegmentedMixer::forward(const float* x, int64_t L, LayerState& state, int64_t /*position*/,
                             float* y, ThreadPool& pool) const {
  const Segment whole{0, L, &state};
  run(x, L, std::span<const Segment>(&whole, 1), y, pool);
}

void SegmentedMixer::forward_batch(const float* x, std::span<LayerState* const> states,
                                   std::span<const int64_t> /*positions*/, int64_t /*d_model*/,
                                   float* y, ThreadPool& pool) const {
  ScratchFrame scratch;
  const size_t n = states.size();
  Segment* segments = scratch.take<Segment>(n);
  for (size_t b = 0; b < n; ++b) segments[b] = {static_cast<int64_t>(b), 1, states[b]};
  run(x, static_cast<int64_t>(n), {segments, n}, y, pool);
}

}  // namespace mambacpp
