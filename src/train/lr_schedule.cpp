#include "train/lr_schedule.h"

#include <cmath>
#include <numbers>

namespace mambacpp::train {

double LrSchedule::lr_at(int64_t step) const {
  if (warmup_steps > 0 && step <= warmup_steps)
    return peak_lr * static_cast<double>(step) / static_cast<double>(warmup_steps);
  if (step >= total_steps) return total_steps <= warmup_steps ? peak_lr : min_lr;

  const double progress = static_cast<double>(step - warmup_steps) /
                          static_cast<double>(total_steps - warmup_steps);
  return min_lr + 0.5 * (peak_lr - min_lr) * (1.0 + std::cos(std::numbers::pi * progress));
}

}  // namespace mambacpp::train
