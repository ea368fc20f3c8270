// Learning-rate schedules: linear warmup, then constant, linear decay or cosine decay to lr·min_lr_ratio
// (the shapes of transformers' get_{constant,linear,cosine}_schedule_with_warmup).
#pragma once

#include <cstdint>
#include <string>

namespace hearth::train {

struct ScheduleSpec {
  std::string type = "cosine";  // constant | linear | cosine
  int64_t warmup_steps = 0;
  double min_lr_ratio = 0.0;
};

// Learning rate for optimizer step `step` (0-based) of `total` steps.
double lr_at(const ScheduleSpec& spec, double base_lr, int64_t step, int64_t total);

}  // namespace hearth::train
