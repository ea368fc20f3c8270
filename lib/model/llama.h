// The Llama-family decoder (Llama 2/3, Mistral, Qwen2/2.5, Qwen3, SmolLM) in libtorch, with a KV cache.
//
// Semantics follow transformers' LlamaForCausalLM (and Qwen2/Qwen3 for their switches, see family.h):
// pre-norm RMSNorm, RoPE (rotate-half), grouped-query attention with softmax in float32, SwiGLU MLP,
// optional tied head. The same code runs float32 or bfloat16, on CPU or CUDA, with or without autograd
// (the base weights never require grad; LoRA training adds its own trainable tensors).
// q/k/v and gate/up weights are fused at load time (one matmul each) — fewer, larger kernels when decoding.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

#include "model/config.h"
#include "model/kv_cache.h"
#include "model/lora.h"

namespace hearth::model {

struct LoadOptions {
  torch::Device device = torch::kCPU;
  torch::ScalarType dtype = torch::kFloat32;  // compute dtype: kFloat32 or kBFloat16 (kHalf on CUDA)
};

// Base weights of one decoder layer (fused as described above).
struct LayerWeights {
  torch::Tensor attn_norm;             // [C]
  torch::Tensor wqkv, bqkv;            // [(H + 2·KV)·hd, C], [(H + 2·KV)·hd] or undefined
  torch::Tensor wo, bo;                // [C, H·hd], [C] or undefined
  torch::Tensor q_norm, k_norm;        // [hd] (Qwen3) or undefined
  torch::Tensor mlp_norm;              // [C]
  torch::Tensor w_gate_up, b_gate_up;  // [2·F, C], [2·F] or undefined
  torch::Tensor w_down, b_down;        // [C, F], [C] or undefined
};

// How a forward pass runs, beyond its inputs.
struct ForwardOptions {
  bool last_only = false;  // return only each row's last valid position
  // LoRA adapters: one per batch row (nullptr = base model), or one entry for every row; empty = none.
  std::vector<const LoraAdapter*> adapters;
  bool training = false;  // LoRA dropout on
  // Recompute each layer in backward instead of storing its activations (only when autograd records and
  // there is no KV cache).
  bool checkpoint_layers = false;
};

class LlamaModel {
 public:
  // Loads config.json (+ generation_config.json) and the safetensors weights of DIR. Weights already in the
  // requested dtype on CPU are used in place (memory-mapped). Throws IoError / FormatError naming the file
  // and tensor (missing tensor, wrong shape, unsupported dtype), ResourceError for an unavailable device.
  static LlamaModel load(const std::filesystem::path& dir, const LoadOptions& options = {});
  // Builds a model from tensors named as in a Hugging Face checkpoint ("model.layers.0.self_attn.q_proj.weight").
  // `origin` names their source in errors.
  static LlamaModel from_tensors(const ModelConfig& config, const std::map<std::string, torch::Tensor>& tensors,
                                 const LoadOptions& options, const std::string& origin);
  // Deterministic random weights (normal, std 0.02; norms around 1) named as in HF checkpoints.
  static std::map<std::string, torch::Tensor> random_tensors(const ModelConfig& config, uint64_t seed);

  // One forward pass over a batch.
  //   tokens    [B, T] int64; rows may be right-padded;
  //   positions [B, T] int64 (RoPE positions);
  //   valid     [B, T] bool, false on padding (undefined = all valid);
  //   cache     nullptr: causal attention within `tokens` only; otherwise the new keys/values are appended
  //             to each row of the cache and every token attends to its row's earlier valid tokens. B may
  //             be smaller than the cache's batch: the forward then uses cache rows [0, B) only.
  //   last_only true: return only the logits of each row's last valid token.
  // Returns logits [B, T, V] (or [B, 1, V]) in float32. Thread-compatible: concurrent calls need
  // separate caches.
  torch::Tensor forward(const torch::Tensor& tokens, const torch::Tensor& positions, const torch::Tensor& valid,
                        KvCache* cache, bool last_only = false) const;
  // Same, with adapters and training switches (see ForwardOptions). Differentiable with respect to the
  // adapters' weights when called outside InferenceMode/NoGradGuard.
  torch::Tensor forward(const torch::Tensor& tokens, const torch::Tensor& positions, const torch::Tensor& valid,
                        KvCache* cache, const ForwardOptions& options) const;

  // One decoder layer: x [B, T, C] -> [B, T, C]. Exposed for gradient checkpointing in the trainer.
  torch::Tensor layer_forward(int64_t l, const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                              const torch::Tensor& mask, KvCache* cache, const torch::Tensor& slots, int64_t n_keys,
                              const ForwardOptions& options) const;

  // A cache for `batch` rows of up to `capacity` tokens, in this model's dtype and device.
  KvCache cache_new(int64_t batch, int64_t capacity) const;

  const ModelConfig& config() const { return config_; }
  torch::Device device() const { return options_.device; }
  torch::ScalarType dtype() const { return options_.dtype; }
  // Bytes of base weights read per decoded token (all layers + head).
  size_t weight_bytes() const;
  const std::string& origin() const { return origin_; }
  // Base weights, for LoRA wrapping and benchmarks. Never modify them in place (they may be memory-mapped).
  const std::vector<LayerWeights>& layers() const { return layers_; }
  const torch::Tensor& lm_head() const { return lm_head_; }
  const torch::Tensor& embedding() const { return embed_; }

 private:
  LlamaModel() = default;
  torch::Tensor attention_mask(const torch::Tensor& valid, KvCache* cache, const torch::Tensor& slots,
                               int64_t n_keys) const;

  ModelConfig config_;
  LoadOptions options_;
  std::string origin_;
  torch::Tensor embed_;    // [V, C]
  torch::Tensor norm_;     // [C]
  torch::Tensor lm_head_;  // [V, C] (the embedding when tied)
  torch::Tensor inv_freq_;
  std::vector<LayerWeights> layers_;
};

// x [..., C] -> RMSNorm(x)·w, computed in float32 and cast back (as transformers).
torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps);

// Parses "float32" | "bfloat16" | "float16" (and "fp32", "bf16", "fp16"); throws ConfigError naming `option`.
torch::ScalarType dtype_parse(const std::string& text, const std::string& option);
std::string dtype_to_string(torch::ScalarType dtype);
// "cpu" | "cuda" | "auto" -> a device; throws ResourceError when CUDA is asked for but absent.
torch::Device device_parse(const std::string& text, const std::string& option);

}  // namespace hearth::model
