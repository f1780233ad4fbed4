#include "model/mixer.h"

namespace mambacpp {

void SegmentedMixer::forward(const float* x, int64_t L, LayerState& state, int64_t /*position*/,
                             float* y, ThreadPool& pool) const {
  const Segment whole{0, L, &state};
  run(x, L, std::span<const Segment>(&whole, 1), y, pool);
}

void SegmentedMixer::forward_batch(const float* x, std::span<LayerState* const> states,
                                   std::span<const int64_t> /*positions*/, int64_t /*d_model*/,
                                   float* y, ThreadPool& pool) const {
  std::vector<Segment> segments;
  for (size_t b = 0; b < states.size(); ++b)
    segments.push_back({static_cast<int64_t>(b), 1, states[b]});
  run(x, static_cast<int64_t>(states.size()), segments, y, pool);
}

}  // namespace mambacpp
