#include "train/trainer.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "mambacpp/error.h"
#include "train/gradient_clipping.h"
#include "train/train_options.h"

namespace mambacpp::train {

namespace {

namespace fs = std::filesystem;

// Validates the options before the optimizer allocates its moments.
const std::vector<Parameter>& validated_parameters(TrainableModel& model, const TrainOptions& options,
                                                   const TextDataset& data) {
  validate_train_options(options);
  MAMBACPP_CHECK(data.context() == options.ctx);
  return model.parameters();
}

// Returns the name of the first option whose saved value differs and would change the
// weights a run computes, or an empty string.
std::string first_result_changing_difference(const TrainOptions& a, const TrainOptions& b) {
  if (a.steps != b.steps) return "steps";
  if (a.batch != b.batch) return "batch";
  if (a.ctx != b.ctx) return "ctx";
  if (a.grad_accum != b.grad_accum) return "grad_accum";
  if (a.lr != b.lr) return "lr";
  if (a.min_lr != b.min_lr) return "min_lr";
  if (a.warmup != b.warmup) return "warmup";
  if (a.weight_decay != b.weight_decay) return "weight_decay";
  if (a.beta1 != b.beta1) return "beta1";
  if (a.beta2 != b.beta2) return "beta2";
  if (a.eps != b.eps) return "eps";
  if (a.clip != b.clip) return "clip";
  if (a.validation_fraction != b.validation_fraction) return "validation_fraction";
  if (a.seed != b.seed) return "seed";
  return "";
}

std::string format_duration(double seconds) {
  const long long total = static_cast<long long>(std::max(0.0, seconds));
  char text[32];
  std::snprintf(text, sizeof text, "%lld:%02lld:%02lld", total / 3600, total / 60 % 60, total % 60);
  return text;
}

}  // namespace

Trainer::Trainer(TrainableModel& model, const TextDataset& data, const TrainOptions& options,
                 TrainOutput output)
    : model_(model),
      data_(data),
      options_(options),
      output_(std::move(output)),
      optimizer_(validated_parameters(model, options, data),
                 AdamWOptions{options.beta1, options.beta2, options.eps, options.weight_decay}),
      pool_(std::make_unique<ThreadPool>(options.threads)) {
  schedule_.peak_lr = options_.lr;
  schedule_.min_lr = options_.resolved_min_lr();
  schedule_.warmup_steps = options_.warmup;
  schedule_.total_steps = options_.steps;
  batch_ids_.resize(static_cast<size_t>(options_.batch * data_.window()));
  data_fingerprint_ = fingerprint_tokens(data_.tokens());
  log_is_tty_ = output_.log != nullptr && isatty(fileno(output_.log));
}

void Trainer::restore(const std::string& dir) {
  const SavedTrainState saved = read_train_state(dir);
  const std::string state_file = (fs::path(dir) / kTrainStateFile).string();
  const std::string option = first_result_changing_difference(saved.options, options_);
  if (!option.empty())
    throw Error(state_file + ": the run to resume has another value of option " + option +
                ". Resume with the options the run was started with");
  if (saved.progress.data_tokens != data_.total_tokens() || saved.progress.data_fingerprint != data_fingerprint_)
    throw Error(state_file + ": the training text differs from the run's (" +
                std::to_string(saved.progress.data_tokens) + " tokens saved, " +
                std::to_string(data_.total_tokens()) + " now). Give the same --data files in the same order");
  if (saved.progress.weights_fingerprint != fingerprint_parameters(model_.parameters()))
    throw Error(state_file + ": the model's weights are not the ones saved with this train state (an "
                "interrupted save, or weights from elsewhere). Resume from a directory of one completed save");
  if (saved.progress.step > options_.steps)
    throw Error(state_file + ": step " + std::to_string(saved.progress.step) + " is past the run's " +
                std::to_string(options_.steps) + " steps");

  load_optimizer_state(dir, saved.optimizer_steps, model_.parameters(), optimizer_);
  step_ = saved.progress.step;
}

void Trainer::train(int64_t stop_at_step) {
  const int64_t last = std::min(stop_at_step, options_.steps);
  run_start_step_ = step_;
  run_start_ = std::chrono::steady_clock::now();

  while (step_ < last) {
    run_update();
    const bool final_step = step_ == options_.steps;
    const bool evaluate_now = data_.validation_windows() > 0 &&
                              ((options_.eval_every > 0 && step_ % options_.eval_every == 0) || final_step);
    report_progress(final_step || evaluate_now);

    if (evaluate_now) {
      const double validation_loss = evaluate();
      if (output_.log)
        std::fprintf(output_.log, "step %lld: validation loss %.4f (perplexity %.2f)\n",
                     static_cast<long long>(step_), validation_loss, std::exp(validation_loss));
    }
    if (!output_.dir.empty() && ((options_.save_every > 0 && step_ % options_.save_every == 0) || final_step)) {
      save(output_.dir);
      if (output_.log)
        std::fprintf(output_.log, "step %lld: saved %s\n", static_cast<long long>(step_), output_.dir.c_str());
    }
  }
}

void Trainer::run_update() {
  model_.zero_grad();
  const int64_t update = step_ + 1;  // 1-based, as LrSchedule counts
  double loss_sum = 0;
  for (int64_t micro = 0; micro < options_.grad_accum; ++micro) {
    data_.train_batch(options_.seed, update, micro, options_.batch, batch_ids_.data());
    loss_sum += model_.loss(batch_ids_.data(), options_.batch, data_.window(), /*backward=*/true, *pool_);
  }
  std::vector<Parameter>& parameters = model_.parameters();
  if (options_.grad_accum > 1) scale_grads(parameters, 1.0f / static_cast<float>(options_.grad_accum));

  last_loss_ = loss_sum / static_cast<double>(options_.grad_accum);
  last_grad_norm_ = options_.clip > 0 ? clip_grad_norm(parameters, options_.clip) : global_grad_norm(parameters);
  if (!std::isfinite(last_loss_) || !std::isfinite(last_grad_norm_))
    throw Error("step " + std::to_string(update) + ": the loss (" + std::to_string(last_loss_) +
                ") or the gradient norm (" + std::to_string(last_grad_norm_) +
                ") is not finite, so the weights were not updated. Try a lower --lr or a longer --warmup");

  last_lr_ = schedule_.lr_at(update);
  optimizer_.step(parameters, last_lr_, pool_.get());
  step_ = update;
}

void Trainer::report_progress(bool force_line) {
  if (!output_.log) return;
  const bool last = step_ == options_.steps;
  if (!log_is_tty_ && !force_line && step_ % options_.log_every != 0) return;

  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - run_start_).count();
  const double steps_done = static_cast<double>(step_ - run_start_step_);
  const double tokens = steps_done * static_cast<double>(options_.batch * options_.ctx * options_.grad_accum);
  const double eta = seconds / std::max(steps_done, 1.0) * static_cast<double>(options_.steps - step_);
  std::fprintf(output_.log, "%sstep %lld/%lld  loss %.4f  lr %.3e  grad norm %.3f  %.0f tokens/s  ETA %s",
               log_is_tty_ ? "\r" : "", static_cast<long long>(step_), static_cast<long long>(options_.steps),
               last_loss_, last_lr_, last_grad_norm_, tokens / std::max(seconds, 1e-9),
               format_duration(eta).c_str());
  // On a terminal the line stays open for the next \r update, unless another line follows.
  if (!log_is_tty_ || force_line || last) {
    std::fprintf(output_.log, log_is_tty_ ? "\033[K\n" : "\n");
  } else {
    std::fprintf(output_.log, "\033[K");
  }
  std::fflush(output_.log);
}

