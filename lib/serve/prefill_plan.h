// How hearth serve's scheduler shares one step's prefill among the prompts being prefilled (serve/scheduler.h):
// which of them join the step's forward and how many of its prompt tokens each computes. Pure arithmetic, no
// libtorch; the scheduler owns the sequences, the forward and the budget (--prefill-chunk, or less when the step
// also decodes, --step-latency-ms).
//
// The step's forward is one batch: its rows are the sequences chosen, right-padded to the longest, so it costs
// rows × longest tokens whatever each row uses. The plan takes the oldest k sequences (arrival order), each
// min(remaining, T) tokens with T = budget / k, and picks k to
//   1. finish the most prompts in this step (their first tokens come at the end of it), then
//   2. make the most progress counted as Σ tokens / remaining — the share of each prompt's rest done, so that
//      short prompts weigh more than a long one's slice — then
//   3. use the fewest rows (equal prompts: the oldest whole, not all of them in slices).
// So short prompts that arrive together finish together; short prompts beside a long one finish in this step
// while the long one gets the rest of the budget; and since the oldest is always in the step, every prompt
// advances every step it is the oldest: a long prompt cannot starve the ones behind it, nor they it. A row is
// never longer than its `room` (the free slots of its cache row: padding takes slots too).
// Thread-safe: a function of its arguments.
#pragma once

#include <cstdint>
#include <vector>

namespace hearth::serve {

// One sequence waiting for (more of) its prefill.
struct PrefillDemand {
  int64_t remaining = 0;  // prompt tokens not yet in the cache, >= 1
  int64_t room = 0;       // the longest row its cache row can take this step (free slots), >= remaining
};

// `waiting` oldest first; `budget` >= 1: the most rows × longest row the step may compute. Returns the tokens
// each sequence prefills this step, in the order of `waiting` (0: not in this step); the nonzero ones are a
// leading run (the oldest), each <= its remaining, the largest <= every chosen one's room, and their number
// times the largest <= budget. Throws Error on a demand with remaining < 1 or room < remaining, or budget < 1.
std::vector<int64_t> prefill_plan(const std::vector<PrefillDemand>& waiting, int64_t budget);

}  // namespace hearth::serve
