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

TEST_CASE("KvCache::row_slots and row_append move a row's leading slots into another row exactly",
          "[model][kv_cache]") {
  c10::InferenceMode guard;
  auto c = tiny();
  auto m = model::causal_lm_from_tensors(c, model::causal_lm_random_tensors(c, 4), {}, "t");
  std::vector<int64_t> prompt;
  for (int64_t i = 0; i < 12; ++i) prompt.push_back((i * 7 + 3) % c.vocab_size);
  auto full = m->cache_new(1, 16);
  auto logits_full = m->forward(torch::tensor(prompt).unsqueeze(0), torch::arange(12).unsqueeze(0), {}, &full);

  // slots [0, 8) of `full`, [L, 2, KV, 8, hd], appended to an empty row of another cache
  auto kv = full.row_slots(0, 0, 8);
  CHECK(kv.sizes() == torch::IntArrayRef({c.num_hidden_layers, 2, c.num_key_value_heads, 8, c.head_dim}));
  auto part = m->cache_new(2, 16);
  part.row_append(1, kv);
  CHECK(part.lengths() == std::vector<int64_t>{0, 8});
  CHECK(part.valid(16)[1].sum().item<int64_t>() == 8);
  CHECK(torch::equal(part.row_slots(1, 0, 8), kv));
  // the rest of the prompt prefilled after them: the logits of the prefill in one go
  std::vector<int64_t> rest(prompt.begin() + 8, prompt.end());
  auto tokens = torch::zeros({2, 4}, torch::kInt64);
  tokens[1] = torch::tensor(rest);
  auto positions = torch::arange(8, 12).unsqueeze(0).expand({2, 4}).contiguous();
  auto valid = torch::tensor({{false, false, false, false}, {true, true, true, true}});
  auto logits_part = m->forward(tokens, positions, valid, &part)[1];
  CHECK(torch::allclose(logits_part, logits_full[0].narrow(0, 8, 4), 1e-4, 1e-5));
  CHECK(part.lengths() == std::vector<int64_t>{0, 12});

  CHECK_THROWS_AS(full.row_slots(0, 8, 8), Error);  // past the row's 12 tokens
  auto small = m->cache_new(1, 4);
  CHECK_THROWS_AS(small.row_append(0, kv), ResourceError);      // 8 slots do not fit 4
  CHECK_THROWS_AS(small.row_append(0, kv.select(1, 0)), Error);  // not [L, 2, KV, n, hd]
}
