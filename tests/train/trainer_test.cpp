// The training loop and its train state, run on QuadraticModel.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <cstdio>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mambacpp/error.h"
#include "train/quadratic_model.h"
#include "train/train_checkpoint.h"
#include "train/trainer.h"
#include "unit/checkpoint_fixtures.h"

namespace mambacpp::testing {
namespace {

using train::TextDataset;
using train::Trainer;
using train::TrainOptions;
using train::TrainOutput;
using QuadraticRef = train::TrainableModelRef<QuadraticModel>;

std::vector<int32_t> cycling_tokens(int n) {
  std::vector<int32_t> tokens(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) tokens[i] = (i * 5 + i / 7) % 50;
  return tokens;
}

TrainOptions small_options() {
  TrainOptions options;
  options.steps = 12;
  options.batch = 3;
  options.ctx = 6;
  options.grad_accum = 2;
  options.lr = 0.05;
  options.warmup = 3;
  options.eval_every = 4;
  options.eval_batches = 2;
  options.seed = 9;
  options.threads = 1;
  return options;
}

TrainOutput quiet_output(const std::string& dir = "") {
  TrainOutput output;
  output.dir = dir;
  output.log = nullptr;
  return output;
}

std::vector<std::vector<float>> values_of(const QuadraticModel& model) {
  std::vector<std::vector<float>> values;
  for (const train::Parameter& p : model.parameters()) values.push_back(p.value);
  return values;
}

TEST(Trainer, LossDecreases) {
  TextDataset data(cycling_tokens(400), 6, 0.1, "test");
  QuadraticModel model = QuadraticModel::initialize(1);
  QuadraticRef ref(model);
  TrainOptions options = small_options();
  options.steps = 60;
  Trainer trainer(ref, data, options, quiet_output());
  const double before = trainer.evaluate();
  trainer.train();
  EXPECT_EQ(trainer.step(), 60);
  EXPECT_LT(trainer.evaluate(), before * 0.5);
}

TEST(Trainer, AccumulationCallsLossPerMicroBatch) {
  TextDataset data(cycling_tokens(400), 6, 0.0, "test");
  QuadraticModel model = QuadraticModel::initialize(1);
  QuadraticRef ref(model);
  TrainOptions options = small_options();
  options.steps = 5;
  options.grad_accum = 3;
  Trainer trainer(ref, data, options, quiet_output());
  trainer.train();
  EXPECT_EQ(model.loss_calls, 15);
}

TEST(Trainer, AccumulationAveragesGradients) {
  // One update with k micro-batches of 1 window equals one update whose gradient is the
  // mean of the k single-window gradients. Clipping is off, so the update uses that mean unchanged.
  TextDataset data(cycling_tokens(400), 6, 0.0, "test");
  TrainOptions options = small_options();
  options.steps = 1;
  options.warmup = 0;
  options.batch = 1;
  options.grad_accum = 4;
  options.clip = 0;
  options.weight_decay = 0;

  QuadraticModel model = QuadraticModel::initialize(1);
  QuadraticRef ref(model);
  Trainer trainer(ref, data, options, quiet_output());
  trainer.train();

  // The same update by hand: mean gradient, then AdamW's first step.
  QuadraticModel expected = QuadraticModel::initialize(1);
  ThreadPool pool(1);
  std::vector<int32_t> window(static_cast<size_t>(data.window()));
  expected.zero_grad();
  for (int micro = 0; micro < 4; ++micro) {
    data.train_batch(options.seed, 1, micro, 1, window.data());
    expected.loss(window.data(), 1, data.window(), true, pool);
  }
  train::AdamW optimizer(expected.parameters(), {options.beta1, options.beta2, options.eps, 0.0});
  for (train::Parameter& p : expected.parameters())
    for (float& g : p.grad) g *= 0.25f;
  optimizer.step(expected.parameters(), train::LrSchedule{options.lr, options.resolved_min_lr(), 0, 1}.lr_at(1));
  EXPECT_EQ(values_of(model), values_of(expected));
}

TEST(Trainer, ResumeIsBitIdentical) {
  TextDataset data(cycling_tokens(400), 6, 0.1, "test");
  const TrainOptions options = small_options();

  QuadraticModel straight = QuadraticModel::initialize(3);
  QuadraticRef straight_ref(straight);
  Trainer straight_trainer(straight_ref, data, options, quiet_output());
  straight_trainer.train();

  TempDir dir;
  {
    QuadraticModel first_half = QuadraticModel::initialize(3);
    QuadraticRef ref(first_half);
    Trainer trainer(ref, data, options, quiet_output(dir.path().string()));
    trainer.train(options.steps / 2);
    trainer.save(dir.path().string());
  }

  QuadraticModel resumed = QuadraticModel::load(dir.path().string());
  QuadraticRef resumed_ref(resumed);
  Trainer resumed_trainer(resumed_ref, data, options, quiet_output());
  resumed_trainer.restore(dir.path().string());
  EXPECT_EQ(resumed_trainer.step(), options.steps / 2);
  resumed_trainer.train();

  EXPECT_EQ(values_of(resumed), values_of(straight));
  EXPECT_EQ(resumed_trainer.optimizer().exp_avg(), straight_trainer.optimizer().exp_avg());
  EXPECT_EQ(resumed_trainer.optimizer().exp_avg_sq(), straight_trainer.optimizer().exp_avg_sq());
}

TEST(Trainer, SavesAtIntervalsAndEnd) {
  TextDataset data(cycling_tokens(400), 6, 0.1, "test");
  TempDir dir;
  write_bytes(dir.file("tokenizer-source.json"), "{}");
  TrainOptions options = small_options();
  options.save_every = 5;
  QuadraticModel model = QuadraticModel::initialize(3);
  QuadraticRef ref(model);
  TrainOutput output = quiet_output(dir.file("out"));
  output.tokenizer_path = dir.file("tokenizer-source.json");
  output.data_files = {"a.txt"};
  Trainer trainer(ref, data, options, output);

  trainer.train(7);
  EXPECT_EQ(train::read_train_state(dir.file("out")).progress.step, 5);
  trainer.train();
  train::SavedTrainState saved = train::read_train_state(dir.file("out"));
  EXPECT_EQ(saved.progress.step, 12);
  EXPECT_EQ(saved.optimizer_steps, 12);
  EXPECT_EQ(saved.progress.data_files, std::vector<std::string>{"a.txt"});
  EXPECT_EQ(saved.options.lr, options.lr);
  EXPECT_TRUE(fs::exists(dir.file("out/model.safetensors")));
  EXPECT_TRUE(fs::exists(dir.file("out/optimizer.safetensors")));
  EXPECT_EQ(read_bytes(dir.file("out/tokenizer.json")), "{}");
  EXPECT_FALSE(fs::exists(dir.file("out/.saving")));
}

TEST(Trainer, RestoreRejectsOtherOptions) {
  TextDataset data(cycling_tokens(400), 6, 0.1, "test");
  TempDir dir;
  QuadraticModel model = QuadraticModel::initialize(3);
  QuadraticRef ref(model);
  Trainer trainer(ref, data, small_options(), quiet_output());
  trainer.train(2);
  trainer.save(dir.path().string());

  TrainOptions other = small_options();
  other.lr = 0.01;
  QuadraticModel loaded = QuadraticModel::load(dir.path().string());
  QuadraticRef loaded_ref(loaded);
  Trainer other_trainer(loaded_ref, data, other, quiet_output());
  expect_error_naming([&] { other_trainer.restore(dir.path().string()); },
                      {dir.file("train_state.json"), "option lr"});
}

TEST(Trainer, RestoreRejectsOtherData) {
  TextDataset data(cycling_tokens(400), 6, 0.1, "test");
  TempDir dir;
  QuadraticModel model = QuadraticModel::initialize(3);
  QuadraticRef ref(model);
  Trainer trainer(ref, data, small_options(), quiet_output());
  trainer.train(2);
  trainer.save(dir.path().string());

  TextDataset other_data(cycling_tokens(401), 6, 0.1, "test");
  QuadraticModel loaded = QuadraticModel::load(dir.path().string());
  QuadraticRef loaded_ref(loaded);
  Trainer other_trainer(loaded_ref, other_data, small_options(), quiet_output());
  expect_error_naming([&] { other_trainer.restore(dir.path().string()); },
                      {dir.file("train_state.json"), "training text differs", "400 tokens saved"});
}

TEST(Trainer, RestoreRejectsOtherWeights) {
  TextDataset data(cycling_tokens(400), 6, 0.1, "test");
  TempDir dir;
  QuadraticModel model = QuadraticModel::initialize(3);
  QuadraticRef ref(model);
  Trainer trainer(ref, data, small_options(), quiet_output());
  trainer.train(2);
  trainer.save(dir.path().string());

  QuadraticModel fresh = QuadraticModel::initialize(3);
  QuadraticRef fresh_ref(fresh);
  Trainer other_trainer(fresh_ref, data, small_options(), quiet_output());
  expect_error_naming([&] { other_trainer.restore(dir.path().string()); },
                      {dir.file("train_state.json"), "weights"});
}

// Reads everything written to `file` since it was opened.
std::string contents_of(FILE* file) {
  std::fflush(file);
  std::rewind(file);
  std::string text;
  for (int c; (c = std::fgetc(file)) != EOF;) text.push_back(static_cast<char>(c));
  return text;
}

TEST(Trainer, ProgressLinesWhenNotTty) {
  TextDataset data(cycling_tokens(400), 6, 0.1, "test");
  QuadraticModel model = QuadraticModel::initialize(3);
  QuadraticRef ref(model);
  TrainOptions options = small_options();  // 12 steps, validation every 4
  options.log_every = 5;
  TrainOutput output = quiet_output();
  output.log = std::tmpfile();
  ASSERT_NE(output.log, nullptr);
  Trainer trainer(ref, data, options, output);
  trainer.train();

  const std::string log = contents_of(output.log);
  std::fclose(output.log);
  EXPECT_EQ(log.find('\r'), std::string::npos) << log;
  std::vector<std::string> lines;
  std::istringstream in(log);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  // Progress at 4 and 8 (before a validation), 5 and 10 (log_every) and 12 (the end),
  // validation at 4, 8 and 12.
  ASSERT_EQ(lines.size(), 8u) << log;
  EXPECT_EQ(lines[0].rfind("step 4/12  loss ", 0), 0u) << lines[0];
  EXPECT_NE(lines[0].find("tokens/s  ETA "), std::string::npos) << lines[0];
  EXPECT_EQ(lines[1].rfind("step 4: validation loss ", 0), 0u) << lines[1];
  EXPECT_EQ(lines[2].rfind("step 5/12", 0), 0u) << lines[2];
  EXPECT_EQ(lines[7].rfind("step 12: validation loss ", 0), 0u) << lines[7];
}

TEST(Trainer, InvalidOptionIsNamed) {
  TextDataset data(cycling_tokens(400), 6, 0.1, "test");
  QuadraticModel model = QuadraticModel::initialize(3);
  QuadraticRef ref(model);
  TrainOptions options = small_options();
  options.grad_accum = 0;
  expect_error_naming([&] { Trainer(ref, data, options, quiet_output()); }, {"grad_accum", "more than 0"});
  options = small_options();
  options.min_lr = 1.0;
  expect_error_naming([&] { Trainer(ref, data, options, quiet_output()); }, {"min_lr", "at most lr"});
}

TEST(Trainer, NonFiniteLossStops) {
  TextDataset data(cycling_tokens(400), 6, 0.1, "test");
  QuadraticModel model = QuadraticModel::initialize(3);
  model.parameters()[0].value[0] = NAN;
  QuadraticRef ref(model);
  Trainer trainer(ref, data, small_options(), quiet_output());
  expect_error_naming([&] { trainer.train(); }, {"step 1", "not finite"});
  EXPECT_EQ(trainer.step(), 0);
}

TEST(TrainCheckpoint, MissingMomentIsNamed) {
  TempDir dir;
  QuadraticModel model = QuadraticModel::initialize(3);
  train::AdamW optimizer(model.parameters(), {});
  train::save_train_state(dir.path().string(), small_options(), {}, optimizer, model.parameters());

  QuadraticModel bigger = QuadraticModel::initialize(3);
  bigger.parameters().push_back(bigger.parameters()[0]);
  bigger.parameters().back().name = "extra.weight";
  train::AdamW bigger_optimizer(bigger.parameters(), {});
  expect_error_naming(
      [&] { train::load_optimizer_state(dir.path().string(), 0, bigger.parameters(), bigger_optimizer); },
      {dir.file("optimizer.safetensors"), "exp_avg.extra.weight", "not found"});
}

TEST(TrainCheckpoint, MomentShapeMismatchIsNamed) {
  TempDir dir;
  QuadraticModel model = QuadraticModel::initialize(3);
  train::AdamW optimizer(model.parameters(), {});
  train::save_train_state(dir.path().string(), small_options(), {}, optimizer, model.parameters());

  model.parameters()[1].shape = {5, 1};
  expect_error_naming(
      [&] { train::load_optimizer_state(dir.path().string(), 0, model.parameters(), optimizer); },
      {dir.file("optimizer.safetensors"), "exp_avg.b.weight", "[5]", "[5, 1]"});
}

TEST(TrainCheckpoint, OptionsRoundTrip) {
  TempDir dir;
  QuadraticModel model = QuadraticModel::initialize(3);
  train::AdamW optimizer(model.parameters(), {});
  TrainOptions options = small_options();
  options.lr = 0.1 + 0.2;  // not exactly representable in decimal with few digits
  options.seed = 0xfedcba9876543210ULL;
  train::TrainProgress progress;
  progress.step = 4;
  progress.data_fingerprint = 0xffffffffffffffffULL;
  train::save_train_state(dir.path().string(), options, progress, optimizer, model.parameters());

  train::SavedTrainState saved = train::read_train_state(dir.path().string());
  EXPECT_EQ(saved.options.lr, options.lr);
  EXPECT_EQ(saved.options.seed, options.seed);
  EXPECT_EQ(saved.progress.step, 4);
  EXPECT_EQ(saved.progress.data_fingerprint, progress.data_fingerprint);
}

TEST(TrainCheckpoint, MalformedStateIsNamed) {
  TempDir dir;
  write_bytes(dir.file("train_state.json"), R"({"format_version": 1, "step": "three"})");
  expect_error_naming([&] { train::read_train_state(dir.path().string()); },
                      {dir.file("train_state.json"), "'step'"});
  write_bytes(dir.file("train_state.json"), R"({"format_version": 2})");
  expect_error_naming([&] { train::read_train_state(dir.path().string()); },
                      {dir.file("train_state.json"), "format_version 2"});
  expect_error_naming([&] { train::read_train_state(dir.file("nowhere")); },
                      {dir.file("nowhere/train_state.json"), "not found"});
}

}  // namespace
}  // namespace mambacpp::testing
