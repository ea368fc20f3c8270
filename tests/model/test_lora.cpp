// LoRA adapters: identities that must hold exactly (B = 0 is the base model; merged weights W + s·B·A give
// the adapter's logits), per-row batching, the PEFT file format, and gradients against finite differences.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>

#include <torch/torch.h>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/json_file.h"
#include "io/safetensors.h"
#include "model/causal_lm.h"
#include "model/lora.h"
#include "test_paths.h"
#include "tiny_config.h"

using namespace hearth;
using TensorMap = std::map<std::string, torch::Tensor>;
namespace fs = std::filesystem;

namespace {

model::ModelConfig tiny() { return test::tiny_config(); }

model::LoraConfig all_targets(int64_t r = 4) {
  model::LoraConfig c;
  c.r = r;
  c.alpha = 8;
  c.targets = {model::LoraTarget::kQ,    model::LoraTarget::kK,  model::LoraTarget::kV,   model::LoraTarget::kO,
               model::LoraTarget::kGate, model::LoraTarget::kUp, model::LoraTarget::kDown};
  return c;
}

// An adapter with non-zero B (as after training).
model::LoraAdapter trained(const model::ModelConfig& c, uint64_t seed) {
  auto a = model::LoraAdapter::create(c, all_targets(), seed);
  torch::manual_seed(seed);
  for (auto& p : a.parameters()) p.copy_(torch::randn(p.sizes()) * 0.2);
  return a;
}

torch::Tensor run(const model::CausalLM& m, const std::vector<int64_t>& ids,
                  std::vector<const model::LoraAdapter*> ad) {
  model::ForwardOptions o;
  o.adapters = std::move(ad);
  auto T = static_cast<int64_t>(ids.size());
  return m.forward(torch::tensor(ids).unsqueeze(0), torch::arange(T).unsqueeze(0), {}, nullptr, o);
}

const std::vector<int64_t> kIds = {1, 7, 22, 3, 49, 10, 10, 5};

}  // namespace

TEST_CASE("a fresh adapter (B = 0) leaves the model unchanged", "[model][lora]") {
  torch::NoGradGuard g;
  auto c = tiny();
  auto m_owner = model::causal_lm_from_tensors(c, model::causal_lm_random_tensors(c, 3), {}, "t");
  const model::CausalLM& m = *m_owner;
  auto a = model::LoraAdapter::create(c, all_targets(), 1);
  CHECK(torch::equal(run(m, kIds, {&a}), run(m, kIds, {})));
  // A is initialised as PEFT does: U(-1/sqrt(in), 1/sqrt(in))
  auto A = a.find(0, model::LoraTarget::kQ)->A;
  CHECK(A.abs().max().item<double>() <= 1.0 / std::sqrt(24.0));
  CHECK(A.abs().max().item<double>() > 0.5 / std::sqrt(24.0));
}

TEST_CASE("merged weights W + scale*B*A give the same logits as base + adapter", "[model][lora]") {
  torch::NoGradGuard g;
  auto c = tiny();
  auto base = model::causal_lm_random_tensors(c, 3);
  auto m_owner = model::causal_lm_from_tensors(c, base, {}, "t");
  const model::CausalLM& m = *m_owner;
  auto a = trained(c, 5);
  TensorMap merged = base;
  for (int64_t l = 0; l < 2; ++l)
    for (size_t t = 0; t < model::kLoraTargetCount; ++t) {
      auto target = static_cast<model::LoraTarget>(t);
      const auto* p = a.find(l, target);
      std::string block = t < 4 ? "self_attn" : "mlp";
      std::string name = "model.layers." + std::to_string(l) + "." + block + "." + model::lora_target_name(target) +
                         ".weight";
      merged[name] = base[name] + a.config().scale() * p->B.matmul(p->A);
    }
  auto mm_owner = model::causal_lm_from_tensors(c, merged, {}, "merged");
  const model::CausalLM& mm = *mm_owner;
  auto with_adapter = run(m, kIds, {&a});
  CHECK((with_adapter - run(mm, kIds, {})).abs().max().item<double>() < 1e-4);
  CHECK((with_adapter - run(m, kIds, {})).abs().max().item<double>() > 1e-2);  // the adapter does something
}

TEST_CASE("rows with different adapters in one batch equal each alone", "[model][lora]") {
  torch::NoGradGuard g;
  auto c = tiny();
  auto m_owner = model::causal_lm_from_tensors(c, model::causal_lm_random_tensors(c, 3), {}, "t");
  const model::CausalLM& m = *m_owner;
  auto a = trained(c, 5), b = trained(c, 6);
  auto tokens = torch::tensor(kIds).unsqueeze(0).repeat({3, 1});
  auto pos = torch::arange(8).unsqueeze(0).repeat({3, 1});
  model::ForwardOptions o;
  o.adapters = {&a, nullptr, &b};
  auto batch = m.forward(tokens, pos, {}, nullptr, o);
  CHECK((batch[0] - run(m, kIds, {&a})[0]).abs().max().item<double>() < 1e-5);
  CHECK((batch[1] - run(m, kIds, {})[0]).abs().max().item<double>() < 1e-5);
  CHECK((batch[2] - run(m, kIds, {&b})[0]).abs().max().item<double>() < 1e-5);
}

