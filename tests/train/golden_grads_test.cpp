// The trainable model against the reference implementation's loss and gradients on
// mamba1_tiny and mamba2_tiny, and checkpoints written by training against the
// inference model.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <map>

#include "mambacpp/model.h"
#include "support/golden_file.h"
#include "train/language_model.h"

namespace mambacpp::testing {
namespace {

using train::LanguageModel;
using train::Parameter;

// The reference's tolerance for gradients: per tensor, max |diff| <= 1e-4 * max |g_ref|.
constexpr double kGradRelative = 1e-4;
constexpr double kLossAtol = 1e-5;

std::map<std::string, double>& worst_grad_errors() {
  static std::map<std::string, double> errors;
  return errors;
}

class GoldenGrads : public ::testing::TestWithParam<const char*> {};

TEST_P(GoldenGrads, LossAndEveryGradient) {
  const std::string dir = test_data(std::string("golden/") + GetParam());
  const std::string model_name = std::filesystem::path(GetParam()).begin()->string();
  SafetensorsFile golden(test_data("golden/" + model_name + "/golden_grads.safetensors"));
  const TensorEntry& ids_entry = golden.get("input_ids");
  const std::vector<int32_t> ids = read_ids(golden, "input_ids");
  const double expected_loss = read_floats(golden, "loss_f64")[0];

  LanguageModel model = LanguageModel::load(dir);
  ThreadPool pool(2);
  double loss = model.loss(ids.data(), ids_entry.shape[0], ids_entry.shape[1], true, pool);
  EXPECT_NEAR(loss, expected_loss, kLossAtol);

  // The Hugging Face Mamba-2 file stores lm_head as an untied copy of the embedding. The
  // gradient of the tied reference weight is then the sum of the two.
  std::map<std::string, std::vector<float>> grads;
  for (const Parameter& p : model.parameters()) grads[p.name] = p.grad;
  if (grads.count("lm_head.weight") != 0 && golden.find("grad.lm_head.weight") == nullptr) {
    std::vector<float>& embedding = grads["backbone.embedding.weight"];
    const std::vector<float>& head = grads["lm_head.weight"];
    for (size_t i = 0; i < embedding.size(); ++i) embedding[i] += head[i];
    grads.erase("lm_head.weight");
  }

  int checked = 0;
  double worst_ratio = 0.0;
  for (const auto& [name, grad] : grads) {
    const std::vector<float> expected = read_floats(golden, "grad." + name);
    ASSERT_EQ(expected.size(), grad.size()) << name;
    double max_ref = 0.0, max_diff = 0.0;
    for (size_t i = 0; i < expected.size(); ++i) {
      max_ref = std::max(max_ref, std::abs(static_cast<double>(expected[i])));
      max_diff = std::max(max_diff, std::abs(static_cast<double>(grad[i]) - expected[i]));
    }
    EXPECT_LE(max_diff, kGradRelative * max_ref) << name << ": max |diff| " << max_diff
                                                 << ", max |g_ref| " << max_ref;
    worst_ratio = std::max(worst_ratio, max_ref > 0 ? max_diff / max_ref : max_diff);
    ++checked;
  }
  EXPECT_EQ(checked, static_cast<int>(golden.tensors().size()) - 3);  // less ids and 2 losses
  worst_grad_errors()[GetParam()] = worst_ratio;
}

TEST_P(GoldenGrads, LossWithoutBackwardMatches) {
  const std::string dir = test_data(std::string("golden/") + GetParam());
  const std::string model_name = std::filesystem::path(GetParam()).begin()->string();
  SafetensorsFile golden(test_data("golden/" + model_name + "/golden_grads.safetensors"));
  const TensorEntry& ids_entry = golden.get("input_ids");
  const std::vector<int32_t> ids = read_ids(golden, "input_ids");

  LanguageModel model = LanguageModel::load(dir);
  ThreadPool pool(1);
  double loss = model.loss(ids.data(), ids_entry.shape[0], ids_entry.shape[1], false, pool);
  EXPECT_NEAR(loss, read_floats(golden, "loss_f64")[0], kLossAtol);
  for (const Parameter& p : model.parameters()) {
    for (float g : p.grad) ASSERT_EQ(g, 0.0f) << p.name << " got a gradient without backward";
  }
}

INSTANTIATE_TEST_SUITE_P(Models, GoldenGrads,
                         ::testing::Values("mamba1_tiny", "mamba1_tiny/hf", "mamba2_tiny",
                                           "mamba2_tiny/hf"),
                         [](const auto& info) {
                           std::string name = info.param;
                           for (char& c : name) {
                             if (c == '/') c = '_';
                           }
                           return name;
                         });

// Cross-entropy in double of logits [L, V] for next-token targets, as the loss defines it.
double next_token_loss(const std::vector<float>& logits, const std::vector<int32_t>& ids,
                       int64_t V) {
  double total = 0.0;
  const int64_t L = static_cast<int64_t>(ids.size());
  for (int64_t t = 0; t + 1 < L; ++t) {
    const float* row = logits.data() + t * V;
    double max_logit = row[0];
    for (int64_t v = 1; v < V; ++v) max_logit = std::max(max_logit, static_cast<double>(row[v]));
    double sum = 0.0;
    for (int64_t v = 0; v < V; ++v) sum += std::exp(row[v] - max_logit);
    total += std::log(sum) + max_logit - row[ids[t + 1]];
  }
  return total / static_cast<double>(L - 1);
}

class SavedCheckpoint : public ::testing::TestWithParam<const char*> {};

// A new model written by save() loads in the inference engine, and its logits give the
// loss the trainable model computed in memory.
TEST_P(SavedCheckpoint, LoadsInInferenceModel) {
  ModelConfig config = load_model_config(test_data(std::string("golden/") + GetParam()));
  LanguageModel model = LanguageModel::initialize(config, 1234);
  const std::string out = ::testing::TempDir() + "/saved_" + GetParam();
  std::filesystem::create_directories(out);
  model.save(out);

  std::vector<int32_t> ids;
  for (int i = 0; i < 40; ++i) ids.push_back((i * 37 + 11) % static_cast<int>(config.vocab_size));
  ThreadPool pool(2);
  double train_loss = model.loss(ids.data(), 1, static_cast<int64_t>(ids.size()), false, pool);

  std::shared_ptr<const Model> loaded = Model::load(out);
  const int64_t V = loaded->config().padded_vocab_size;
  std::vector<float> logits(ids.size() * static_cast<size_t>(V));
  State state = loaded->new_state();
  loaded->forward(ids, state, LogitsFor::All, logits.data(), pool);
  EXPECT_NEAR(next_token_loss(logits, ids, V), train_loss, 1e-5);

  LanguageModel reloaded = LanguageModel::load(out);
  ASSERT_EQ(reloaded.parameters().size(), model.parameters().size());
  for (size_t i = 0; i < model.parameters().size(); ++i) {
    EXPECT_EQ(reloaded.parameters()[i].name, model.parameters()[i].name);
    EXPECT_EQ(reloaded.parameters()[i].value, model.parameters()[i].value)
        << model.parameters()[i].name;
  }
}

INSTANTIATE_TEST_SUITE_P(Models, SavedCheckpoint,
                         ::testing::Values("mamba1_tiny", "mamba1_dtrank_bias", "mamba2_tiny",
                                           "mamba2_groups", "mamba2_mlp"));

}  // namespace
}  // namespace mambacpp::testing

// Prints the worst gradient error per model for the closing figures.
class GradErrorPrinter : public ::testing::Environment {
 public:
  void TearDown() override {
    for (const auto& [name, ratio] : mambacpp::testing::worst_grad_errors()) {
      std::printf("worst gradient error %s: %.3g of max |g_ref|\n", name.c_str(), ratio);
    }
  }
};
const auto* const kGradErrorPrinter = ::testing::AddGlobalTestEnvironment(new GradErrorPrinter);
