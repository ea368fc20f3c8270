// KvCache: rows are independent; copy_row moves a prefilled row into another cache (the serve scheduler's
// side cache → pool hand-over) so that decoding from the copy gives the same logits as from the original.
#include <catch2/catch.hpp>

#include <torch/torch.h>

#include "core/error.h"
#include "model/causal_lm.h"
#include "tiny_config.h"

using namespace hearth;

namespace {

model::ModelConfig tiny() { return test::tiny_config(2, 64); }

}  // namespace

TEST_CASE("KvCache::copy_row hands a prefilled row over exactly", "[model][kv_cache]") {
  c10::InferenceMode guard;
  auto c = tiny();
  auto m = model::causal_lm_from_tensors(c, model::causal_lm_random_tensors(c, 4), {}, "t");
  const std::vector<int64_t> prompt = {1, 9, 4, 33, 7};
  auto tokens = torch::tensor(prompt).unsqueeze(0);
  auto positions = torch::arange(5).unsqueeze(0);
  auto side = m->cache_new(1, 16);
  m->forward(tokens, positions, {}, &side, true);
  auto pool = m->cache_new(3, 16);
  // Row 0 of the pool holds another sequence; row 2 receives the copy.
  auto other = m->cache_new(1, 16);
  m->forward(torch::tensor({{3, 3, 3}}), torch::arange(3).unsqueeze(0), {}, &other, true);
  pool.copy_row(0, other, 0);
  pool.copy_row(2, side, 0);
  CHECK(pool.lengths() == std::vector<int64_t>{3, 0, 5});
  CHECK(pool.valid(16).sum().item<int64_t>() == 8);

  // Decode one token from the original and from the copy: the same logits.
  auto next = torch::full({1, 1}, int64_t(12));
  auto pos = torch::full({1, 1}, int64_t(5));
  auto from_side = m->forward(next, pos, {}, &side)[0][0];
  auto rows_next = torch::tensor({{0}, {0}, {12}});
  auto rows_pos = torch::tensor({{0}, {0}, {5}});
  auto rows_valid = torch::tensor({{false}, {false}, {true}});
  auto from_pool = m->forward(rows_next, rows_pos, rows_valid, &pool)[2][0];
  CHECK(torch::allclose(from_side, from_pool, 1e-4, 1e-5));  // gemv (1 row) vs gemm (3 rows)
  CHECK(pool.lengths() == std::vector<int64_t>{3, 0, 6});

  auto small = m->cache_new(1, 4);
  CHECK_THROWS_AS(small.copy_row(0, side, 0), Error);  // 6 slots do not fit 4
}
