// Mamba-2 prefill by chunks: the logits must not depend on chunk_size or on where a
// prompt is split, and a prefill that continues from an earlier state must match the
// reference's one-shot logits.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>

#include <unistd.h>

#include "mambacpp/error.h"
#include "mambacpp/model.h"
#include "support/golden_file.h"

namespace mambacpp::testing {
namespace {

constexpr double kLogitsAtol = 1e-5, kLogitsRtol = 1e-5;

class Mamba2Chunking : public ::testing::TestWithParam<const char*> {
 protected:
  std::string model_dir() const { return test_data(std::string("golden/") + GetParam()); }

  // Logits of every position of `ids` fed in pieces that end at `cuts` (and at the end).
  static std::vector<float> logits_with_cuts(const Model& model, const std::vector<int32_t>& ids,
                                             const std::set<int64_t>& cuts, ThreadPool& pool) {
    const int64_t n = static_cast<int64_t>(ids.size()), V = model.config().padded_vocab_size;
    std::vector<float> logits(static_cast<size_t>(n * V));
    State state = model.new_state();
    int64_t begin = 0;
    std::vector<int64_t> ends(cuts.begin(), cuts.end());
    ends.push_back(n);
    for (int64_t end : ends) {
      if (end <= begin || end > n) continue;
      model.forward(std::span<const int32_t>(ids.data() + begin, end - begin), state,
                    LogitsFor::All, logits.data() + begin * V, pool);
      begin = end;
    }
    return logits;
  }

