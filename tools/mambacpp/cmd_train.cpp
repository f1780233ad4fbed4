// `mambacpp train`: trains a Mamba language model on plain-text files, from a fresh
// initialization (--config), from a checkpoint's weights (--init) or by continuing a saved
// run (--resume), and saves checkpoints that the other subcommands load.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli_common.h"
#include "commands.h"
#include "mambacpp/config.h"
#include "mambacpp/error.h"
#include "mambacpp/tokenizer.h"
#include "train/language_model.h"
#include "train/text_dataset.h"
#include "train/train_checkpoint.h"
#include "train/trainer.h"

namespace mambacpp::cli {

namespace {

namespace fs = std::filesystem;

struct TrainCommandOptions {
  std::string config_path;
  std::string init_dir;
  std::string resume_dir;
  std::string tokenizer_path;
  std::vector<std::string> data_files;
  std::string out_dir;
  train::TrainOptions train;
  // Flags that may change on --resume because they do not change the weights.
  CLI::Option* eval_every = nullptr;
  CLI::Option* eval_batches = nullptr;
  CLI::Option* save_every = nullptr;
};

// The tokenizer.json of --tokenizer, else of the --init or --resume directory.
std::string tokenizer_path_for(const TrainCommandOptions& opt) {
  if (!opt.tokenizer_path.empty()) return opt.tokenizer_path;
  const std::string dir = !opt.resume_dir.empty() ? opt.resume_dir : opt.init_dir;
  if (dir.empty()) throw CLI::ValidationError("--tokenizer is required with --config");
  const fs::path path = fs::path(dir) / "tokenizer.json";
  if (!fs::exists(path)) throw Error(path.string() + " not found, so pass --tokenizer FILE");
  return path.string();
}

// The options of this run: the flags, or on --resume the saved options with the flags
// that do not change the weights applied on top.
train::TrainOptions options_for(const TrainCommandOptions& opt, train::TrainProgress* saved_progress) {
  if (opt.resume_dir.empty()) return opt.train;
  train::SavedTrainState saved = train::read_train_state(opt.resume_dir);
  *saved_progress = saved.progress;
  train::TrainOptions options = saved.options;
  if (opt.eval_every->count()) options.eval_every = opt.train.eval_every;
  if (opt.eval_batches->count()) options.eval_batches = opt.train.eval_batches;
  if (opt.save_every->count()) options.save_every = opt.train.save_every;
  options.threads = opt.train.threads;
  return options;
}

std::string join(const std::vector<std::string>& items) {
  std::string text;
  for (const std::string& item : items) text += (text.empty() ? "" : ", ") + item;
  return text;
}

train::LanguageModel build_model(const TrainCommandOptions& opt, const ModelConfig* config, uint64_t seed) {
  if (config) return train::LanguageModel::initialize(*config, seed);
  return train::LanguageModel::load(!opt.resume_dir.empty() ? opt.resume_dir : opt.init_dir);
}

// Usage errors are CLI::ValidationError, so they exit 2 like the parser's own. Everything
// that can fail on bad input is checked before the model is built.
void run_train(const TrainCommandOptions& opt) {
  const int sources = !opt.config_path.empty() + !opt.init_dir.empty() + !opt.resume_dir.empty();
  if (sources != 1)
    throw CLI::ValidationError("give exactly one of --config (a new model), --init DIR or --resume DIR");
  const std::string out_dir = !opt.out_dir.empty() ? opt.out_dir : opt.resume_dir;
  if (out_dir.empty())
    throw CLI::ValidationError("--out is required (with --resume it defaults to the resumed directory)");

  std::optional<ModelConfig> config;
  if (!opt.config_path.empty())
    config = parse_model_config(read_text_file(opt.config_path, "--config"), opt.config_path);
  const ModelConfig model_config = config ? *config : load_model_config(!opt.resume_dir.empty() ? opt.resume_dir : opt.init_dir);

  train::TrainProgress saved_progress;
  const train::TrainOptions options = options_for(opt, &saved_progress);
  train::validate_train_options(options);

  std::vector<std::string> data_files = opt.data_files;
  if (data_files.empty()) data_files = saved_progress.data_files;
  if (data_files.empty())
    throw CLI::ValidationError("--data is required: one or more plain-text files to train on");
  for (std::string& file : data_files) file = fs::absolute(file).string();

  const std::string tokenizer_path = tokenizer_path_for(opt);
  const Tokenizer tokenizer = Tokenizer::from_file(tokenizer_path);
  if (static_cast<int64_t>(tokenizer.vocab_size()) > model_config.vocab_size)
    throw Error("--tokenizer: " + tokenizer_path + " has " + std::to_string(tokenizer.vocab_size()) +
                " tokens, more than the model's vocab_size " + std::to_string(model_config.vocab_size));

  train::TextDataset data(train::TextDataset::tokenize_files(data_files, tokenizer), options.ctx,
                          options.validation_fraction, "--data " + join(data_files));
  std::fprintf(stderr, "data: %lld tokens for training, %lld for validation (%lld validation windows of %lld)\n",
               static_cast<long long>(data.train_tokens()), static_cast<long long>(data.validation_tokens()),
               static_cast<long long>(data.validation_windows()), static_cast<long long>(data.window()));

  train::LanguageModel model = build_model(opt, config ? &*config : nullptr, options.seed);
  int64_t parameter_count = 0;
  for (const train::Parameter& p : model.parameters()) parameter_count += p.numel();
  std::fprintf(stderr, "model: %lld parameters, %lld layers, d_model %lld\n", static_cast<long long>(parameter_count),
               static_cast<long long>(model_config.n_layer), static_cast<long long>(model_config.d_model));

  train::TrainableModelRef<train::LanguageModel> trainable(model);
  train::TrainOutput output;
  output.dir = out_dir;
  output.tokenizer_path = tokenizer_path;
  output.data_files = data_files;
  train::Trainer trainer(trainable, data, options, output);
  if (!opt.resume_dir.empty()) {
    trainer.restore(opt.resume_dir);
    if (trainer.step() >= options.steps) {
      std::fprintf(stderr,
                   "the run in %s is complete (step %lld of %lld); to train further, start a new run "
                   "from its weights with --init %s and new options\n",
                   opt.resume_dir.c_str(), static_cast<long long>(trainer.step()),
                   static_cast<long long>(options.steps), opt.resume_dir.c_str());
      return;
    }
    std::fprintf(stderr, "resuming %s at step %lld of %lld\n", opt.resume_dir.c_str(),
                 static_cast<long long>(trainer.step()), static_cast<long long>(options.steps));
  } else if (options.warmup >= options.steps) {
    std::fprintf(stderr,
                 "warning: --warmup %lld is not shorter than --steps %lld, so the learning rate "
                 "never reaches --lr\n",
                 static_cast<long long>(options.warmup), static_cast<long long>(options.steps));
  }
  trainer.train();
}

}  // namespace

void add_train_command(CLI::App& app) {
  auto opt = std::make_shared<TrainCommandOptions>();
  train::TrainOptions& t = opt->train;
  CLI::App* cmd = app.add_subcommand("train", "Train a Mamba language model on plain-text files");

  auto* config = cmd->add_option("--config", opt->config_path,
                                 "config.json (state-spaces schema) of a new model to initialize")
                     ->check(CLI::ExistingFile);
  auto* init = cmd->add_option("--init", opt->init_dir, "Start from the weights of this checkpoint directory")
                   ->check(CLI::ExistingDirectory);
  auto* resume = cmd->add_option("--resume", opt->resume_dir,
                                 "Continue the run saved in this directory, with its saved options")
                     ->check(CLI::ExistingDirectory);
  config->excludes(init)->excludes(resume);
  init->excludes(resume);
  cmd->add_option("--tokenizer", opt->tokenizer_path,
                  "tokenizer.json (default: the --init or --resume directory's)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--data", opt->data_files,
                  "Plain-text files to train on, concatenated (default with --resume: the run's files)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--out", opt->out_dir,
                  "Directory for the checkpoint and train state (created if missing, default with --resume: that directory)");

  // Options that change the weights a run computes, so --resume takes them from the run.
  std::vector<CLI::Option*> run_options{
      cmd->add_option("--steps", t.steps, "Optimizer updates in the whole run")->capture_default_str()->check(kPositive),
      cmd->add_option("--batch", t.batch, "Sequences per micro-batch")->capture_default_str()->check(kPositive),
      cmd->add_option("--ctx", t.ctx, "Tokens per training sequence")->capture_default_str()->check(kPositive),
      cmd->add_option("--grad-accum", t.grad_accum, "Micro-batches per update, with their gradients averaged")
          ->capture_default_str()
          ->check(kPositive),
      cmd->add_option("--lr", t.lr, "Peak learning rate")->capture_default_str()->check(kPositive),
      cmd->add_option("--min-lr", t.min_lr, "Learning rate at the last step (default: --lr / 10)")->check(kNonNegative),
      cmd->add_option("--warmup", t.warmup, "Updates of linear learning-rate warmup")
          ->capture_default_str()
          ->check(kNonNegative),
      cmd->add_option("--weight-decay", t.weight_decay, "AdamW decoupled weight decay")
          ->capture_default_str()
          ->check(kNonNegative),
      cmd->add_option("--clip", t.clip, "Maximum global gradient norm (0: no clipping)")
          ->capture_default_str()
          ->check(kNonNegative),
      cmd->add_option("--val-fraction", t.validation_fraction,
                      "Fraction of the tokens, taken from the end, held out for validation")
          ->capture_default_str()
          ->check(CLI::Range(0.0, 0.99)),
      cmd->add_option("--seed", t.seed, "Seed of the initialization and of the training windows")->capture_default_str(),
  };
  for (CLI::Option* option : run_options) option->excludes(resume);

  opt->eval_every = cmd->add_option("--eval-every", t.eval_every,
                                    "Updates between validation losses (0: only at the end)")
                        ->capture_default_str()
                        ->check(kNonNegative);
  opt->eval_batches = cmd->add_option("--eval-batches", t.eval_batches, "Batches of validation windows per evaluation")
                          ->capture_default_str()
                          ->check(kPositive);
  opt->save_every = cmd->add_option("--save-every", t.save_every, "Updates between saves (0: only at the end)")
                        ->capture_default_str()
                        ->check(kNonNegative);
  add_threads_option(*cmd, t.threads);
  cmd->callback([opt] { run_train(*opt); });
}

}  // namespace mambacpp::cli