TEST_CASE("adapters save and load in the PEFT format", "[model][lora]") {
  auto c = tiny();
  auto a = trained(c, 5);
  auto dir = fs::temp_directory_path() / ("hearth_test_lora_" + std::to_string(::getpid()));
  a.save(dir);
  auto cfg = io::json_read(dir / "adapter_config.json");
  CHECK(cfg["peft_type"] == "LORA");
  CHECK(cfg["r"] == 4);
  CHECK(cfg["lora_alpha"] == 8.0);
  CHECK(cfg["target_modules"].size() == 7);
  auto st = io::SafetensorsFile::open(dir / "adapter_model.safetensors");
  const auto* A = st->find("base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight");
  REQUIRE(A);
  CHECK(A->shape == std::vector<int64_t>{4, 24});
  const auto* B = st->find("base_model.model.model.layers.0.mlp.down_proj.lora_B.weight");
  REQUIRE(B);
  CHECK(B->shape == std::vector<int64_t>{24, 4});
  CHECK(st->tensors().size() == 2 * 7 * 2);
  auto back = model::LoraAdapter::load(dir, c);
  for (size_t i = 0; i < a.parameters().size(); ++i) CHECK(torch::equal(a.parameters()[i], back.parameters()[i]));
  // an adapter for another shape is refused, naming the tensor
  auto other = tiny();
  other.hidden_size = 32;
  CHECK_THROWS_AS(model::LoraAdapter::load(dir, other), FormatError);
  auto bad = cfg;
  bad["peft_type"] = "IA3";
  io::atomic_write(dir / "adapter_config.json", bad.dump());
  CHECK_THROWS_WITH(model::LoraAdapter::load(dir, c), Catch::Matchers::Contains("peft_type"));
  // PEFT writes "base_model_name_or_path": null when it does not know the model; a flag that is not a bool is a
  // FormatError naming the key (both threw nlohmann's type_error, exit 1).
  auto unnamed = cfg;
  unnamed["base_model_name_or_path"] = nullptr;
  io::atomic_write(dir / "adapter_config.json", unnamed.dump());
  CHECK(model::LoraAdapter::load(dir, c).parameters().size() == a.parameters().size());
  auto flag = cfg;
  flag["use_rslora"] = "yes";
  io::atomic_write(dir / "adapter_config.json", flag.dump());
  CHECK_THROWS_WITH(model::LoraAdapter::load(dir, c), Catch::Matchers::Contains("use_rslora"));
  auto type = cfg;
  type["peft_type"] = 3;
  io::atomic_write(dir / "adapter_config.json", type.dump());
  CHECK_THROWS_WITH(model::LoraAdapter::load(dir, c), Catch::Matchers::Contains("peft_type"));
}

TEST_CASE("LoRA gradients equal central finite differences", "[model][lora]") {
  auto c = tiny();
  auto m_owner = model::causal_lm_from_tensors(c, model::causal_lm_random_tensors(c, 3), {}, "t");
  const model::CausalLM& m = *m_owner;
  auto a = trained(c, 9);
  torch::manual_seed(0);
  auto probe = torch::randn({1, 8, 50});
  auto loss_of = [&] { return (run(m, kIds, {&a}) * probe).sum(); };
  for (auto& p : a.parameters()) p.set_requires_grad(true);
  loss_of().backward();
  struct Pick {
    int64_t layer;
    model::LoraTarget t;
    bool is_a;
    int64_t i, j;
  };
  for (Pick pk : {Pick{0, model::LoraTarget::kQ, true, 1, 3}, Pick{1, model::LoraTarget::kV, false, 5, 2},
                  Pick{0, model::LoraTarget::kDown, false, 7, 0}, Pick{1, model::LoraTarget::kGate, true, 2, 11}}) {
    auto* pair = a.find(pk.layer, pk.t);
    auto& w = pk.is_a ? pair->A : pair->B;
    double analytic = w.grad()[pk.i][pk.j].item<double>();
    torch::NoGradGuard g;
    const double eps = 1e-2;
    double orig = w[pk.i][pk.j].item<double>();
    w[pk.i][pk.j] = orig + eps;
    double up = loss_of().item<double>();
    w[pk.i][pk.j] = orig - eps;
    double down = loss_of().item<double>();
    w[pk.i][pk.j] = orig;
    double numeric = (up - down) / (2 * eps);
    INFO(model::lora_target_name(pk.t) << (pk.is_a ? " A" : " B") << " analytic " << analytic << " numeric "
                                       << numeric);
    CHECK(analytic == Approx(numeric).epsilon(0.02).margin(2e-3));
  }
  // the base weights get no gradient
  for (const auto* lin : m.linears()) CHECK_FALSE(lin->weight().requires_grad());
}

