// The CPU attention loops (model/attention.cpp: decode steps and prompts) against libtorch's matmul and softmax path;
// the training path against float64 autograd; the fused path (libtorch's scaled_dot_product_attention) against both.
#include <catch2/catch.hpp>

#include <array>
#include <cmath>
#include <limits>
#include <optional>

#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/torch.h>
#include <torch/version.h>

#include "model/attention.h"
#include "model/causal_lm.h"
#include "model/lora.h"

using namespace hearth;

namespace {

struct Case {
  int64_t B, H, KV, hd, S, capacity;
};

// Random q [B, H, T, hd] and k, v [B, KV, T, hd] that require grad.
std::array<torch::Tensor, 3> qkv_leaves(int64_t B, int64_t H, int64_t KV, int64_t T, int64_t hd, uint64_t seed) {
  torch::manual_seed(seed);
  auto q = torch::randn({B, H, T, hd}).requires_grad_(true);
  auto k = torch::randn({B, KV, T, hd}).requires_grad_(true);
  auto v = torch::randn({B, KV, T, hd}).requires_grad_(true);
  return {q, k, v};
}

}  // namespace

TEST_CASE("decode attention gives the batched path's numbers, and a row's alone as in a batch", "[model][attention]") {
  for (const Case c : {Case{3, 6, 2, 24, 13, 20}, Case{2, 4, 4, 100, 7, 7}, Case{1, 9, 3, 64, 1, 32}}) {
    INFO("B=" << c.B << " H=" << c.H << " KV=" << c.KV << " hd=" << c.hd << " S=" << c.S);
    torch::manual_seed(7);
    auto q = torch::randn({c.B, c.H, 1, c.hd});
    // Keys and values as a cache hands them out: the first S slots of a longer buffer.
    auto k = torch::randn({c.B, c.KV, c.capacity, c.hd}).narrow(2, 0, c.S);
    auto v = torch::randn({c.B, c.KV, c.capacity, c.hd}).narrow(2, 0, c.S);
    auto mask = torch::rand({c.B, 1, 1, c.S}) > 0.3;
    mask.select(-1, c.S - 1).fill_(true);               // every row sees its newest key
    const auto want = model::attention(q, k, v, mask);  // outside inference mode: libtorch's matmul and softmax
    c10::InferenceMode inference;
    REQUIRE(model::cpu_attention_applies(q, k, v, mask));
    REQUIRE(model::cpu_attention_applies(q, k, v, torch::Tensor()));
    const auto got = model::cpu_attention(q, k, v, mask);
    REQUIRE(got.sizes() == want.sizes());
    CHECK(torch::allclose(got, want, 1e-5, 1e-5));
    CHECK(torch::equal(model::attention(q, k, v, mask), got));  // attention() takes this path
    CHECK(torch::allclose(model::cpu_attention(q, k, v, torch::Tensor()),
                          model::attention(q.clone(), k.contiguous(), v.contiguous(), torch::ones_like(mask)), 1e-5,
                          1e-5));
    for (int64_t b = 0; b < c.B; ++b) {
      const auto one = model::cpu_attention(q.narrow(0, b, 1), k.narrow(0, b, 1), v.narrow(0, b, 1),
                                            mask.narrow(0, b, 1));
      CHECK(torch::equal(one, got.narrow(0, b, 1)));
    }
  }
}

TEST_CASE("decode attention: a row that may see no key is NaN, as softmax over nothing", "[model][attention]") {
  c10::InferenceMode inference;
  auto q = torch::randn({2, 2, 1, 8}), k = torch::randn({2, 1, 3, 8}), v = torch::randn({2, 1, 3, 8});
  auto mask = torch::ones({2, 1, 1, 3}, torch::kBool);
  mask[1].fill_(false);
  const auto out = model::cpu_attention(q, k, v, mask);
  CHECK(torch::isnan(out[1]).all().item<bool>());
  CHECK(torch::isfinite(out[0]).all().item<bool>());
}