double Trainer::evaluate() {
  const int64_t windows = std::min(data_.validation_windows(), options_.eval_batches * options_.batch);
  if (windows == 0) return std::nan("");
  std::vector<int32_t> ids(static_cast<size_t>(options_.batch * data_.window()));
  double weighted_sum = 0;
  for (int64_t first = 0; first < windows; first += options_.batch) {
    const int64_t count = std::min(options_.batch, windows - first);
    data_.validation_batch(first, count, ids.data());
    weighted_sum += model_.loss(ids.data(), count, data_.window(), /*backward=*/false, *pool_) *
                    static_cast<double>(count);
  }
  return weighted_sum / static_cast<double>(windows);
}

void Trainer::save(const std::string& dir) {
  const fs::path out(dir);
  fs::create_directories(out);
  const fs::path staging = out / ".saving";
  fs::remove_all(staging);
  fs::create_directories(staging);

  model_.save(staging.string());
  if (!output_.tokenizer_path.empty())
    fs::copy_file(output_.tokenizer_path, staging / "tokenizer.json", fs::copy_options::overwrite_existing);
  TrainProgress progress{step_, data_.total_tokens(), data_fingerprint_,
                         fingerprint_parameters(model_.parameters()), output_.data_files};
  save_train_state(staging.string(), options_, progress, optimizer_, model_.parameters());

  // The train state goes last: it names the step the other files belong to.
  for (const fs::directory_entry& entry : fs::directory_iterator(staging))
    if (entry.path().filename() != kTrainStateFile) fs::rename(entry.path(), out / entry.path().filename());
  fs::rename(staging / kTrainStateFile, out / kTrainStateFile);
  fs::remove(staging);
}

}  // namespace mambacpp::train
