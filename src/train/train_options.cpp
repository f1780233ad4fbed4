#include "train/train_options.h"

#include <cmath>
#include <cstdio>
#include <string>

#include "mambacpp/error.h"

namespace mambacpp::train {

namespace {

void require(bool ok, const std::string& option, const std::string& requirement, double value) {
  if (!ok) {
    char text[64];
    std::snprintf(text, sizeof text, "%.17g", value);
    throw Error("training option " + option + " must be " + requirement + ", got " + text);
  }
}

}  // namespace

void validate_train_options(const TrainOptions& o) {
  require(o.steps > 0, "steps", "more than 0", static_cast<double>(o.steps));
  require(o.batch > 0, "batch", "more than 0", static_cast<double>(o.batch));
  require(o.ctx > 0, "ctx", "more than 0", static_cast<double>(o.ctx));
  require(o.grad_accum > 0, "grad_accum", "more than 0", static_cast<double>(o.grad_accum));
  require(o.lr > 0 && std::isfinite(o.lr), "lr", "a finite number more than 0", o.lr);
  require(o.min_lr <= o.lr, "min_lr", "at most lr", o.min_lr);
  require(o.warmup >= 0, "warmup", "0 or more", static_cast<double>(o.warmup));
  require(o.weight_decay >= 0, "weight_decay", "0 or more", o.weight_decay);
  require(o.beta1 >= 0 && o.beta1 < 1, "beta1", "in [0, 1)", o.beta1);
  require(o.beta2 >= 0 && o.beta2 < 1, "beta2", "in [0, 1)", o.beta2);
  require(o.eps > 0, "eps", "more than 0", o.eps);
  require(o.clip >= 0, "clip", "0 or more", o.clip);
  require(o.eval_every >= 0, "eval_every", "0 or more", static_cast<double>(o.eval_every));
  require(o.eval_batches > 0, "eval_batches", "more than 0", static_cast<double>(o.eval_batches));
  require(o.save_every >= 0, "save_every", "0 or more", static_cast<double>(o.save_every));
  require(o.log_every > 0, "log_every", "more than 0", static_cast<double>(o.log_every));
  require(o.threads > 0, "threads", "more than 0", o.threads);
}

}  // namespace mambacpp::train
