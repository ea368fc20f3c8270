// prefill_plan (serve/prefill_plan.h): how one scheduler step shares its prefill budget. The plans are worked out
// by hand from the rules in the header (finish the most prompts, then the most progress Σ count / remaining, then
// the fewest rows; the oldest k, T = budget / k, rows within their room); a simulation checks that no prompt waits
// forever whatever arrives behind or before it.
#include <catch2/catch.hpp>

#include <random>

#include "core/error.h"
#include "serve/prefill_plan.h"

using namespace hearth;
using serve::prefill_plan;
using serve::PrefillDemand;
using Counts = std::vector<int64_t>;

namespace {

constexpr int64_t kRoom = 4096;  // a cache row with plenty of room

std::vector<PrefillDemand> demands(const std::vector<int64_t>& remaining) {
  std::vector<PrefillDemand> out;
  for (int64_t r : remaining) out.push_back({r, kRoom});
  return out;
}

}  // namespace

TEST_CASE("prefill_plan: a lone prompt gets the whole budget, as one chunk of a prefill alone", "[serve][prefill_plan]") {
  CHECK(prefill_plan(demands({700}), 512) == Counts{512});
  CHECK(prefill_plan(demands({188}), 512) == Counts{188});
  CHECK(prefill_plan(demands({13}), 16) == Counts{13});
  CHECK(prefill_plan({}, 512).empty());
}

TEST_CASE("prefill_plan: short prompts that arrive together are prefilled together", "[serve][prefill_plan]") {
  // 16 × 13 tokens: k = 16, T = 32, all finish (208 tokens in one forward of 16 rows × 13).
  CHECK(prefill_plan(demands(std::vector<int64_t>(16, 13)), 512) == Counts(16, 13));
  // Different lengths: k = 3, T = 170; the forward is 3 rows × 40.
  CHECK(prefill_plan(demands({13, 40, 7}), 512) == Counts{13, 40, 7});
  // A budget too small for all (a step that also decodes): k = 3, T = 13 finishes 3; k = 4, T = 10 would process
  // one more token (Σ 40/13 > 3) but finish none; k = 2, T = 20 finishes 2. So the three oldest, whole.
  CHECK(prefill_plan(demands(std::vector<int64_t>(15, 13)), 40) == Counts{13, 13, 13, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0});
  // More sequences than budget tokens: T = 1 for the 16 oldest, which all finish.
  Counts ones(16, 1);
  ones.resize(20, 0);
  CHECK(prefill_plan(demands(std::vector<int64_t>(20, 1)), 16) == ones);
}

TEST_CASE("prefill_plan: a long prompt does not hold back the short ones behind it", "[serve][prefill_plan]") {
  // k = 4, T = 128: the three short ones finish (3 + 128/2000); k = 3, T = 170 finishes only two; k = 1 none.
  CHECK(prefill_plan(demands({2000, 20, 20, 20}), 512) == Counts{128, 20, 20, 20});
  // Two long, one short: k = 3, T = 170 finishes the short one; k = 1 or 2 finish nothing.
  CHECK(prefill_plan(demands({1000, 1000, 20}), 512) == Counts{170, 170, 20});
  // Nothing can finish (budget 16 < 20): k = 2, T = 8 makes 8/2000 + 8/20 = 0.404 of progress, k = 1 only 0.008:
  // the short one advances beside the long one instead of waiting 125 steps.
  CHECK(prefill_plan(demands({2000, 20}), 16) == Counts{8, 8});
  // Budget 40, a long prompt and shorts of 13: k = 3, T = 13 finishes two shorts (k = 2, T = 20: one; k = 4, T = 10:
  // none), and the long one, the oldest, still advances.
  CHECK(prefill_plan(demands({1000, 13, 13, 13, 13}), 40) == Counts{13, 13, 13, 0, 0});
}

