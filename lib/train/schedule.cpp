#include "train/schedule.h"

#include <algorithm>
#include <cmath>

namespace hearth::train {

double lr_at(const ScheduleSpec& s, double base_lr, int64_t step, int64_t total) {
  if (s.warmup_steps > 0 && step < s.warmup_steps) return base_lr * double(step + 1) / double(s.warmup_steps);
  if (s.type == "constant") return base_lr;
  const int64_t decay_steps = std::max<int64_t>(1, total - s.warmup_steps);
  const double progress = std::clamp(double(step - s.warmup_steps) / double(decay_steps), 0.0, 1.0);
  const double floor = s.min_lr_ratio;
  double factor = s.type == "linear" ? 1.0 - progress : 0.5 * (1.0 + std::cos(M_PI * progress));
  return base_lr * (floor + (1.0 - floor) * factor);
}

}  // namespace hearth::train
