#pragma once

#include <cstdint>

namespace mambacpp::train {

// Linear warmup, then cosine decay. Steps count optimizer updates from 1 to total_steps.
struct LrSchedule {
  double peak_lr = 3e-4;
  double min_lr = 3e-5;
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;

  // Returns the learning rate of update `step` (1-based). During warmup (step <= W) it is
  // peak * step / W, so it rises from near 0 and reaches the peak at step W. After that it
  // follows a half cosine from the peak at step W to min_lr at total_steps. Steps past
  // total_steps get min_lr.
  double lr_at(int64_t step) const;
};

}  // namespace mambacpp::train
