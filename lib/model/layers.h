// Building blocks shared by the decoder families: RMSNorm, grouped-query self-attention with RoPE and the
// KV cache, the SwiGLU MLP, and loading their weights from Hugging Face tensor names.
//
// A family file (llama.cpp) composes these; a new family that differs only in how it wires them is a short
// file of its own. Shape letters as in causal_lm.h.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <torch/types.h>

#include "model/config.h"
#include "model/kv_cache.h"
#include "model/linear.h"

namespace hearth::model {

struct LoadOptions;

// x [..., C] -> RMSNorm(x)·w, computed in float32 and cast back (as transformers).
torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps);

struct AttentionWeights {
  Linear qkv;                    // [(H + 2·KV)·hd, C] fused, parts q, k, v
  Linear o;                      // [C, H·hd]
  torch::Tensor q_norm, k_norm;  // [hd] (Qwen3) or undefined
};

struct MlpWeights {
  Linear gate_up;  // [2·F, C] fused, parts gate, up
  Linear down;     // [C, F]
};

// Everything an attention call needs besides its input: RoPE tables, mask, and where keys/values live.
struct AttentionInputs {
  torch::Tensor cos, sin;           // [B, 1, T, hd]
  torch::Tensor mask;               // [B, 1, T, S] bool or undefined (see attention_mask)
  KvCache* cache = nullptr;         // nullptr: attend within this call's tokens only
  std::vector<int64_t> cache_rows;  // the cache rows of the batch's rows (ForwardOptions::cache_rows); empty: [0, B)
  torch::Tensor slots;              // [B, T] int64 cache slot of each token (positions in the batch without a cache)
  int64_t n_keys = 0;               // S
  bool causal = false;              // the mask is plain causal for every row that counts (see attention())
};

// Self-attention over the normalized input h [B, T, C] -> [B, T, C] (before the residual add): fused
// q/k/v projection with LoRA, optional per-head q/k RMSNorm, RoPE, cache write and read, attention, output
// projection with LoRA.
torch::Tensor self_attention(const torch::Tensor& h, const AttentionWeights& w, const ModelConfig& c,
                             const AttentionInputs& in, const LoraCall& lora);

// SwiGLU MLP over the normalized input h [B, T, C] -> [B, T, C]: down(silu(gate(h)) · up(h)), with LoRA.
torch::Tensor swiglu_mlp(const torch::Tensor& h, const MlpWeights& w, const LoraCall& lora);

// Weight matrices kept as ggml blocks, by Hugging Face name (e.g. from a GGUF file, on the CPU).
using BlockMap = std::map<std::string, Linear::Blocks>;

// Takes tensors by Hugging Face name from a checkpoint's map, checks their shapes against the config and
// converts them to the compute dtype and device. A matrix found in `blocks` instead becomes a block Linear: read in
// place on the CPU; on a GPU copied there when LoadOptions::blocks_on_device and blocks_decodable() allow, else
// decoded to a dense weight. Errors name `origin` and the tensor.
class WeightSource {
 public:
  WeightSource(const std::map<std::string, torch::Tensor>& tensors, const LoadOptions& options, std::string origin,
               const BlockMap* blocks = nullptr);
  // Throws FormatError for a missing tensor or a shape other than `shape`.
  torch::Tensor take(const std::string& name, const std::vector<int64_t>& shape) const;
  // Undefined tensor when !wanted (the config says the tensor does not exist).
  torch::Tensor take_optional(const std::string& name, const std::vector<int64_t>& shape, bool wanted) const;

  // The attention weights under `prefix` ("model.layers.N.self_attn."): q/k/v/o_proj (+ biases, q/k_norm as
  // the config says), q/k/v fused.
  AttentionWeights attention(const std::string& prefix, const ModelConfig& c) const;
  // The MLP weights under `prefix` ("model.layers.N.mlp."): gate/up/down_proj (+ biases), gate/up fused.
  MlpWeights mlp(const std::string& prefix, const ModelConfig& c) const;
  // A Linear of the matrices `names` ([rows_i, in] each) fused in order as `parts`, with `bias` (the parts'
  // biases concatenated, or undefined): from blocks when all are block weights, else dense.
  Linear linear(const std::vector<std::string>& names, int64_t in, std::vector<Linear::Part> parts,
                torch::Tensor bias) const;
  // The matrix `name` [rows, in] as a Linear with no LoRA target (the output head). `lookup_only`: used only for
  // Linear::rows (an embedding not tied to the head), so its blocks stay in place, read a row at a time.
  Linear matrix(const std::string& name, int64_t rows, int64_t in, bool lookup_only = false) const;

 private:
  // The blocks of `names` as the Linear keeps them, or std::nullopt when they are to be decoded to dense weights.
  std::optional<std::vector<Linear::Blocks>> placed(const std::vector<std::string>& names,
                                                    bool lookup_only = false) const;
  torch::Tensor decoded(const std::string& name) const;

  const BlockMap* blocks_;
  const std::map<std::string, torch::Tensor>& tensors_;
  const LoadOptions& options_;
  std::string origin_;
};

}  // namespace hearth::model
