// Training the real language model: a run saved halfway and resumed ends with the same
// weights, bit for bit, as a run that never stopped, and the loss goes down.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "mambacpp/tokenizer.h"
#include "support/golden_file.h"
#include "train/language_model.h"
#include "train/text_dataset.h"
#include "train/trainer.h"
#include "unit/checkpoint_fixtures.h"

namespace mambacpp::testing {
namespace {

using train::LanguageModel;
using train::TextDataset;
using train::Trainer;
using train::TrainableModelRef;
using train::TrainOptions;
using train::TrainOutput;

TrainOptions small_run() {
  TrainOptions o;
  o.steps = 6;
  o.batch = 2;
  o.ctx = 32;
  o.lr = 3e-3;
  o.warmup = 2;
  o.eval_every = 0;
  o.eval_batches = 2;
  o.seed = 7;
  o.threads = 2;
  return o;
}

TextDataset shakespeare_bytes(int64_t ctx) {
  Tokenizer tokenizer = Tokenizer::from_file(test_data("tokenizer/byte_level/tokenizer.json"));
  std::vector<int32_t> tokens = TextDataset::tokenize_files(
      {test_data("text/tinyshakespeare/input.txt")}, tokenizer);
  tokens.resize(20000);
  return TextDataset(std::move(tokens), ctx, 0.1, "tinyshakespeare");
}

// Output settings that print no progress lines.
TrainOutput quiet_output() {
  TrainOutput output;
  output.log = nullptr;
  return output;
}

class TrainResume : public ::testing::TestWithParam<const char*> {};

TEST_P(TrainResume, SameWeightsAsUninterruptedRun) {
  const ModelConfig config = load_model_config(test_data(std::string("golden/") + GetParam()));
  const TrainOptions options = small_run();
  const TextDataset data = shakespeare_bytes(options.ctx);
  const TrainOutput quiet = quiet_output();

  LanguageModel straight = LanguageModel::initialize(config, options.seed);
  TrainableModelRef straight_ref(straight);
  Trainer straight_trainer(straight_ref, data, options, quiet);
  straight_trainer.train();

  // The same run, saved after half the steps and continued in fresh objects.
  TempDir dir;
  {
    LanguageModel first = LanguageModel::initialize(config, options.seed);
    TrainableModelRef first_ref(first);
    Trainer first_half(first_ref, data, options, quiet);
    first_half.train(options.steps / 2);
    first_half.save(dir.path().string());
  }
  LanguageModel resumed = LanguageModel::load(dir.path().string());
  TrainableModelRef resumed_ref(resumed);
  Trainer second_half(resumed_ref, data, options, quiet);
  second_half.restore(dir.path().string());
  second_half.train();

  ASSERT_EQ(resumed.parameters().size(), straight.parameters().size());
  for (size_t i = 0; i < straight.parameters().size(); ++i) {
    EXPECT_EQ(resumed.parameters()[i].value, straight.parameters()[i].value)
        << straight.parameters()[i].name << " differs after resuming";
  }
}

TEST_P(TrainResume, LossGoesDown) {
  const ModelConfig config = load_model_config(test_data(std::string("golden/") + GetParam()));
  TrainOptions options = small_run();
  options.steps = 30;
  const TextDataset data = shakespeare_bytes(options.ctx);
  const TrainOutput quiet = quiet_output();

  LanguageModel model = LanguageModel::initialize(config, options.seed);
  TrainableModelRef ref(model);
  Trainer trainer(ref, data, options, quiet);
  const double before = trainer.evaluate();
  trainer.train();
  const double after = trainer.evaluate();
  // Bytes of English start near ln(256) = 5.5 nats; 30 small steps reach about 3.
  EXPECT_LT(after, before - 1.0) << "validation loss " << before << " -> " << after;
}

INSTANTIATE_TEST_SUITE_P(Models, TrainResume,
                         ::testing::Values("mamba1_tiny", "mamba2_tiny", "mamba2_mlp"));

}  // namespace
}  // namespace mambacpp::testing
