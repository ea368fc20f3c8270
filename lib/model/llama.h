// The Llama-family decoder (Llama 2/3, Mistral, Qwen2/2.5, Qwen3, SmolLM): a CausalLM.
//
// Semantics follow transformers' LlamaForCausalLM (and Qwen2/Qwen3 for their switches, see family.h):
// pre-norm RMSNorm, RoPE (rotate-half), grouped-query attention with softmax in float32, SwiGLU MLP,
// optional tied head. The same code runs float32 or bfloat16, on CPU or CUDA, with or without autograd
// (the base weights never require grad; LoRA training adds its own trainable tensors). The blocks are the
// shared ones of layers.h; this file wires them. Code outside lib/model uses CausalLM (causal_lm.h).
#pragma once

#include <vector>

#include "model/causal_lm.h"
#include "model/layers.h"

namespace hearth::model {

// Base weights of one decoder layer.
struct LlamaLayer {
  torch::Tensor attn_norm;  // [C]
  AttentionWeights attn;
  torch::Tensor mlp_norm;  // [C]
  MlpWeights mlp;
};

class LlamaModel final : public CausalLM {
 public:
  // From HF-named tensors and block weights (see causal_lm_from_tensors).
  LlamaModel(const ModelConfig& config, const TensorMap& tensors, const LoadOptions& options, const std::string& origin,
             const BlockMap* blocks = nullptr);

  using CausalLM::forward;
  torch::Tensor forward(const torch::Tensor& tokens, const torch::Tensor& positions, const torch::Tensor& valid,
                        KvCache* cache, const ForwardOptions& options) const override;
  std::vector<const Linear*> linears() const override;
  size_t weight_bytes() const override;

  // One decoder layer: x [B, T, C] -> [B, T, C].
  torch::Tensor layer_forward(int64_t l, const torch::Tensor& x, const AttentionInputs& in,
                              const ForwardOptions& options) const;

 private:
  Linear embed_;        // [V, C]: looked up by row (dense, or blocks decoded row by row)
  torch::Tensor norm_;  // [C]
  Linear lm_head_;      // [V, C] (the embedding when tied)
  torch::Tensor inv_freq_;
  std::vector<LlamaLayer> layers_;
};

}  // namespace hearth::model