TEST_CASE("CPU attention applies to float32 in inference mode only", "[model][attention]") {
  auto q = torch::randn({1, 2, 1, 8}), k = torch::randn({1, 1, 3, 8}), v = torch::randn({1, 1, 3, 8});
  CHECK_FALSE(model::cpu_attention_applies(q, k, v, torch::Tensor()));  // not in inference mode: autograd
  c10::InferenceMode inference;
  CHECK(model::cpu_attention_applies(q, k, v, torch::Tensor()));
  CHECK(model::cpu_attention_applies(torch::randn({1, 2, 2, 8}), k, v, torch::Tensor()));  // 2 queries: a prompt
  CHECK_FALSE(model::cpu_attention_applies(torch::randn({1, 2, 2, 8}), k, v, torch::ones({1, 1, 1, 3}, torch::kBool)));
  CHECK_FALSE(model::cpu_attention_applies(q.to(torch::kFloat64), k.to(torch::kFloat64), v.to(torch::kFloat64),
                                           torch::Tensor()));
  CHECK_FALSE(model::cpu_attention_applies(q, k.transpose(2, 3).contiguous().transpose(2, 3), v, torch::Tensor()));
}

TEST_CASE("prompt attention gives the batched path's numbers for causal, windowed and padded masks",
          "[model][attention]") {
  // T query positions per row over S keys, T not a multiple of the query block (16 / G positions), the keys'
  // first S - T slots an earlier chunk's (a prompt continued on a cache), padding keys in row 1.
  struct Prompt {
    int64_t B, H, KV, hd, T, S;
    std::optional<int64_t> window;
  };
  for (const Prompt c : {Prompt{2, 6, 2, 24, 13, 13, std::nullopt}, Prompt{2, 4, 4, 32, 37, 50, std::nullopt},
                         Prompt{1, 9, 3, 64, 70, 70, 16}, Prompt{3, 8, 1, 16, 5, 9, 3}}) {
    INFO("B=" << c.B << " H=" << c.H << " KV=" << c.KV << " T=" << c.T << " S=" << c.S);
    torch::manual_seed(11);
    auto q = torch::randn({c.B, c.H, c.T, c.hd});
    auto k = torch::randn({c.B, c.KV, c.S + 4, c.hd}).narrow(2, 0, c.S);
    auto v = torch::randn({c.B, c.KV, c.S + 4, c.hd}).narrow(2, 0, c.S);
    auto q_slot = (torch::arange(c.T, torch::kInt64) + (c.S - c.T)).unsqueeze(0).expand({c.B, c.T}).contiguous();
    auto valid = torch::ones({c.B, c.S}, torch::kBool);
    if (c.B > 1) valid[1].narrow(0, 0, std::min<int64_t>(3, c.S - c.T)).fill_(false);
    const auto mask = model::attention_mask(q_slot, valid, c.S, c.window);
    const auto want = model::attention(q, k, v, mask);  // outside inference mode: libtorch's matmul and softmax
    c10::InferenceMode inference;
    REQUIRE(model::cpu_attention_applies(q, k, v, mask));
    const auto got = model::attention(q, k, v, mask);
    REQUIRE(got.sizes() == want.sizes());
    CHECK(torch::allclose(got, want, 1e-5, 1e-5));
    for (int64_t b = 0; b < c.B; ++b) {  // a row alone, and one query position alone, as in the batch
      const auto one = model::cpu_attention(q.narrow(0, b, 1), k.narrow(0, b, 1), v.narrow(0, b, 1),
                                            mask.narrow(0, b, 1));
      CHECK(torch::equal(one, got.narrow(0, b, 1)));
      const int64_t t = c.T - 1;
      const auto last = model::cpu_attention(q.narrow(0, b, 1).narrow(2, t, 1), k.narrow(0, b, 1), v.narrow(0, b, 1),
                                             mask.narrow(0, b, 1).narrow(2, t, 1));
      CHECK(torch::allclose(last, got.narrow(0, b, 1).narrow(1, t, 1), 1e-6, 1e-6));
    }
  }
}

TEST_CASE("prompt attention: a query that may see no key is NaN, its neighbours are not", "[model][attention]") {
  c10::InferenceMode inference;
  auto q = torch::randn({1, 2, 3, 8}), k = torch::randn({1, 1, 3, 8}), v = torch::randn({1, 1, 3, 8});
  auto mask = torch::ones({1, 1, 3, 3}, torch::kBool);
  mask[0][0][1].fill_(false);
  const auto out = model::cpu_attention(q, k, v, mask);  // [1, 3, 16]
  CHECK(torch::isnan(out[0][1]).all().item<bool>());
  CHECK(torch::isfinite(out[0][0]).all().item<bool>());
  CHECK(torch::isfinite(out[0][2]).all().item<bool>());
}

