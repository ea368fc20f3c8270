// LoRA adapters for the Llama-family decoder, in the Hugging Face PEFT format.
//
// For a frozen base linear W [out, in], an adapter adds  y += scale · B(A(dropout(x)))  with A [r, in],
// B [out, r], scale = alpha / r (or alpha / √r with rslora). B starts at zero, so a new adapter leaves the
// model unchanged. Adapter weights are float32 whatever the base dtype. Files: adapter_config.json
// (peft_type LORA, r, lora_alpha, target_modules, ...) and adapter_model.safetensors with PEFT key names
// "base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight" (https://huggingface.co/docs/peft).
#pragma once

#include <array>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include "model/config.h"

namespace hearth::model {

// The linears LoRA can wrap, by their HF module names.
enum class LoraTarget { kQ = 0, kK, kV, kO, kGate, kUp, kDown };
constexpr size_t kLoraTargetCount = 7;
const char* lora_target_name(LoraTarget t);  // "q_proj", ...
// "q", "q_proj", "self_attn.q_proj" -> kQ; std::nullopt for anything else.
std::optional<LoraTarget> lora_target_parse(const std::string& name);
// [out, in] of target `t` in config `c`.
std::pair<int64_t, int64_t> lora_target_shape(const ModelConfig& c, LoraTarget t);

struct LoraConfig {
  int64_t r = 8;
  double alpha = 16;
  double dropout = 0.0;
  bool use_rslora = false;
  std::vector<LoraTarget> targets = {LoraTarget::kQ, LoraTarget::kK, LoraTarget::kV, LoraTarget::kO};
  std::string base_model;  // base_model_name_or_path
  double scale() const;
};

struct LoraPair {
  torch::Tensor A;  // [r, in], float32
  torch::Tensor B;  // [out, r], float32
};

class LoraAdapter {
 public:
  // A fresh adapter: A like PEFT (Kaiming-uniform, a = √5, i.e. U(-1/√in, 1/√in)), B = 0. Deterministic
  // for a seed. Throws ConfigError for r <= 0 or no targets.
  static LoraAdapter create(const ModelConfig& model, const LoraConfig& config, uint64_t seed,
                            torch::Device device = torch::kCPU);
  // Loads a PEFT adapter folder. Throws IoError (missing files), FormatError (not LORA, unknown target
  // module, shapes not matching the model, unsupported options such as fan_in_fan_out or DoRA) naming
  // the file and key.
  static LoraAdapter load(const std::filesystem::path& dir, const ModelConfig& model,
                          torch::Device device = torch::kCPU);
  // Writes adapter_config.json and adapter_model.safetensors into DIR (created if needed), each atomically.
  void save(const std::filesystem::path& dir) const;

  const LoraConfig& config() const { return config_; }
  // nullptr when the adapter does not wrap that linear.
  const LoraPair* find(int64_t layer, LoraTarget t) const;
  LoraPair* find(int64_t layer, LoraTarget t);
  // Every A and B (for an optimizer), in a fixed order: layer, target, A then B.
  std::vector<torch::Tensor> parameters() const;
  int64_t parameter_count() const;
  // PEFT key name -> tensor (what save() writes).
  std::map<std::string, torch::Tensor> named_tensors() const;
  // adapter_config.json content.
  nlohmann::json peft_config() const;

 private:
  LoraConfig config_;
  int64_t n_layers_ = 0;
  std::vector<std::array<std::optional<LoraPair>, kLoraTargetCount>> layers_;
};

// The adapters' contribution to one target linear: x [B, T, in] -> delta [B, T, out] in x's dtype, or an
// undefined tensor when no row has an adapter on that linear. `rows`: one adapter per batch row (nullptr =
// none), or a single entry for every row; rows sharing an adapter are computed together. Dropout (on the
// LoRA input, as PEFT) only when `training`; for backward it keeps x itself and a byte mask (lora.cpp: LoraDown).
torch::Tensor lora_delta(const torch::Tensor& x, const std::vector<const LoraAdapter*>& rows, int64_t layer,
                         LoraTarget target, bool training);

// The weights of layer `layer` that require grad, over every adapter in `rows` (each once): what a
// checkpointed layer must route gradients to.
std::vector<torch::Tensor> lora_trainable(const std::vector<const LoraAdapter*>& rows, int64_t layer);

}  // namespace hearth::model
