#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "mambacpp/thread_pool.h"
#include "train/adamw.h"
#include "train/lr_schedule.h"
#include "train/parameter.h"
#include "train/text_dataset.h"
#include "train/train_checkpoint.h"
#include "train/train_options.h"

namespace mambacpp::train {

// The model interface the trainer uses: LanguageModel's training functions.
class TrainableModel {
 public:
  virtual ~TrainableModel() = default;
  // Mean next-token loss of ids [batch, seq_len]; with `backward`, adds the gradients
  // into Parameter::grad.
  virtual double loss(const int32_t* ids, int64_t batch, int64_t seq_len, bool backward,
                      ThreadPool& pool) = 0;
  virtual std::vector<Parameter>& parameters() = 0;
  virtual void zero_grad() = 0;
  // Writes the model's files into `dir`, which exists.
  virtual void save(const std::string& dir) const = 0;
};

// A TrainableModel that forwards to any class with LanguageModel's member functions.
template <typename Model>
class TrainableModelRef final : public TrainableModel {
 public:
  explicit TrainableModelRef(Model& model) : model_(model) {}
  double loss(const int32_t* ids, int64_t batch, int64_t seq_len, bool backward,
              ThreadPool& pool) override {
    return model_.loss(ids, batch, seq_len, backward, pool);
  }
  std::vector<Parameter>& parameters() override { return model_.parameters(); }
  void zero_grad() override { model_.zero_grad(); }
  void save(const std::string& dir) const override { model_.save(dir); }

 private:
  Model& model_;
};

// Output settings of a trainer: the checkpoint directory, files to record and the log.
struct TrainOutput {
  std::string dir;              // checkpoint directory; empty: save nothing
  std::string tokenizer_path;   // copied into `dir` as tokenizer.json; empty: none
  std::vector<std::string> data_files;  // recorded in the train state
  FILE* log = stderr;           // progress and validation lines; nullptr: none
};

// Runs AdamW updates of a model on a TextDataset. Each update averages the gradients of
// grad_accum micro-batches of `batch` random training windows, clips their global norm and
// steps with the learning rate of LrSchedule. A validation loss follows every eval_every
// updates, and a checkpoint (model, tokenizer.json, train state) every save_every updates
// and at the end.
class Trainer {
 public:
  // Validates `options` (throws Error naming the option) and builds the optimizer over
  // model.parameters(). `data` must use options.ctx and outlive the trainer.
  Trainer(TrainableModel& model, const TextDataset& data, const TrainOptions& options,
          TrainOutput output);

  // Continues from the train state saved in `dir`: the update count and the AdamW
  // moments. The model's weights are the caller's to load, from the same directory.
  // Throws Error when the saved options or data differ from this trainer's in anything
  // that changes the result, or when the weights are not the ones saved with the state.
  void restore(const std::string& dir);

  // Runs updates until step() == min(stop_at_step, options.steps), saving and
  // evaluating on the way. Throws Error when a loss or gradient norm is not finite.
  void train(int64_t stop_at_step);
  void train() { train(options_.steps); }

  // Mean validation loss over up to eval_batches batches of validation windows (all
  // windows when there are fewer); NaN when the dataset holds out nothing.
  double evaluate();

  // Writes the model, tokenizer.json and the train state into `dir` (created if missing).
  // Files are written into a temporary subdirectory first and renamed into place, the
  // train state last. The train state records a hash of the weights, so restore() rejects
  // the mix of old and new files that an interrupted save can leave.
  void save(const std::string& dir);

  int64_t step() const { return step_; }
  double last_loss() const { return last_loss_; }
  double last_grad_norm() const { return last_grad_norm_; }
  const AdamW& optimizer() const { return optimizer_; }

 private:
  void run_update();
  void report_progress(bool force_line);

  TrainableModel& model_;
  const TextDataset& data_;
  TrainOptions options_;
  TrainOutput output_;
  LrSchedule schedule_;
  AdamW optimizer_;
  std::unique_ptr<ThreadPool> pool_;
  std::vector<int32_t> batch_ids_;
  uint64_t data_fingerprint_ = 0;

  int64_t step_ = 0;
  double last_loss_ = 0;
  double last_grad_norm_ = 0;
  double last_lr_ = 0;
  bool log_is_tty_ = false;
  int64_t run_start_step_ = 0;
  std::chrono::steady_clock::time_point run_start_;
};

}  // namespace mambacpp::train