TEST_CASE(
    "attention under autograd (probabilities recomputed in backward) gives the values and gradients of "
    "softmax(q·kᵀ/√hd)·v computed in float64",
    "[model][attention]") {
  // 6 rows of 8 query heads over 2 key/value heads and 600 keys: two chunks of the batch (5 rows, then 1).
  const int64_t B = 6, H = 8, KV = 2, T = 600, hd = 8;
  auto [q, k, v] = qkv_leaves(B, H, KV, T, hd, 31);
  auto slots = torch::arange(T).unsqueeze(0).expand({B, T});
  auto valid = torch::ones({B, T}, torch::kBool);
  valid[1].narrow(0, 400, 200).fill_(false);                // a padded row
  auto mask = model::attention_mask(slots, valid, T, 256);  // causal, a sliding window of 256
  auto probe = torch::randn({B, T, H * hd});
  auto got = model::attention(q, k, v, mask);
  (got * probe).sum().backward();
  auto gq = q.grad().clone(), gk = k.grad().clone(), gv = v.grad().clone();
  // The reference: key/value heads repeated for their query heads, every tensor float64, libtorch's autograd.
  auto qd = q.detach().to(torch::kFloat64).requires_grad_(true);
  auto kd = k.detach().to(torch::kFloat64).requires_grad_(true);
  auto vd = v.detach().to(torch::kFloat64).requires_grad_(true);
  auto scores = torch::matmul(qd, kd.repeat_interleave(H / KV, 1).transpose(-2, -1)) / std::sqrt(double(hd));
  scores = scores.masked_fill(mask.logical_not(), -std::numeric_limits<double>::infinity());
  auto want = torch::matmul(scores.softmax(-1), vd.repeat_interleave(H / KV, 1)).transpose(1, 2).reshape({B, T, -1});
  (want * probe.to(torch::kFloat64)).sum().backward();
  CHECK(torch::allclose(got.detach().to(torch::kFloat64), want.detach(), 1e-5, 1e-5));
  CHECK(torch::allclose(gq.to(torch::kFloat64), qd.grad(), 1e-4, 1e-5));
  CHECK(torch::allclose(gk.to(torch::kFloat64), kd.grad(), 1e-4, 1e-5));
  CHECK(torch::allclose(gv.to(torch::kFloat64), vd.grad(), 1e-4, 1e-5));
  // Without autograd: the same values by the other path.
  torch::NoGradGuard no_grad;
  CHECK(torch::allclose(model::attention(q, k, v, mask), got, 1e-6, 1e-6));
}

namespace {

// libtorch's scaled_dot_product_attention under the name this version registers: 2.x's public operator, or 1.13's
// "_scaled_dot_product_attention" (the same named arguments, plus need_attn_weights), as fused_attention calls it.
const char* sdpa_op_name() {
  return c10::Dispatcher::singleton().findSchema({"aten::scaled_dot_product_attention", ""})
             ? "aten::scaled_dot_product_attention"
             : "aten::_scaled_dot_product_attention";
}

}  // namespace

TEST_CASE("fused attention through libtorch's registered operator gives attention()'s values and gradients",
          "[model][attention]") {
  // 3 rows of 4 query heads over 2 key/value heads, row 1 padded after its 7th token, row 2 after its 1st.
  const int64_t B = 3, H = 4, KV = 2, T = 11, hd = 8;
  const auto leaves = qkv_leaves(B, H, KV, T, hd, 5);
  const auto &q = leaves[0], &k = leaves[1], &v = leaves[2];
  auto valid = torch::ones({B, T}, torch::kBool);
  valid[1].narrow(0, 7, T - 7).fill_(false);
  valid[2].narrow(0, 1, T - 1).fill_(false);
  auto mask = model::attention_mask(torch::arange(T).unsqueeze(0).expand({B, T}), valid, T, std::nullopt);
  // The outputs at real tokens count; padding's are zero-weighted, as the loss ignores them.
  auto probe = torch::randn({B, T, H * hd}) * valid.unsqueeze(-1);
  auto grads = [&](const torch::Tensor& out) {
    for (auto* t : {&q, &k, &v})
      if (t->grad().defined()) t->mutable_grad() = torch::Tensor();
    (out * probe).sum().backward();
    return std::vector<torch::Tensor>{q.grad().clone(), k.grad().clone(), v.grad().clone()};
  };
  const auto want = model::attention(q, k, v, mask);  // libtorch's ops on the CPU under autograd
  const auto want_grads = grads(want);
  SECTION("with the mask: every row") {
    const auto got = model::fused_attention(sdpa_op_name(), q, k, v, mask, false);
    CHECK(torch::allclose(got, want, 1e-5, 1e-6));
    const auto got_grads = grads(got);
    for (size_t i = 0; i < 3; ++i) CHECK(torch::allclose(got_grads[i], want_grads[i], 1e-4, 1e-6));
  }
  SECTION("causal, no mask: the real tokens' rows, and the same gradients") {
    const auto got = model::fused_attention(sdpa_op_name(), q, k, v, mask, true);
    const auto real = valid.unsqueeze(-1).expand({B, T, H * hd});
    CHECK(torch::allclose(got.masked_select(real), want.masked_select(real), 1e-5, 1e-6));
    CHECK_FALSE(torch::allclose(got, want, 1e-3, 1e-3));  // padding's rows do differ: the mask was not used
    const auto got_grads = grads(got);
    for (size_t i = 0; i < 3; ++i) CHECK(torch::allclose(got_grads[i], want_grads[i], 1e-4, 1e-6));
  }
  SECTION("an operator libtorch lacks is an error") {
    CHECK_THROWS_WITH(model::fused_attention("aten::no_such_attention", q, k, v, mask, false),
                      Catch::Contains("no operator aten::no_such_attention"));
  }
}

