// The Llama family as real checkpoints have it: which model_type values hearth runs and how each differs.
//
// All of them share the decoder in llama.cpp (pre-norm RMSNorm, RoPE, GQA attention, SwiGLU MLP); they
// differ only in the switches below. A family that needs different forward code gets its own file.
#pragma once

#include <string>
#include <vector>

namespace hearth::model {

struct FamilyTraits {
  const char* model_type;
  const char* examples;        // for docs and error messages
  bool qkv_bias_always;        // Qwen2: q/k/v have bias regardless of config keys
  bool qk_norm;                // Qwen3: per-head RMSNorm on q and k
  bool honors_attention_bias;  // reads config.json "attention_bias"
};

// nullptr when unsupported.
const FamilyTraits* family_find(const std::string& model_type);
const std::vector<FamilyTraits>& family_all();

}  // namespace hearth::model
