// PrefixCache (serve's reuse of prompt blocks): what it restores is exactly what a prefill computes, whole blocks
// of the very same leading tokens and adapter and then the agreeing positions of one more block, never a prompt's
// last token, evicting least recently used leaves first; a tiny random model, so every number is checked against a full
// prefill.
#include <catch2/catch.hpp>

#include <torch/torch.h>

#include "core/error.h"
#include "model/causal_lm.h"
#include "serve/prefix_cache.h"
#include "tiny_config.h"

using namespace hearth;
using serve::PrefixCache;

namespace {

constexpr int64_t kBlock = 4;

struct Fixture {
  model::ModelConfig config = test::tiny_config(2, 64);
  std::unique_ptr<model::CausalLM> m = model::causal_lm_from_tensors(config, model::causal_lm_random_tensors(config, 7),
                                                                     {}, "t");

  // A one-row cache holding `tokens` prefilled at once, and the logits of its last token [V].
  std::pair<model::KvCache, torch::Tensor> prefill(const std::vector<infer::TokenId>& tokens) const {
    auto cache = m->cache_new(1, 64);
    auto logits = forward_from(cache, tokens, 0);
    return {std::move(cache), logits};
  }
  // Prefills tokens[from..] after the `from` slots the row already holds; the last token's logits [V].
  torch::Tensor forward_from(model::KvCache& cache, const std::vector<infer::TokenId>& tokens, int64_t from) const {
    std::vector<int64_t> rest(tokens.begin() + from, tokens.end());
    const auto n = static_cast<int64_t>(rest.size());
    model::ForwardOptions o;
    o.last_only = true;
    return m->forward(torch::tensor(rest).unsqueeze(0), torch::arange(from, from + n).unsqueeze(0), {}, &cache,
                      o)[0][0];
  }
};

std::vector<infer::TokenId> ids(int n, int salt = 0) {
  std::vector<infer::TokenId> out;
  for (int i = 0; i < n; ++i) out.push_back((i * 7 + 3 + salt) % 50);
  return out;
}

}  // namespace

TEST_CASE("PrefixCache restores whole blocks that equal a prefill, never the last token", "[serve][prefix_cache]") {
  c10::InferenceMode guard;
  Fixture f;
  PrefixCache pc(kBlock, 100);
  const auto prompt = ids(11);
  auto [full, logits_full] = f.prefill(prompt);
  pc.store(prompt, 11, nullptr, full, 0);
  CHECK(pc.stats().blocks == 2);  // [0, 4), [4, 8); 3 tokens left over
  CHECK(pc.stats().bytes == 2 * full.row_slots(0, 0, kBlock).nbytes());

  auto row = f.m->cache_new(2, 64);
  CHECK(pc.restore(prompt, nullptr, row, 1) == 8);
  CHECK(row.lengths() == std::vector<int64_t>{0, 8});
  CHECK(torch::equal(row.row_slots(1, 0, 8), full.row_slots(0, 0, 8)));
  auto one = f.m->cache_new(1, 64);
  one.row_append(0, row.row_slots(1, 0, 8));
  CHECK(torch::allclose(f.forward_from(one, prompt, 8), logits_full, 1e-5, 1e-5));
  CHECK(pc.stats().hit_tokens == 8);
  CHECK(pc.stats().miss_tokens == 3);
  CHECK_THROWS_AS(pc.restore(prompt, nullptr, row, 1), Error);  // the row is not empty

  // A prompt of exactly two blocks reuses the first and 3 positions of the second: its last token is always
  // prefilled.
  const std::vector<infer::TokenId> two(prompt.begin(), prompt.begin() + 8);
  auto r2 = f.m->cache_new(1, 64);
  CHECK(pc.restore(two, nullptr, r2, 0) == 7);
  // A one-token prompt: nothing. A prompt whose first block differs from its second token on: that token's position.
  auto r3 = f.m->cache_new(1, 64);
  CHECK(pc.restore({prompt[0]}, nullptr, r3, 0) == 0);
  auto other = prompt;
  other[0] = (other[0] + 1) % 50;
  CHECK(pc.restore(other, nullptr, r3, 0) == 0);
  other = prompt;
  other[1] = (other[1] + 1) % 50;
  CHECK(pc.restore(other, nullptr, r3, 0) == 1);
  // The second block differs from position 6: the first block and 2 positions of the second.
  other = prompt;
  other[6] = (other[6] + 1) % 50;
  r3.reset_row(0);
  CHECK(pc.restore(other, nullptr, r3, 0) == 6);
  CHECK(r3.lengths()[0] == 6);
}

