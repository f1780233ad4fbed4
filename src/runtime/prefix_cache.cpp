#include "runtime/prefix_cache.h"

#include <algorithm>

#include "mambacpp/error.h"

namespace mambacpp {

PrefixCache::PrefixCache(int64_t interval, size_t max_snapshots)
    : interval_(interval), max_snapshots_(max_snapshots) {
  if (interval <= 0) throw Error("prefix cache interval must be positive, got " + std::to_string(interval));
}

std::optional<State> PrefixCache::longest_prefix(std::span<const int32_t> ids) {
  auto best = snapshots_.end();
  for (auto it = snapshots_.begin(); it != snapshots_.end(); ++it) {
    size_t n = it->ids.size();
    if (n + 1 > ids.size() || !std::equal(it->ids.begin(), it->ids.end(), ids.begin())) continue;
    if (best == snapshots_.end() || n > best->ids.size()) best = it;
  }
  if (best == snapshots_.end()) return std::nullopt;

  snapshots_.splice(snapshots_.begin(), snapshots_, best);
  return snapshots_.front().state;
}

void PrefixCache::store(std::span<const int32_t> ids, const State& state) {
  MAMBACPP_CHECK(state.n_tokens == static_cast<int64_t>(ids.size()));
  for (auto it = snapshots_.begin(); it != snapshots_.end(); ++it) {
    if (it->ids.size() == ids.size() && std::equal(it->ids.begin(), it->ids.end(), ids.begin())) {
      snapshots_.splice(snapshots_.begin(), snapshots_, it);
      return;
    }
  }
  snapshots_.push_front({std::vector<int32_t>(ids.begin(), ids.end()), state});
  while (snapshots_.size() > max_snapshots_) snapshots_.pop_back();
}

std::vector<float> prefill_with_cache(const Model& model, PrefixCache& cache,
                                      std::span<const int32_t> ids, int64_t chunk, State& state,
                                      ThreadPool& pool, int64_t* reused_tokens) {
  MAMBACPP_CHECK(!ids.empty() && chunk > 0);
  std::optional<State> cached = cache.longest_prefix(ids);
  state = cached ? std::move(*cached) : model.new_state();
  int64_t position = state.n_tokens;
  if (reused_tokens) *reused_tokens = position;

  const int64_t n = static_cast<int64_t>(ids.size());
  std::vector<float> logits(static_cast<size_t>(model.config().padded_vocab_size));
  while (position < n) {
    // Stop each piece at the next snapshot point, or at the end of the prompt.
    int64_t next_snapshot = (position / cache.interval() + 1) * cache.interval();
    int64_t end = std::min({n, position + chunk, next_snapshot});
    bool last = end == n;
    model.forward(ids.subspan(position, end - position), state, last ? LogitsFor::Last : LogitsFor::None,
                  last ? logits.data() : nullptr, pool);
    position = end;
    if (position % cache.interval() == 0) cache.store(ids.first(position), state);
  }
  return logits;
}

}  // namespace mambacpp
