#pragma once

#include <cstdint>

namespace mambacpp::train {

// Everything that fixes a training run's result. A resumed run reuses the stored values.
struct TrainOptions {
  int64_t steps = 1000;           // optimizer updates in the whole run
  int64_t batch = 8;              // sequences per micro-batch
  int64_t ctx = 256;              // tokens each sequence is read with (windows are ctx + 1)
  int64_t grad_accum = 1;         // micro-batches per update; their gradients are averaged
  double lr = 3e-4;               // peak learning rate
  double min_lr = -1;             // learning rate at the last step; below 0: lr / 10
  int64_t warmup = 100;           // updates of linear warmup
  double weight_decay = 0.1;
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double clip = 1.0;              // maximum global gradient norm; 0 turns clipping off
  double validation_fraction = 0.1;
  int64_t eval_every = 100;       // updates between validation losses; 0: only at the end
  int64_t eval_batches = 8;       // batches of validation windows per evaluation
  int64_t save_every = 0;         // updates between saves; 0: only at the end
  int64_t log_every = 10;         // updates between progress lines when stderr is not a TTY
  uint64_t seed = 0;              // draws the training windows
  int threads = 1;                // worker threads; stored but free to change on resume

  double resolved_min_lr() const { return min_lr >= 0 ? min_lr : lr * 0.1; }
};

// Throws Error naming the first option that is out of range (for example grad_accum 0, or
// a min_lr above lr).
void validate_train_options(const TrainOptions& options);

}  // namespace mambacpp::train
