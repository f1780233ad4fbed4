// Prompts that resume from a stored prefix snapshot must generate what a cold run does.
#include <gtest/gtest.h>

#include <algorithm>

#include "mambacpp/model.h"
#include "runtime/prefix_cache.h"
#include "support/golden_file.h"

namespace mambacpp {
namespace {

using testing::test_data;

std::vector<int32_t> prompt_of(int32_t seed, int32_t length) {
  std::vector<int32_t> ids;
  for (int32_t i = 0; i < length; ++i) ids.push_back((seed * 31 + i * 17 + (i * i) % 13) % 250);
  return ids;
}

int32_t argmax(const std::vector<float>& logits, int64_t vocab) {
  return static_cast<int32_t>(std::max_element(logits.begin(), logits.begin() + vocab) - logits.begin());
}

class PrefixCacheTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override { model_ = Model::load(test_data(std::string("golden/") + GetParam())); }

  // Greedy tokens after a prompt whose last logits and state are given.
  std::vector<int32_t> continue_greedy(std::vector<float> logits, State& state, int n) {
    std::vector<int32_t> out;
    const int64_t vocab = model_->config().vocab_size;
    for (int i = 0; i < n; ++i) {
      int32_t token = argmax(logits, vocab);
      out.push_back(token);
      model_->forward(std::span<const int32_t>(&token, 1), state, LogitsFor::Last, logits.data(), pool_);
    }
    return out;
  }

  std::vector<int32_t> cold_run(const std::vector<int32_t>& ids, int n) {
    State state = model_->new_state();
    std::vector<float> logits(model_->config().padded_vocab_size);
    model_->forward(ids, state, LogitsFor::Last, logits.data(), pool_);
    return continue_greedy(logits, state, n);
  }

  std::vector<int32_t> cached_run(PrefixCache& cache, const std::vector<int32_t>& ids, int n,
                                  int64_t* reused) {
    State state;
    std::vector<float> logits = prefill_with_cache(*model_, cache, ids, 512, state, pool_, reused);
    EXPECT_EQ(state.n_tokens, static_cast<int64_t>(ids.size()));
    return continue_greedy(logits, state, n);
  }

  std::shared_ptr<const Model> model_;
  ThreadPool pool_{2};
};

TEST_P(PrefixCacheTest, PromptsAroundTheIntervalMatchColdRuns) {
  PrefixCache cache(64, 16);
  std::vector<int32_t> base = prompt_of(1, 129);
  for (int length : {127, 128, 129}) {
    std::vector<int32_t> ids(base.begin(), base.begin() + length);
    int64_t reused = -1;
    EXPECT_EQ(cached_run(cache, ids, 8, &reused), cold_run(ids, 8)) << "length " << length;
    EXPECT_LE(reused, length - 1);
    // After the first prompt the 64-token snapshot exists; 128 also stores one at 128,
    // which a 128-token prompt must not use (its last token would not be recomputed).
    if (length > 127) {
      EXPECT_EQ(reused, length == 129 ? 128 : 64) << "length " << length;
    }

    // Greedy tokens could agree by luck; the resumed logits must match the cold ones too.
    State resumed, cold = model_->new_state();
    std::vector<float> resumed_logits = prefill_with_cache(*model_, cache, ids, 512, resumed, pool_);
    std::vector<float> cold_logits(resumed_logits.size());
    model_->forward(ids, cold, LogitsFor::Last, cold_logits.data(), pool_);
    testing::expect_close(resumed_logits, cold_logits, 1e-5, 1e-5, "resumed logits");
  }
}

TEST_P(PrefixCacheTest, SamePromptTwiceMatchesColdRun) {
  PrefixCache cache(64, 16);
  std::vector<int32_t> ids = prompt_of(2, 150);
  int64_t reused = -1;
  std::vector<int32_t> first = cached_run(cache, ids, 8, &reused);
  EXPECT_EQ(reused, 0);
  std::vector<int32_t> second = cached_run(cache, ids, 8, &reused);
  EXPECT_EQ(reused, 128);
  EXPECT_EQ(first, cold_run(ids, 8));
  EXPECT_EQ(second, first);
}

TEST_P(PrefixCacheTest, PromptPlusItsOutputMatchesColdRun) {
  PrefixCache cache(64, 16);
  std::vector<int32_t> ids = prompt_of(3, 100);
  std::vector<int32_t> generated = cached_run(cache, ids, 40, nullptr);

  std::vector<int32_t> longer = ids;
  longer.insert(longer.end(), generated.begin(), generated.end());
  longer.push_back(7);
  int64_t reused = -1;
  EXPECT_EQ(cached_run(cache, longer, 8, &reused), cold_run(longer, 8));
  EXPECT_EQ(reused, 64);
}

TEST(PrefixCache, DropsLeastRecentlyUsedSnapshot) {
  PrefixCache cache(2, 2);
  State a, b, c;
  a.n_tokens = b.n_tokens = c.n_tokens = 2;
  std::vector<int32_t> ia = {1, 2}, ib = {3, 4}, ic = {5, 6};
  cache.store(ia, a);
  cache.store(ib, b);
  EXPECT_TRUE(cache.longest_prefix(std::vector<int32_t>{1, 2, 9}));  // a is now most recent
  cache.store(ic, c);                                                   // drops b
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_FALSE(cache.longest_prefix(std::vector<int32_t>{3, 4, 9}));
  EXPECT_TRUE(cache.longest_prefix(std::vector<int32_t>{1, 2, 9}));
  EXPECT_FALSE(cache.longest_prefix(std::vector<int32_t>{1, 2}));  // at most n - 1 tokens
}

INSTANTIATE_TEST_SUITE_P(Models, PrefixCacheTest,
                         ::testing::Values("mamba1_tiny", "mamba2_tiny", "hybrid_attn"));

}  // namespace
}  // namespace mambacpp
