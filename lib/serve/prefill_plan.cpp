#include "serve/prefill_plan.h"

#include <algorithm>

#include <fmt/format.h>

#include "core/error.h"

namespace hearth::serve {

std::vector<int64_t> prefill_plan(const std::vector<PrefillDemand>& waiting, int64_t budget) {
  if (budget < 1) throw Error(fmt::format("prefill_plan: budget {}; expected >= 1", budget));
  for (const auto& d : waiting)
    if (d.remaining < 1 || d.room < d.remaining)
      throw Error(fmt::format("prefill_plan: a sequence with {} tokens left and room for {}; expected 1 <= left <= room",
                              d.remaining, d.room));
  const int64_t n = static_cast<int64_t>(waiting.size());
  int64_t best_k = 0, best_T = 0, best_finished = -1;
  double best_progress = -1;
  int64_t room = INT64_MAX;
  for (int64_t k = 1; k <= std::min(n, budget); ++k) {
    room = std::min(room, waiting[k - 1].room);
    const int64_t T = std::min(budget / k, room);
    int64_t finished = 0;
    double progress = 0;
    for (int64_t i = 0; i < k; ++i) {
      const int64_t r = waiting[i].remaining;
      finished += r <= T;
      progress += static_cast<double>(std::min(r, T)) / static_cast<double>(r);
    }
    // Strictly better only (a relative margin absorbs rounding), so that ties keep the fewer rows.
    if (finished > best_finished || (finished == best_finished && progress > best_progress * (1 + 1e-12))) {
      best_k = k;
      best_T = T;
      best_finished = finished;
      best_progress = progress;
    }
  }
  std::vector<int64_t> counts(waiting.size(), 0);
  for (int64_t i = 0; i < best_k; ++i) counts[i] = std::min(waiting[i].remaining, best_T);
  return counts;
}

}  // namespace hearth::serve
