#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <optional>
#include <span>
#include <vector>

#include "mambacpp/model.h"
#include "mambacpp/state.h"

namespace mambacpp {

// Snapshots of a model's state at every `interval` tokens of the prompts it has read. A
// prompt that shares a prefix with an earlier one (the same prompt again, a conversation
// that grew, a shared system prompt) resumes from the longest stored prefix instead of
// reading it again. The snapshot used for a prompt of n tokens is always at
// most n - 1 tokens long, so the last token's logits are computed fresh.
class PrefixCache {
 public:
  // Keeps at most `max_snapshots`, dropping the least recently used.
  PrefixCache(int64_t interval, size_t max_snapshots);

  int64_t interval() const { return interval_; }
  size_t size() const { return snapshots_.size(); }

  // Returns the longest stored prefix of `ids` of at most ids.size() - 1 tokens, as a copy
  // of its state (whose n_tokens is the prefix length), or nothing.
  std::optional<State> longest_prefix(std::span<const int32_t> ids);

  // Stores the state after reading `ids` (state.n_tokens == ids.size()).
  void store(std::span<const int32_t> ids, const State& state);

 private:
  struct Snapshot {
    std::vector<int32_t> ids;
    State state;
  };
  int64_t interval_;
  size_t max_snapshots_;
  std::list<Snapshot> snapshots_;  // most recently used first
};

// Reads `ids` into `state` (a new state is made here), resuming from the cache's longest
// prefix and storing a snapshot at every multiple of the interval on the way. Feeds at
// most `chunk` tokens per forward call. Returns the logits of the last token
// [padded_vocab] and the number of tokens taken from the cache.
std::vector<float> prefill_with_cache(const Model& model, PrefixCache& cache,
                                      std::span<const int32_t> ids, int64_t chunk, State& state,
                                      ThreadPool& pool, int64_t* reused_tokens = nullptr);

}  // namespace mambacpp
