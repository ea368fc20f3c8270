#include "convert/gguf_lora_write.h"

#include <map>

#include <fmt/format.h>
#include <torch/torch.h>

#include "convert/lora_merge.h"
#include "core/error.h"
#include "model/gguf_names.h"

namespace hearth::convert {

GgufLoraSummary gguf_lora_write(const std::filesystem::path& path, const model::ModelConfig& config,
                                const model::LoraAdapter& adapter, const std::vector<io::GgufKv>& extra_metadata) {
  const std::string arch = model::gguf_arch(config);
  GgufLoraSummary s;
  s.alpha = adapter.config().scale() * static_cast<double>(adapter.config().r);
  std::vector<io::GgufKv> metadata = {
      {"general.architecture", io::GgufValue::string(arch)},
      {"general.type", io::GgufValue::string("adapter")},
      {"adapter.type", io::GgufValue::string("lora")},
      {"adapter.lora.alpha", io::GgufValue::f32(static_cast<float>(s.alpha))},
  };
  metadata.insert(metadata.end(), extra_metadata.begin(), extra_metadata.end());

  // Tensors in the base file's order, each A then B; their float32 data is kept here until the write is done.
  std::vector<torch::Tensor> keep;
  std::vector<io::GgufTensorSource> tensors;
  for (const auto& n : model::gguf_tensor_names(config)) {
    auto target = n.hf.empty() ? std::nullopt : lora_target_of(n.hf);
    const model::LoraPair* pair = target ? adapter.find(target->first, target->second) : nullptr;
    if (!pair) continue;
    torch::Tensor A = pair->A.to(torch::kCPU).to(torch::kFloat32).contiguous();  // [r, in]
    torch::Tensor B = pair->B.to(torch::kCPU).to(torch::kFloat32).contiguous();  // [out, r]
    if (n.qk_heads > 0) B = model::qk_rows_to_gguf(B, n.qk_heads);
    keep.push_back(A);
    keep.push_back(B);
    tensors.push_back({n.gguf + ".lora_a", {A.size(1), A.size(0)}, quant::GgmlType::kF32, A.data_ptr(), {}});
    tensors.push_back({n.gguf + ".lora_b", {B.size(1), B.size(0)}, quant::GgmlType::kF32, B.data_ptr(), {}});
  }
  if (tensors.empty())
    throw ConfigError("gguf-lora export: the adapter wraps no linear of this model; nothing to write");
  io::gguf_write(path, metadata, tensors);
  s.tensors = tensors.size();
  s.file_bytes = std::filesystem::file_size(path);
  return s;
}

}  // namespace hearth::convert
