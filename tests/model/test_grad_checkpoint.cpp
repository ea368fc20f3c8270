// Gradient checkpointing: recomputing layers in backward (dropout replayed from the saved generator state)
// gives the same gradients bit for bit as storing activations, on the CPU and (tagged [gpu]) on CUDA; the
// recomputation state is freed with the graph even when backward never runs.
#include <catch2/catch.hpp>

#include <torch/cuda.h>
#include <torch/torch.h>

#include "model/causal_lm.h"
#include "model/grad_checkpoint.h"
#include "model/lora.h"
#include "tiny_config.h"

using namespace hearth;

namespace {

model::ModelConfig tiny() { return test::tiny_config(3); }

// LoRA gradients of one training forward/backward (dropout 0.2), with or without checkpointing.
std::vector<torch::Tensor> lora_grads(torch::Device device, bool checkpoint) {
  auto c = tiny();
  auto m = model::causal_lm_from_tensors(c, model::causal_lm_random_tensors(c, 3), {device, torch::kFloat32}, "t");
  model::LoraConfig lc;
  lc.r = 4;
  lc.alpha = 8;
  lc.dropout = 0.2;
  lc.targets = {model::LoraTarget::kQ, model::LoraTarget::kV, model::LoraTarget::kDown};
  auto adapter = model::LoraAdapter::create(c, lc, 7, device);
  for (auto& p : adapter.parameters()) {
    torch::NoGradGuard g;
    p.add_(torch::ones_like(p) * 0.05);  // B != 0, so every LoRA weight gets a gradient
    p.set_requires_grad(true);
  }
  model::ForwardOptions o;
  o.adapters = {&adapter};
  o.training = true;
  o.checkpoint_layers = checkpoint;
  torch::manual_seed(11);
  if (device.is_cuda()) {
    at::Generator gen = at::globalContext().defaultGenerator(device);
    gen.set_current_seed(11);
  }
  auto tokens = torch::tensor({{1, 5, 9, 2, 44, 3}}, torch::kInt64);
  auto logits = m->forward(tokens, torch::arange(6).unsqueeze(0), {}, nullptr, o);
  logits.pow(2).mean().backward();
  std::vector<torch::Tensor> grads;
  for (const auto& p : adapter.parameters()) grads.push_back(p.grad().to(torch::kCPU).clone());
  return grads;
}

void check_identical(torch::Device device) {
  auto stored = lora_grads(device, false);
  auto recomputed = lora_grads(device, true);
  REQUIRE(stored.size() == recomputed.size());
  for (size_t i = 0; i < stored.size(); ++i) {
    INFO("parameter " << i);
    CHECK(stored[i].abs().sum().item<double>() > 0);
    CHECK(torch::equal(stored[i], recomputed[i]));
  }
}

}  // namespace

TEST_CASE("checkpointed layers give bit-identical LoRA gradients with dropout (CPU)", "[model][checkpoint]") {
  check_identical(torch::kCPU);
}

TEST_CASE("checkpointed layers give bit-identical LoRA gradients with dropout (CUDA)", "[model][checkpoint][gpu]") {
  if (!torch::cuda::is_available()) {
    WARN("no CUDA device: skipped");
    return;
  }
  check_identical(torch::Device(torch::kCUDA, 0));
}

TEST_CASE("a checkpointed forward whose backward never runs frees its state", "[model][checkpoint]") {
  auto c = tiny();
  auto m = model::causal_lm_from_tensors(c, model::causal_lm_random_tensors(c, 3), {}, "t");
  model::LoraConfig lc;
  auto adapter = model::LoraAdapter::create(c, lc, 7);
  for (auto& p : adapter.parameters()) p.set_requires_grad(true);
  model::ForwardOptions o;
  o.adapters = {&adapter};
  o.checkpoint_layers = true;
  const int64_t before = model::checkpoint_states_alive();
  {
    auto logits = m->forward(torch::tensor({{1, 2, 3}}, torch::kInt64), torch::arange(3).unsqueeze(0), {}, nullptr, o);
    CHECK(model::checkpoint_states_alive() == before + c.num_hidden_layers);  // one per layer, held by the graph
  }  // the graph goes with the logits, no backward
  CHECK(model::checkpoint_states_alive() == before);
  {
    auto logits = m->forward(torch::tensor({{1, 2, 3}}, torch::kInt64), torch::arange(3).unsqueeze(0), {}, nullptr, o);
    logits.sum().backward();
  }
  CHECK(model::checkpoint_states_alive() == before);
}