TEST_CASE("PrefixCache restores the agreeing leading positions of one more block, as a prefill computes them",
          "[serve][prefix_cache]") {
  c10::InferenceMode guard;
  Fixture f;
  PrefixCache pc(kBlock, 100);
  // Two sequences that share their first block and part of the second, stored whole: [0, 4) once, then two
  // siblings after it, one agreeing with `query` on 1 position and one on 3.
  auto near = ids(12), far = ids(12);
  far[5] = (far[5] + 1) % 50;  // agrees with near on positions 4
  for (const auto& t : {far, near}) {
    auto [c, l] = f.prefill(t);
    pc.store(t, 12, nullptr, c, 0);
  }
  CHECK(pc.stats().blocks == 5);  // the first block once, then 2 + 2
  auto query = ids(12);
  query[7] = (query[7] + 1) % 50;  // agrees with near on positions 4..6 and with far on 4 only
  query.resize(10);
  auto [full, logits_full] = f.prefill(query);
  auto row = f.m->cache_new(1, 64);
  CHECK(pc.restore(query, nullptr, row, 0) == 7);
  CHECK(torch::allclose(row.row_slots(0, 0, 7), full.row_slots(0, 0, 7), 1e-5, 1e-6));  // other prompt lengths
  CHECK(torch::allclose(f.forward_from(row, query, 7), logits_full, 1e-5, 1e-5));
  CHECK(pc.stats().hit_tokens == 7);
  CHECK(pc.stats().miss_tokens == 3);
  // A prompt shorter than a block takes the agreeing positions of a first block: all but its last token.
  const std::vector<infer::TokenId> shortp(query.begin(), query.begin() + 3);
  row.reset_row(0);
  CHECK(pc.restore(shortp, nullptr, row, 0) == 2);
  auto [short_full, short_logits] = f.prefill(shortp);
  CHECK(torch::allclose(f.forward_from(row, shortp, 2), short_logits, 1e-5, 1e-5));
  // Only a block after the same chain: a prompt that differs at position 0 restores nothing.
  auto shifted = query;
  shifted[0] = (shifted[0] + 1) % 50;
  row.reset_row(0);
  CHECK(pc.restore(shifted, nullptr, row, 0) == 0);
  // Evicting a partial match's block leaves its siblings and their order intact.
  PrefixCache one(kBlock, 2);
  {
    auto [c, l] = f.prefill(near);
    one.store(near, 12, nullptr, c, 0);  // blocks 0, 1 (capacity 2): block 2 is not kept
  }
  row.reset_row(0);
  CHECK(one.restore(query, nullptr, row, 0) == 7);
  auto [cf, lf] = f.prefill(far);
  one.store(far, 12, nullptr, cf, 0);  // far's block 1 evicts near's (the least recently used leaf)
  row.reset_row(0);
  CHECK(one.restore(query, nullptr, row, 0) == 5);
  CHECK(torch::allclose(f.forward_from(row, query, 5), logits_full, 1e-5, 1e-5));
}

TEST_CASE("PrefixCache keeps each adapter's blocks apart and drops those of adapters released",
          "[serve][prefix_cache]") {
  c10::InferenceMode guard;
  Fixture f;
  PrefixCache pc(kBlock, 100);
  model::LoraConfig lc;
  lc.r = 2;
  auto kids = std::make_shared<const model::LoraAdapter>(model::LoraAdapter::create(f.config, lc, 1));
  const auto prompt = ids(9);
  auto [base_cache, base_logits] = f.prefill(prompt);
  pc.store(prompt, 9, nullptr, base_cache, 0);
  auto row = f.m->cache_new(1, 64);
  CHECK(pc.restore(prompt, kids, row, 0) == 0);  // the base model's blocks never serve an adapter
  pc.store(prompt, 9, kids, base_cache, 0);      // (the values do not matter here)
  CHECK(pc.stats().blocks == 4);
  CHECK(pc.restore(prompt, kids, row, 0) == 8);
  // The same adapter loaded again (a reload) is a new adapter: no reuse.
  auto again = std::make_shared<const model::LoraAdapter>(model::LoraAdapter::create(f.config, lc, 1));
  row.reset_row(0);
  CHECK(pc.restore(prompt, again, row, 0) == 0);
  // Once nothing holds the old one, its blocks go.
  kids.reset();
  row.reset_row(0);
  CHECK(pc.restore(prompt, nullptr, row, 0) == 8);
  CHECK(pc.stats().blocks == 2);
  CHECK(pc.stats().evictions == 0);
}

TEST_CASE("PrefixCache evicts the least recently used leaf blocks first, within its capacity",
          "[serve][prefix_cache]") {
  c10::InferenceMode guard;
  Fixture f;
  PrefixCache pc(kBlock, 3);
  const auto a = ids(9, 0), b = ids(9, 1);
  auto [ca, la] = f.prefill(a);
  auto [cb, lb] = f.prefill(b);
  pc.store(a, 9, nullptr, ca, 0);  // a0 a1
  pc.store(b, 9, nullptr, cb, 0);  // b0, then b1 evicts a1 (a's leaf, not its root a0)
  CHECK(pc.stats().blocks == 3);
  CHECK(pc.stats().evictions == 1);
  auto row = f.m->cache_new(1, 64);
  CHECK(pc.restore(a, nullptr, row, 0) == 4);
  row.reset_row(0);
  CHECK(pc.restore(b, nullptr, row, 0) == 8);
  // Storing a again refreshes a0 first, so the least recently used block is b's leaf b1: a1 takes its place.
  pc.store(a, 9, nullptr, ca, 0);
  CHECK(pc.stats().evictions == 2);
  row.reset_row(0);
  CHECK(pc.restore(a, nullptr, row, 0) == 8);
  CHECK(torch::allclose(f.forward_from(row, a, 8), la, 1e-5, 1e-5));
  row.reset_row(0);
  CHECK(pc.restore(b, nullptr, row, 0) == 4);
  // A chain longer than the whole cache keeps its first blocks and never evicts its own.
  PrefixCache small(kBlock, 2);
  small.store(a, 9, nullptr, ca, 0);
  const auto c = ids(17, 2);
  auto [cc, lc] = f.prefill(c);
  small.store(c, 17, nullptr, cc, 0);
  CHECK(small.stats().blocks == 2);
  row.reset_row(0);
  CHECK(small.restore(c, nullptr, row, 0) == 8);
  // Capacity 0 keeps nothing.
  PrefixCache none(kBlock, 0);
  none.store(a, 9, nullptr, ca, 0);
  CHECK(none.stats().blocks == 0);
  row.reset_row(0);
  CHECK(none.restore(a, nullptr, row, 0) == 0);
  CHECK(none.stats().miss_tokens == 9);
}
