// The stories260K checkpoint against an independent float64 numpy forward (models/stories260K/expected.json):
// logits rows to 1e-4 absolute, prompt mean NLL to 1e-5, greedy ids from BOS exactly — with a full forward,
// with the KV cache, batch 1 and batched with padding.
#include <catch2/catch.hpp>

#include <torch/cuda.h>
#include <torch/types.h>

#include "infer/evaluate.h"
#include "infer/sampler.h"
#include "io/json_file.h"
#include "model/causal_lm.h"
#include "test_paths.h"

using namespace hearth;

namespace {

nlohmann::json expected() { return io::json_read(test::stories_dir() / "expected.json"); }

const model::CausalLM& stories() {
  static std::unique_ptr<model::CausalLM> m = model::causal_lm_load(test::stories_dir());
  return *m;
}

torch::Tensor ids_tensor(const std::vector<int64_t>& ids) { return torch::tensor(ids, torch::kInt64).unsqueeze(0); }

torch::Tensor positions(int64_t T) { return torch::arange(T, torch::kInt64).unsqueeze(0); }

double max_abs_diff(const torch::Tensor& a, const std::vector<float>& b) {
  return (a.to(torch::kFloat64) - torch::tensor(b, torch::kFloat64)).abs().max().item<double>();
}

// Greedy decoding of `n` tokens after `prompt` with the KV cache (batch of one).
std::vector<int64_t> greedy_cached(const model::CausalLM& m, std::vector<int64_t> ids, size_t n) {
  auto cache = m.cache_new(1, static_cast<int64_t>(ids.size() + n));
  auto logits = m.forward(ids_tensor(ids), positions(ids.size()), {}, &cache, true);
  while (ids.size() < n) {
    int64_t next = logits[0][-1].argmax().item<int64_t>();
    ids.push_back(next);
    auto pos = torch::full({1, 1}, static_cast<int64_t>(ids.size() - 1), torch::kInt64);
    logits = m.forward(torch::full({1, 1}, next, torch::kInt64), pos, {}, &cache);
  }
  return ids;
}

}  // namespace

TEST_CASE("stories260K logits match the float64 reference to 1e-4", "[model]") {
  c10::InferenceMode guard;
  auto e = expected();
  auto ids = e["prompt_ids_with_bos"].get<std::vector<int64_t>>();
  auto logits = stories().forward(ids_tensor(ids), positions(ids.size()), {}, nullptr)[0];  // [T, V]
  for (const auto& [row, values] : e["prompt_logits_rows"].items()) {
    INFO("position " << row);
    CHECK(max_abs_diff(logits[std::stoi(row)], values.get<std::vector<float>>()) < 1e-4);
  }
}

TEST_CASE("stories260K logits with the KV cache, one token at a time, match the full forward", "[model]") {
  c10::InferenceMode guard;
  auto e = expected();
  auto ids = e["prompt_ids_with_bos"].get<std::vector<int64_t>>();
  const auto& m = stories();
  auto full = m.forward(ids_tensor(ids), positions(ids.size()), {}, nullptr)[0];
  auto cache = m.cache_new(1, 64);
  // prefill the first 5 tokens, then one by one
  auto first = m.forward(ids_tensor({ids.begin(), ids.begin() + 5}), positions(5), {}, &cache)[0];
  CHECK(torch::allclose(first, full.narrow(0, 0, 5), 1e-5, 1e-5));
  for (size_t t = 5; t < ids.size(); ++t) {
    auto step = m.forward(torch::full({1, 1}, ids[t], torch::kInt64), torch::full({1, 1}, int64_t(t), torch::kInt64),
                          {}, &cache)[0][0];
    INFO("position " << t);
    CHECK((step - full[t]).abs().max().item<double>() < 1e-4);
  }
  for (const auto& [row, values] : e["prompt_logits_rows"].items())
    if (std::stoi(row) >= 5) CHECK(max_abs_diff(full[std::stoi(row)], values.get<std::vector<float>>()) < 1e-4);
}

TEST_CASE("stories260K prompt mean NLL matches the reference to 1e-5", "[model]") {
  auto e = expected();
  auto ids64 = e["prompt_ids_with_bos"].get<std::vector<int64_t>>();
  std::vector<int32_t> ids(ids64.begin(), ids64.end());
  auto r = infer::evaluate_nll(stories(), ids, 512, 512);
  CHECK(r.tokens_scored == static_cast<int64_t>(ids.size() - 1));
  CHECK(std::abs(r.mean_nll - e["prompt_mean_nll"].get<double>()) < 1e-5);
  CHECK(std::abs(r.perplexity - e["prompt_perplexity"].get<double>()) < 1e-5);
  // Strided windows score every token once; with enough context for these short windows the value moves
  // little but the token count must stay the same.
  auto strided = infer::evaluate_nll(stories(), ids, 8, 4);
  CHECK(strided.tokens_scored == static_cast<int64_t>(ids.size() - 1));
  CHECK(strided.windows == 3);  // 16 tokens, ctx 8, stride 4: windows start at 0, 4, 8
}