  ThreadPool pool_{2};
};

// Prompts of lengths 1, 2, 3, c - 1, c, c + 1, 2c and 3c + 5 for chunk sizes c of 8, 16,
// 64 and 256 are fed whole and split at random points. They are compared against
// token-by-token decode, the recurrent step, which has no chunks. A model is causal, so
// the logits of a prompt of length n are the first n rows of the longest prompt's logits.
TEST_P(Mamba2Chunking, LogitsIndependentOfChunkSizeAndSplits) {
  auto reference_model = Model::load(model_dir());
  const int64_t V = reference_model->config().padded_vocab_size;
  const int64_t max_length = 3 * 256 + 5;

  std::mt19937 rng(2024);
  std::uniform_int_distribution<int32_t> token(0, static_cast<int32_t>(
                                                      reference_model->config().vocab_size - 1));
  std::vector<int32_t> ids(static_cast<size_t>(max_length));
  for (int32_t& id : ids) id = token(rng);

  std::set<int64_t> every_token;
  for (int64_t t = 1; t < max_length; ++t) every_token.insert(t);
  std::vector<float> expected = logits_with_cuts(*reference_model, ids, every_token, pool_);

  double worst = 0.0;
  for (int64_t chunk : {8, 16, 64, 256}) {
    LoadOptions options;
    options.chunk_size = chunk;
    auto model = Model::load(model_dir(), options);

    for (int64_t length : {int64_t{1}, int64_t{2}, int64_t{3}, chunk - 1, chunk, chunk + 1,
                           2 * chunk, 3 * chunk + 5}) {
      std::vector<int32_t> prompt(ids.begin(), ids.begin() + length);
      std::vector<float> prompt_expected(expected.begin(), expected.begin() + length * V);
      std::string what = std::string(GetParam()) + " chunk " + std::to_string(chunk) +
                         " length " + std::to_string(length);

      worst = std::max(worst, expect_close(logits_with_cuts(*model, prompt, {}, pool_),
                                           prompt_expected, kLogitsAtol, kLogitsRtol,
                                           what + " whole"));

      if (length < 2) continue;
      std::uniform_int_distribution<int64_t> cut(1, length - 1);
      for (int trial = 0; trial < 2; ++trial) {
        std::set<int64_t> cuts = {cut(rng), cut(rng)};
        std::string where;
        for (int64_t c : cuts) {
          where += ' ';
          where += std::to_string(c);
        }
        worst = std::max(worst, expect_close(logits_with_cuts(*model, prompt, cuts, pool_),
                                             prompt_expected, kLogitsAtol, kLogitsRtol,
                                             what + " split at" + where));
      }
    }
  }
  std::printf("worst |diff| against decode, all chunk sizes and splits, %s: %.3g\n", GetParam(),
              worst);
}

// A prefill that starts from the state of an earlier prefix (a continued conversation)
// gives the reference's one-shot logits: the carried state must decay from the first
// new token on.
TEST_P(Mamba2Chunking, PrefillFromNonZeroStateMatchesReference) {
  auto model = Model::load(model_dir());
  SafetensorsFile golden(test_data(std::string("golden/") + GetParam() + "/golden.safetensors"));
  int checked = 0;
  double worst = 0.0;
  for (int k = 0; golden.find("seq" + std::to_string(k) + ".input_ids"); ++k) {
    std::string seq = "seq" + std::to_string(k);
    std::vector<int32_t> ids = read_ids(golden, seq + ".input_ids");
    if (ids.size() < 4) continue;
    std::vector<float> expected = read_floats(golden, seq + ".logits");
    const int64_t n = static_cast<int64_t>(ids.size());
    for (int64_t prefix : {int64_t{1}, n / 3, n / 2, n - 1}) {
      worst = std::max(worst, expect_close(logits_with_cuts(*model, ids, {prefix}, pool_), expected,
                                           kLogitsAtol, kLogitsRtol,
                                           seq + " continued after " + std::to_string(prefix) +
                                               " tokens"));
      ++checked;
    }
  }
  EXPECT_GT(checked, 0);
  std::printf("worst |diff| against the reference after a prefix, %s: %.3g\n", GetParam(), worst);
}

// in_proj has 2 d_inner + 2 ngroups d_state + n_heads rows. A config.json whose ngroups
// disagrees with the checkpoint is rejected, and the message names the tensor and both
// shapes.
TEST(Mamba2Load, RejectsGroupsThatDisagreeWithTensors) {
  namespace fs = std::filesystem;
  fs::path source = test_data("golden/mamba2_tiny");
  fs::path dir = fs::temp_directory_path() / ("mambacpp_groups_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  fs::copy_file(source / "model.safetensors", dir / "model.safetensors",
                fs::copy_options::overwrite_existing);
  std::ifstream in(source / "config.json");
  std::string config((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string from = "\"ngroups\": 1", to = "\"ngroups\": 2";
  ASSERT_NE(config.find(from), std::string::npos);
  config.replace(config.find(from), from.size(), to);
  std::ofstream(dir / "config.json") << config;

  std::string message;
  try {
    Model::load(dir.string());
  } catch (const Error& e) {
    message = e.what();
  }
  fs::remove_all(dir);
  // d_inner 128, d_state 32, 8 heads: 328 rows as stored, 392 with two groups.
  EXPECT_NE(message.find("in_proj.weight"), std::string::npos) << message;
  EXPECT_NE(message.find("[328, 64]"), std::string::npos) << message;
  EXPECT_NE(message.find("[392, 64]"), std::string::npos) << message;
}

// A decode step of several sequences at once gives each sequence the logits and state,
// bit for bit, of stepping it alone. The sequences start from prompts of different
// lengths, so the attention layers see caches of different sizes.
TEST_P(Mamba2Chunking, BatchDecodeMatchesSingleSequences) {
  auto model = Model::load(model_dir());
  const int64_t V = model->config().padded_vocab_size;
  const std::vector<std::vector<int32_t>> prompts = {{5, 9, 200}, {17}, {3, 1, 4, 1, 5, 9, 2, 6}};
  const int64_t B = static_cast<int64_t>(prompts.size());

  std::vector<State> batched, alone;
  for (const auto& prompt : prompts) {
    batched.push_back(model->new_state());
    model->forward(prompt, batched.back(), LogitsFor::None, nullptr, pool_);
    alone.push_back(batched.back());
  }

  std::vector<State*> pointers;
  for (State& state : batched) pointers.push_back(&state);
  for (int step = 0; step < 4; ++step) {
    std::vector<int32_t> ids;
    for (int64_t b = 0; b < B; ++b) ids.push_back(static_cast<int32_t>(11 * step + 7 * b + 1));
    std::vector<float> batch_logits(static_cast<size_t>(B * V));
    model->forward_batch(ids, pointers, batch_logits.data(), pool_);
    for (int64_t b = 0; b < B; ++b) {
      std::vector<float> single(static_cast<size_t>(V));
      model->forward(std::span<const int32_t>(&ids[b], 1), alone[b], LogitsFor::Last,
                     single.data(), pool_);
      for (int64_t v = 0; v < V; ++v)
        ASSERT_EQ(batch_logits[b * V + v], single[v])
            << "step " << step << " sequence " << b << " logit " << v;
    }
  }
  for (int64_t b = 0; b < B; ++b) {
    EXPECT_EQ(batched[b].n_tokens, alone[b].n_tokens);
    for (size_t i = 0; i < batched[b].layers.size(); ++i) {
      EXPECT_EQ(batched[b].layers[i].conv_state, alone[b].layers[i].conv_state) << b << " " << i;
      EXPECT_EQ(batched[b].layers[i].ssm_state, alone[b].layers[i].ssm_state) << b << " " << i;
      EXPECT_EQ(batched[b].layers[i].kv_cache, alone[b].layers[i].kv_cache) << b << " " << i;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Reference, Mamba2Chunking,
                         ::testing::Values("mamba2_tiny", "mamba2_groups", "mamba2_mlp",
                                           "hybrid_attn"));

}  // namespace
}  // namespace mambacpp::testing
