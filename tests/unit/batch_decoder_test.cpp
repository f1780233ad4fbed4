// Sequences decoded together must produce exactly what they produce alone.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "mambacpp/model.h"
#include "runtime/batch_decoder.h"
#include "support/golden_file.h"

namespace mambacpp {
namespace {

using testing::test_data;

class BatchDecoder : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override { model_ = Model::load(test_data(std::string("golden/") + GetParam())); }

  DecodeRequest make_request(const std::vector<int32_t>& prompt, uint64_t seed, float temperature) {
    SamplerParams params;
    params.temperature = temperature;
    params.seed = seed;
    DecodeRequest r{model_->new_state(), std::vector<float>(model_->config().padded_vocab_size),
                    Sampler(params, model_->config().vocab_size), 0, -1, nullptr, {}, false};
    model_->forward(prompt, r.state, LogitsFor::Last, r.logits.data(), pool_);
    r.max_tokens = 12;
    return r;
  }

  // 4 distinct prompts x 3 requests each, in a shuffled order; returns each request's
  // output indexed by its original number.
  std::vector<std::vector<int32_t>> run(int64_t max_batch, float temperature, uint32_t shuffle_seed) {
    const std::vector<std::vector<int32_t>> prompts = {
        {1, 2, 3}, {200, 17, 5, 9, 11, 4}, {42}, {7, 7, 7, 7, 7, 7, 7, 7, 7, 30}};
    std::vector<DecodeRequest> requests;
    for (int i = 0; i < 12; ++i) requests.push_back(make_request(prompts[i % 4], 100 + i, temperature));
    requests[5].max_tokens = 3;  // finishes early; others keep going

    std::vector<DecodeRequest*> order;
    for (auto& r : requests) order.push_back(&r);
    std::mt19937 rng(shuffle_seed);
    std::shuffle(order.begin(), order.end(), rng);

    decode_requests(*model_, order, max_batch, pool_);
    std::vector<std::vector<int32_t>> outputs;
    for (auto& r : requests) {
      EXPECT_TRUE(r.done);
      outputs.push_back(r.output);
    }
    return outputs;
  }

  std::shared_ptr<const Model> model_;
  ThreadPool pool_{2};
};

TEST_P(BatchDecoder, GreedyTokensIndependentOfBatch) {
  auto alone = run(1, 0.0f, 1);
  EXPECT_EQ(alone[5].size(), 3u);
  EXPECT_EQ(alone[0], alone[4]);  // the same prompt, greedy
  EXPECT_EQ(run(3, 0.0f, 2), alone);
  EXPECT_EQ(run(5, 0.0f, 3), alone);
  EXPECT_EQ(run(12, 0.0f, 4), alone);
}

TEST_P(BatchDecoder, SampledTokensIndependentOfBatch) {
  auto alone = run(1, 1.0f, 5);
  EXPECT_EQ(run(5, 1.0f, 6), alone);
  EXPECT_EQ(run(16, 1.0f, 7), alone);
}

// forward_batch must give each row exactly the logits forward() gives it alone.
TEST_P(BatchDecoder, BatchLogitsEqualSingleLogitsBitForBit) {
  const int64_t V = model_->config().padded_vocab_size;
  std::vector<State> states;
  std::vector<int32_t> next;
  for (int b = 0; b < 5; ++b) {
    states.push_back(model_->new_state());
    std::vector<int32_t> prompt;
    for (int i = 0; i <= b * 3; ++i) prompt.push_back((b * 37 + i * 11) % 250);
    model_->forward(prompt, states.back(), LogitsFor::None, nullptr, pool_);
    next.push_back((b * 13 + 1) % 250);
  }
  std::vector<State> copies = states;

  std::vector<State*> pointers;
  for (auto& s : states) pointers.push_back(&s);
  std::vector<float> batched(5 * V);
  model_->forward_batch(next, pointers, batched.data(), pool_);

  for (int b = 0; b < 5; ++b) {
    std::vector<float> single(V);
    model_->forward(std::span<const int32_t>(&next[b], 1), copies[b], LogitsFor::Last, single.data(), pool_);
    EXPECT_TRUE(std::equal(single.begin(), single.end(), batched.begin() + b * V)) << "sequence " << b;
    EXPECT_EQ(copies[b].n_tokens, states[b].n_tokens);
    for (size_t i = 0; i < states[b].layers.size(); ++i)
      EXPECT_EQ(copies[b].layers[i].ssm_state, states[b].layers[i].ssm_state) << "layer " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Models, BatchDecoder,
                         ::testing::Values("mamba1_tiny", "mamba1_dtrank_bias", "mamba2_tiny", "hybrid_attn"));

}  // namespace
}  // namespace mambacpp
