// KvCache: rows are independent; copy_row moves a prefilled row into another cache so that decoding from the copy
// gives the same logits as from the original; a forward over chosen rows of a pool (ForwardOptions::cache_rows, the
// serve scheduler's batched prefill) computes each row as alone and leaves the other rows as they were.
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

TEST_CASE("forward with cache_rows prefills chosen rows of a pool as each alone, leaving the others untouched",
          "[model][kv_cache]") {
  c10::InferenceMode guard;
  auto c = tiny();
  auto m = model::causal_lm_from_tensors(c, model::causal_lm_random_tensors(c, 4), {}, "t");
  auto prompt = [&](int64_t n, int64_t seed) {
    std::vector<int64_t> p;
    for (int64_t i = 0; i < n; ++i) p.push_back((i * 11 + seed * 5 + 1) % c.vocab_size);
    return p;
  };
  // Each prompt alone in a one-row cache: the reference logits of every position.
  auto alone = [&](const std::vector<int64_t>& p) {
    auto cache = m->cache_new(1, 32);
    const auto n = static_cast<int64_t>(p.size());
    return m->forward(torch::tensor(p).unsqueeze(0), torch::arange(n).unsqueeze(0), {}, &cache)[0];  // [n, V]
  };
  const auto a = prompt(7, 1), b = prompt(3, 2), held = prompt(5, 3);
  // A pool of 4 rows; row 0 holds another sequence, which must not move.
  auto pool = m->cache_new(4, 32);
  m->forward(torch::tensor(held).unsqueeze(0), torch::arange(5).unsqueeze(0), {}, &pool);
  const auto held_kv = pool.row_slots(0, 0, 5);

  // `a` into row 3 and `b` into row 1 (not consecutive, not in order), b right-padded to a's 7 tokens.
  auto tokens = torch::zeros({2, 7}, torch::kInt64);
  tokens[0] = torch::tensor(a);
  tokens[1].narrow(0, 0, 3).copy_(torch::tensor(b));
  auto positions = torch::arange(7).unsqueeze(0).expand({2, 7}).contiguous();
  auto valid = torch::arange(7).unsqueeze(0).lt(torch::tensor({7, 3}).unsqueeze(1));  // [2, 7]
  model::ForwardOptions o;
  o.cache_rows = {3, 1};
  auto logits = m->forward(tokens, positions, valid, &pool, o);  // [2, 7, V]
  CHECK(torch::allclose(logits[0], alone(a), 1e-4, 1e-5));
  CHECK(torch::allclose(logits[1].narrow(0, 0, 3), alone(b), 1e-4, 1e-5));
  CHECK(pool.lengths() == std::vector<int64_t>{5, 3, 0, 7});
  CHECK(torch::equal(pool.row_slots(0, 0, 5), held_kv));
  CHECK(torch::equal(pool.valid(32).sum(1), torch::tensor(std::vector<int64_t>{5, 3, 0, 7})));  // padding is invalid

  // The next chunk of b, alone, in consecutive rows [1, 2) (the view path), then one decode step over the whole pool:
  // each row's logits are those of its sequence alone.
  const auto b_more = prompt(6, 2);  // b and three more tokens (same formula)
  o.cache_rows = {1};
  o.last_only = true;
  auto more = m->forward(torch::tensor(std::vector<int64_t>(b_more.begin() + 3, b_more.end())).unsqueeze(0),
                         torch::arange(3, 6).unsqueeze(0), {}, &pool, o);
  CHECK(torch::allclose(more[0][0], alone(b_more)[5], 1e-4, 1e-5));
  CHECK(pool.lengths() == std::vector<int64_t>{5, 6, 0, 7});

  auto a_next = a, b_next = b_more, held_next = held;
  a_next.push_back(9), b_next.push_back(8), held_next.push_back(7);
  auto step = m->forward(torch::tensor({{7}, {8}, {0}, {9}}), torch::tensor({{5}, {6}, {0}, {7}}),
                         torch::tensor({{true}, {true}, {false}, {true}}), &pool);  // [4, 1, V]
  CHECK(torch::allclose(step[0][0], alone(held_next)[5], 1e-4, 1e-5));
  CHECK(torch::allclose(step[1][0], alone(b_next)[6], 1e-4, 1e-5));
  CHECK(torch::allclose(step[3][0], alone(a_next)[7], 1e-4, 1e-5));

  // A row named twice, or outside the pool, is an error that moves no row.
  o.cache_rows = {2, 2};
  CHECK_THROWS_AS(m->forward(torch::zeros({2, 1}, torch::kInt64), torch::zeros({2, 1}, torch::kInt64), {}, &pool, o),
                  Error);
  o.cache_rows = {4};
  CHECK_THROWS_AS(m->forward(torch::zeros({1, 1}, torch::kInt64), torch::zeros({1, 1}, torch::kInt64), {}, &pool, o),
                  Error);
  CHECK(pool.lengths() == std::vector<int64_t>{6, 7, 0, 8});
}
