// A LoRA adapter with random A and B for serve tests (a fresh one has B = 0 and would change nothing), saved as
// PEFT into DIR once per process and reused after.
#pragma once

#include <filesystem>

#include "model/checkpoint.h"
#include "model/lora.h"
#include "test_paths.h"

namespace hearth::test {

inline std::filesystem::path random_adapter_make(const std::filesystem::path& dir, uint64_t seed) {
  if (std::filesystem::exists(dir / "adapter_config.json")) return dir;
  model::LoraConfig lc;
  lc.r = 4;
  lc.targets = {model::LoraTarget::kQ, model::LoraTarget::kV, model::LoraTarget::kO, model::LoraTarget::kUp,
                model::LoraTarget::kDown};
  auto adapter = model::LoraAdapter::create(model::config_load(stories_dir()), lc, seed);
  torch::manual_seed(seed);
  torch::NoGradGuard no_grad;
  for (auto& p : adapter.parameters()) p.copy_(torch::randn_like(p) * 0.3);
  adapter.save(dir);
  return dir;
}

}  // namespace hearth::test