TEST_CASE("stories260K greedy decoding from BOS gives the 64 reference ids", "[model]") {
  c10::InferenceMode guard;
  auto want = expected()["greedy_from_bos_64_ids"].get<std::vector<int64_t>>();
  const auto& m = stories();
  SECTION("with the KV cache") { CHECK(greedy_cached(m, {1}, want.size()) == want); }
  SECTION("with a full forward each step") {
    std::vector<int64_t> ids = {1};
    while (ids.size() < want.size()) {
      auto logits = m.forward(ids_tensor(ids), positions(ids.size()), {}, nullptr);
      ids.push_back(logits[0][-1].argmax().item<int64_t>());
    }
    CHECK(ids == want);
  }
}

TEST_CASE("stories260K batched with padding equals each sequence alone", "[model]") {
  c10::InferenceMode guard;
  auto want = expected()["greedy_from_bos_64_ids"].get<std::vector<int64_t>>();
  const auto& m = stories();
  // Row 0 starts from BOS only, row 1 from the first 9 reference ids: right-padded prefill, then decode both
  // rows together. Both must continue exactly as the reference.
  std::vector<std::vector<int64_t>> rows = {{want[0]}, {want.begin(), want.begin() + 9}};
  auto tokens = torch::zeros({2, 9}, torch::kInt64);
  auto valid = torch::zeros({2, 9}, torch::kBool);
  for (int b = 0; b < 2; ++b)
    for (size_t t = 0; t < rows[b].size(); ++t) {
      tokens[b][t] = rows[b][t];
      valid[b][t] = true;
    }
  auto pos = torch::arange(9, torch::kInt64).unsqueeze(0).expand({2, 9}).contiguous();
  auto cache = m.cache_new(2, 80);
  auto logits = m.forward(tokens, pos, valid, &cache, /*last_only=*/true);  // [2, 1, V]
  // The padded batch's last-token logits equal each row's own forward.
  for (int b = 0; b < 2; ++b) {
    auto alone = m.forward(ids_tensor(rows[b]), positions(rows[b].size()), {}, nullptr)[0][-1];
    CHECK((logits[b][0] - alone).abs().max().item<double>() < 1e-4);
  }
  while (rows[0].size() < want.size()) {
    auto next = torch::zeros({2, 1}, torch::kInt64);
    auto next_pos = torch::zeros({2, 1}, torch::kInt64);
    auto next_valid = torch::zeros({2, 1}, torch::kBool);
    for (int b = 0; b < 2; ++b) {
      if (rows[b].size() >= want.size()) continue;
      rows[b].push_back(logits[b][0].argmax().item<int64_t>());
      next[b][0] = rows[b].back();
      next_pos[b][0] = static_cast<int64_t>(rows[b].size() - 1);
      next_valid[b][0] = rows[b].size() < want.size();
    }
    logits = m.forward(next, next_pos, next_valid, &cache);
  }
  CHECK(rows[0] == want);
  CHECK(rows[1] == want);
}

TEST_CASE("stories260K in bfloat16 stays close to float32", "[model]") {
  c10::InferenceMode guard;
  auto e = expected();
  auto ids = e["prompt_ids_with_bos"].get<std::vector<int64_t>>();
  auto bf16_owner = model::causal_lm_load(test::stories_dir(), {torch::kCPU, torch::kBFloat16});
  const model::CausalLM& bf16 = *bf16_owner;
  auto a = bf16.forward(ids_tensor(ids), positions(ids.size()), {}, nullptr)[0];
  auto b = stories().forward(ids_tensor(ids), positions(ids.size()), {}, nullptr)[0];
  // bfloat16 has 8 bits of mantissa; logits of magnitude ~10 move by a few tenths at most.
  CHECK((a - b).abs().max().item<double>() < 0.5);
  CHECK(a.argmax(-1).eq(b.argmax(-1)).to(torch::kFloat32).mean().item<double>() > 0.9);
}

TEST_CASE("stories260K on CUDA: float32 matches the reference, greedy ids exact, bfloat16 close", "[model][gpu]") {
  if (!torch::cuda::is_available()) {
    WARN("no CUDA device: skipped");
    return;
  }
  c10::InferenceMode guard;
  auto e = expected();
  auto ids = e["prompt_ids_with_bos"].get<std::vector<int64_t>>();
  const torch::Device cuda(torch::kCUDA, 0);
  auto f32 = model::causal_lm_load(test::stories_dir(), {cuda, torch::kFloat32});
  auto logits = f32->forward(ids_tensor(ids), positions(ids.size()), {}, nullptr)[0].cpu();
  for (const auto& [row, values] : e["prompt_logits_rows"].items()) {
    INFO("position " << row);
    CHECK(max_abs_diff(logits[std::stoi(row)], values.get<std::vector<float>>()) < 1e-4);
  }
  auto want = e["greedy_from_bos_64_ids"].get<std::vector<int64_t>>();
  CHECK(greedy_cached(*f32, {1}, want.size()) == want);
  auto bf16 = model::causal_lm_load(test::stories_dir(), {cuda, torch::kBFloat16});
  auto b = bf16->forward(ids_tensor(ids), positions(ids.size()), {}, nullptr)[0].cpu();
  CHECK((b - logits).abs().max().item<double>() < 0.5);  // as on the CPU: 8 bits of mantissa
  CHECK(b.argmax(-1).eq(logits.argmax(-1)).to(torch::kFloat32).mean().item<double>() > 0.9);
}