namespace {

// Loss and LoRA gradients of one training step on CUDA (2 rows, the second padded after 8 tokens), with the fused
// kernels or attention's own ops.
std::vector<torch::Tensor> cuda_step(torch::Dtype dtype, bool fused) {
  auto c = model::config_parse({{"model_type", "llama"},
                                {"vocab_size", 50},
                                {"hidden_size", 64},
                                {"intermediate_size", 96},
                                {"num_hidden_layers", 2},
                                {"num_attention_heads", 4},
                                {"num_key_value_heads", 2},
                                {"max_position_embeddings", 64}},
                               "gpu");  // head dim 16: flash attention's shapes
  auto m = model::causal_lm_from_tensors(c, model::causal_lm_random_tensors(c, 3), {torch::kCUDA, dtype}, "t");
  model::LoraConfig lc;
  lc.r = 4;
  lc.targets = {model::LoraTarget::kQ, model::LoraTarget::kK, model::LoraTarget::kV, model::LoraTarget::kO};
  auto adapter = model::LoraAdapter::create(c, lc, 7, torch::kCUDA);
  for (auto& p : adapter.parameters()) {
    torch::NoGradGuard g;
    p.add_(torch::ones_like(p) * 0.05);  // B != 0: every LoRA weight gets a gradient
    p.set_requires_grad(true);
  }
  model::ForwardOptions o;
  o.adapters = {&adapter};
  o.training = true;
  const int64_t T = 12;
  auto tokens = torch::randint(3, 50, {2, T}, torch::kInt64);
  auto valid = torch::ones({2, T}, torch::kBool);
  valid[1].narrow(0, 8, T - 8).fill_(false);
  o.targets = torch::cat({tokens.narrow(1, 1, T - 1), torch::full({2, 1}, -100, tokens.options())}, 1)
                  .masked_fill(valid.logical_not(), -100);
  struct FusedSwitch {  // back on however this ends
    explicit FusedSwitch(bool on) { model::fused_attention_enable(on); }
    ~FusedSwitch() { model::fused_attention_enable(true); }
  } fused_switch(fused);
  auto loss = m->forward(tokens, torch::arange(T).unsqueeze(0).expand({2, T}), valid, nullptr, o);
  loss.backward();
  std::vector<torch::Tensor> out{loss.detach().to(torch::kCPU).view({1})};
  for (const auto& p : adapter.parameters()) out.push_back(p.grad().to(torch::kCPU));
  return out;
}

}  // namespace

TEST_CASE("on CUDA the fused kernels give attention's own loss and LoRA gradients", "[model][attention][gpu]") {
  if (!torch::cuda::is_available()) {
    WARN("no CUDA device: skipped");
    return;
  }
#if TORCH_VERSION_MAJOR >= 2
  CHECK(model::fused_attention_available());  // the operator's name as libtorch 2 registers it
#endif
  for (auto dtype : {torch::kFloat32, torch::kBFloat16}) {
    INFO("dtype " << dtype);
    torch::manual_seed(3);
    const auto fused = cuda_step(dtype, true);
    torch::manual_seed(3);
    const auto own = cuda_step(dtype, false);
    const double tol = dtype == torch::kFloat32 ? 1e-4 : 3e-2;  // relative, over each whole tensor
    for (size_t i = 0; i < fused.size(); ++i) {
      INFO("tensor " << i << " (0: the loss, then the LoRA weights' gradients)");
      CHECK(own[i].abs().sum().item<double>() > 0);
      CHECK((fused[i] - own[i]).norm().item<double>() <= tol * own[i].norm().item<double>());
    }
  }
}
