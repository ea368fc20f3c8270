#include "model/family.h"

namespace hearth::model {

const std::vector<FamilyTraits>& family_all() {
  static const std::vector<FamilyTraits> kFamilies = {
      {"llama", "Llama 2, Llama 3/3.1/3.2, SmolLM/SmolLM2, TinyLlama, stories260K", false, false, true},
      {"mistral", "Mistral 7B v0.1-v0.3", false, false, false},
      {"qwen2", "Qwen2, Qwen2.5", true, false, false},
      {"qwen3", "Qwen3 (dense)", false, true, true},
  };
  return kFamilies;
}

const FamilyTraits* family_find(const std::string& model_type) {
  for (const auto& f : family_all())
    if (model_type == f.model_type) return &f;
  return nullptr;
}

}  // namespace hearth::model