TEST_CASE("LoRA dropout drops a p share of the input, scales the rest by 1/(1 - p), and only while training",
          "[model][lora]") {
  auto c = tiny();  // q_proj is [24, 24]: with A = B = I (and scale 1) the delta is the dropped-out input itself
  model::LoraConfig lc;
  lc.r = 24;
  lc.alpha = 24;
  lc.dropout = 0.25;
  lc.targets = {model::LoraTarget::kQ};
  auto a = model::LoraAdapter::create(c, lc, 1);
  auto* pair = a.find(0, model::LoraTarget::kQ);
  pair->A.copy_(torch::eye(24));
  pair->B.copy_(torch::eye(24));
  torch::manual_seed(5);
  auto x = torch::rand({4, 64, 24}) + 1.0;  // no zeros of its own
  const std::vector<const model::LoraAdapter*> rows = {&a};
  auto d = model::lora_delta(x, rows, 0, model::LoraTarget::kQ, /*training=*/true);
  auto dropped = d.eq(0);
  const double share = dropped.to(torch::kFloat64).mean().item<double>();
  const double sigma = std::sqrt(0.25 * 0.75 / double(x.numel()));
  CHECK(std::abs(share - 0.25) < 4 * sigma);
  auto kept = dropped.logical_not();
  CHECK(torch::allclose(d.masked_select(kept), (x / 0.75).masked_select(kept), 1e-6, 1e-6));
  CHECK(torch::allclose(model::lora_delta(x, rows, 0, model::LoraTarget::kQ, /*training=*/false), x, 1e-6, 1e-6));
}

TEST_CASE("LoRA gradients through dropout equal finite differences (the masks replayed from the seed)",
          "[model][lora]") {
  auto c = tiny();
  model::LoraConfig lc = all_targets();
  lc.dropout = 0.3;
  auto a = model::LoraAdapter::create(c, lc, 2);
  torch::manual_seed(6);
  auto* pair = a.find(1, model::LoraTarget::kDown);  // [24, 40]: A [4, 40], B [24, 4]
  pair->B.copy_(torch::randn(pair->B.sizes()) * 0.5);
  pair->A.set_requires_grad(true);
  pair->B.set_requires_grad(true);
  auto x = torch::randn({2, 5, 40}).requires_grad_(true);
  auto probe = torch::randn({2, 5, 24});
  const std::vector<const model::LoraAdapter*> rows = {&a};
  // The loss is linear in each of x, A and B once the mask is fixed: central differences are exact up to rounding.
  auto loss = [&] {
    torch::manual_seed(77);  // the same masks every time
    return (model::lora_delta(x, rows, 1, model::LoraTarget::kDown, /*training=*/true) * probe).sum();
  };
  loss().backward();
  auto check = [&](torch::Tensor& t, const torch::Tensor& grad, std::vector<int64_t> where) {
    torch::NoGradGuard no_grad;
    auto flat = t.view({-1});
    auto g = grad.reshape({-1});
    for (int64_t i : where) {
      const float keep = flat[i].item<float>();
      flat[i] = keep + 0.5f;
      const double up = loss().item<double>();
      flat[i] = keep - 0.5f;
      const double down = loss().item<double>();
      flat[i] = keep;
      INFO("element " << i);
      CHECK(g[i].item<double>() == Approx((up - down) / 1.0).margin(1e-4));
    }
  };
  auto gx = x.grad().clone(), ga = pair->A.grad().clone(), gb = pair->B.grad().clone();
  CHECK(gx.eq(0).any().item<bool>());  // dropped inputs get no gradient
  check(x, gx, {0, 7, 41, 133, 399});
  check(pair->A, ga, {0, 13, 77, 159});
  check(pair->B, gb, {0, 5, 50, 95});
}

TEST_CASE("LoRA on a bfloat16 input gives the gradients of libtorch's own ops", "[model][lora]") {
  auto c = tiny();
  auto a = trained(c, 8);
  auto* pair = a.find(0, model::LoraTarget::kUp);  // [40, 24]
  pair->A.set_requires_grad(true);
  pair->B.set_requires_grad(true);
  torch::manual_seed(9);
  auto x = torch::randn({3, 4, 24}).to(torch::kBFloat16).requires_grad_(true);
  auto probe = torch::randn({3, 4, 40}).to(torch::kBFloat16);
  const std::vector<const model::LoraAdapter*> rows = {&a};
  (model::lora_delta(x, rows, 0, model::LoraTarget::kUp, /*training=*/false) * probe).sum().backward();
  auto got = std::vector<torch::Tensor>{x.grad().clone(), pair->A.grad().clone(), pair->B.grad().clone()};
  for (auto* t : {&x, &pair->A, &pair->B}) t->mutable_grad() = torch::Tensor();
  const double scale = a.config().scale();
  auto plain = (torch::linear(torch::linear(x.to(torch::kFloat32), pair->A), pair->B) * scale).to(torch::kBFloat16);
  (plain * probe).sum().backward();
  CHECK(torch::equal(got[0], x.grad()));
  CHECK(torch::equal(got[1], pair->A.grad()));
  CHECK(torch::equal(got[2], pair->B.grad()));
}