TEST_CASE("prefill_plan: prompts of one length go oldest first, whole, rather than all in slices",
          "[serve][prefill_plan]") {
  // Nothing finishes; k = 1, 2 and 4 all make 0.512 of progress (k = 3: 3·170/1000 = 0.51): the fewest rows.
  CHECK(prefill_plan(demands({1000, 1000, 1000, 1000}), 512) == Counts{512, 0, 0, 0});
  // 500 and 500: k = 1 finishes the oldest (T = 512); k = 2 (T = 256) finishes none.
  CHECK(prefill_plan(demands({500, 500}), 512) == Counts{500, 0});
}

TEST_CASE("prefill_plan: no row is longer than its cache row's room", "[serve][prefill_plan]") {
  // The oldest has 30 tokens left and room for 31 (its row is near --ctx): the step's rows are at most 31 long, so
  // the long prompt beside it gets 31 this step.
  CHECK(prefill_plan({{30, 31}, {500, kRoom}}, 512) == Counts{30, 31});
  // The same row second in the order limits only the plans that include it: k = 1 (T = 512) finishes nothing;
  // k = 2 (T = 31, not 256) finishes the short one, and the long one gets 31.
  CHECK(prefill_plan({{1000, kRoom}, {30, 31}}, 512) == Counts{31, 30});
}

TEST_CASE("prefill_plan: bad arguments are errors", "[serve][prefill_plan]") {
  CHECK_THROWS_AS(prefill_plan(demands({10}), 0), Error);
  CHECK_THROWS_AS(prefill_plan(demands({0}), 16), Error);
  CHECK_THROWS_AS(prefill_plan({{10, 9}}, 16), Error);
}

TEST_CASE("prefill_plan: short prompts arriving every step neither wait behind a long one nor starve it",
          "[serve][prefill_plan]") {
  // Three 20-token prompts arrive before each step: k = 4, T = 128 finishes them, and the long one gets 128 a step,
  // so it finishes in step 24 (3000 = 23·128 + 56), the three of that step with it.
  int64_t long_left = 3000;
  int steps = 0;
  while (long_left > 0) {
    ++steps;
    REQUIRE(steps <= 24);
    const auto counts = prefill_plan({{long_left, kRoom}, {20, kRoom}, {20, kRoom}, {20, kRoom}}, 512);
    CHECK(counts == Counts{std::min<int64_t>(long_left, 128), 20, 20, 20});
    long_left -= counts[0];
  }
  CHECK(steps == 24);
}

TEST_CASE("prefill_plan: every plan keeps its contract", "[serve][prefill_plan]") {
  std::mt19937 rng(5);
  auto uniform = [&](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); };
  for (int trial = 0; trial < 100; ++trial) {
    const int64_t budget = uniform(1, 600);
    INFO("budget " << budget);
    // Up to 16 prompts, long and short, arriving one a step while the step's plan runs.
    std::vector<PrefillDemand> waiting;
    for (int step = 0; step < 200; ++step) {
      if (waiting.size() < 16) {
        const int64_t r = uniform(0, 3) == 0 ? uniform(200, 3000) : uniform(1, 40);
        waiting.push_back({r, r + uniform(1, 600)});
      }
      const auto counts = prefill_plan(waiting, budget);
      REQUIRE(counts.size() == waiting.size());
      REQUIRE(counts[0] >= 1);  // the oldest always advances
      int64_t k = 0, longest = 0, room = INT64_MAX;
      for (size_t i = 0; i < counts.size(); ++i) {
        if (counts[i] == 0) continue;
        REQUIRE(static_cast<int64_t>(i) == k);  // a leading run
        ++k;
        longest = std::max(longest, counts[i]);
        room = std::min(room, waiting[i].room);
        REQUIRE(counts[i] <= waiting[i].remaining);
      }
      REQUIRE(k * longest <= budget);
      REQUIRE(longest <= room);
      for (size_t i = counts.size(); i-- > 0;) {
        waiting[i].remaining -= counts[i];
        waiting[i].room -= counts[i];
        if (waiting[i].remaining == 0) waiting.erase(waiting.begin() + static_cast<std::ptrdiff_t>(i));
      }
    }
  }
}
