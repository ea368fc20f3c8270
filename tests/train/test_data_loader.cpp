// Batches and the data order: target tokens exactly where the mask says, padding never counted, and an
// order that depends only on (seed, position).
#include <catch2/catch.hpp>

#include <numeric>

#include "train/data_loader.h"

using namespace hearth;

TEST_CASE("batch_make: position t targets token t+1 only where its mask bit is set", "[train]") {
  data::Sequence a{{1, 10, 11, 12, 13}, {0, 0, 1, 1, 0}, {0}};
  data::Sequence b{{1, 20, 21}, {0, 1, 1}, {0}};
  auto batch = train::batch_make({a, b}, 0);
  REQUIRE(batch.tokens.sizes() == torch::IntArrayRef({2, 5}));
  // row 0: targets at t=1 (token 11) and t=2 (token 12); row 1: t=0 (20), t=1 (21); the rest -100
  std::vector<int64_t> want = {-100, 11, 12, -100, -100, 20, 21, -100, -100, -100};
  auto got = batch.targets.flatten();
  CHECK(std::vector<int64_t>(got.data_ptr<int64_t>(), got.data_ptr<int64_t>() + 10) == want);
  CHECK(batch.n_targets == 4);
  CHECK(batch.n_tokens == 8);
  CHECK(batch.valid[1][2].item<bool>());
  CHECK_FALSE(batch.valid[1][3].item<bool>());
  // seq_len cuts: the target after the cut is dropped
  auto cut = train::batch_make({a}, 3);
  CHECK(cut.tokens.size(1) == 3);
  CHECK(cut.n_targets == 1);  // t=1 -> 11 stays; t=2 -> 12 is past the cut
}

TEST_CASE("shuffle_deterministic is a seeded permutation", "[train]") {
  std::vector<int64_t> v(100), w(100);
  std::iota(v.begin(), v.end(), 0);
  w = v;
  train::shuffle_deterministic(v, 1);
  train::shuffle_deterministic(w, 1);
  CHECK(v == w);
  auto sorted = v;
  std::sort(sorted.begin(), sorted.end());
  CHECK(sorted[0] == 0);
  CHECK(sorted[99] == 99);
  std::vector<int64_t> x(100);
  std::iota(x.begin(), x.end(), 0);
  train::shuffle_deterministic(x, 2);
  CHECK(x != v);
}
