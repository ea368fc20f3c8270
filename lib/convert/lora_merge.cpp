#include "convert/lora_merge.h"

#include <cstdio>

#include <torch/torch.h>

namespace hearth::convert {

std::optional<std::pair<int64_t, model::LoraTarget>> lora_target_of(const std::string& hf_name) {
  long layer = -1;
  char block[16] = {}, module[16] = {}, rest[16] = {};
  int used = 0;
  if (std::sscanf(hf_name.c_str(), "model.layers.%ld.%15[a-z_].%15[a-z_].%15[a-z]%n", &layer, block, module, rest,
                  &used) != 4 ||
      used != static_cast<int>(hf_name.size()) || std::string(rest) != "weight" || layer < 0)
    return std::nullopt;
  auto target = model::lora_target_parse(module);
  if (!target) return std::nullopt;
  const bool attention = *target <= model::LoraTarget::kO;
  if (std::string(block) != (attention ? "self_attn" : "mlp")) return std::nullopt;
  return std::make_pair(static_cast<int64_t>(layer), *target);
}

namespace {
// Rows [r0, r1) of `hf_name` (`w`, float32 [r1 - r0, in]) with the adapter merged: W + scale · B[r0:r1] · A, as PEFT
// merges (in float32; the adapter is float32 already). `w` unchanged when the adapter does not wrap the tensor.
torch::Tensor merge_rows(torch::Tensor w, const model::LoraAdapter& adapter, const std::string& hf_name, int64_t r0,
                         int64_t r1) {
  auto target = lora_target_of(hf_name);
  const model::LoraPair* pair = target ? adapter.find(target->first, target->second) : nullptr;
  if (!pair) return w;
  torch::NoGradGuard no_grad;
  torch::Tensor delta = torch::matmul(pair->B.to(torch::kCPU).slice(0, r0, r1), pair->A.to(torch::kCPU));
  return (w + delta.mul(adapter.config().scale())).contiguous();
}
}  // namespace

TensorSource tensor_source_merged(TensorSource base, std::shared_ptr<const model::LoraAdapter> adapter) {
  TensorSource s = base;
  s.origin = base.origin + " + adapter";
  s.load = [base, adapter](const std::string& hf_name) {
    torch::Tensor w = base.load(hf_name);  // float32 [out, in]
    return merge_rows(w, *adapter, hf_name, 0, w.dim() > 0 ? w.size(0) : 0);
  };
  s.load_rows = [base, adapter](const std::string& hf_name, int64_t r0, int64_t r1) {
    return merge_rows(tensor_source_rows(base, hf_name, r0, r1), *adapter, hf_name, r0, r1);
  };
  return s;
}

}  // namespace hearth::convert
