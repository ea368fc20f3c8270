// The causal language model interface the rest of hearth uses (generate, eval, serve, train, export):
// a forward pass over a batch with an optional KV cache and LoRA adapters, the cache, and the config.
// Which family implements it (llama.h today) is this folder's business; nothing outside lib/model names
// a family class.
//
// Shape letters used throughout lib/model:
//   B   batch rows (sequences)            T   tokens per row in this call    S   keys attended (cache slots)
//   C   hidden size                       H   query heads                    KV  key/value heads
//   hd  head dim                          F   MLP intermediate size          V   vocabulary size
//   L   decoder layers
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

#include "model/config.h"
#include "model/kv_cache.h"
#include "model/linear.h"
#include "model/lora.h"

namespace hearth::model {

struct LoadOptions {
  torch::Device device = torch::kCPU;
  torch::ScalarType dtype = torch::kFloat32;  // compute dtype: kFloat32 or kBFloat16 (kHalf on CUDA)
  // On a GPU, keep quantized matrices as blocks there (decoded a layer at a time, block_decode.h) instead of decoding
  // them to dense weights at load: QLoRA, where the base must stay small. Types without a torch decoder are still
  // decoded at load. On the CPU blocks always stay blocks.
  bool blocks_on_device = false;
  // On the CPU, copy block matrices (not an embedding only looked up) into huge-page memory, interleaved where
  // the kernels read them fastest so (Linear::Blocks::copied_for_kernels; the mapped pages are given back as each is
  // copied). Off for training: QLoRA multiplies decoded chunks, and the copy would hold a second quantized base
  // while loading.
  bool copy_blocks = true;
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
  // Return the final hidden states (after the final norm) [B, T, C] in float32 instead of the logits (embeddings).
  bool hidden_states = false;
  // Targets [B, T] int64 (-100: none): return Σ cross-entropy of the logits against them, a float32 scalar,
  // instead of the logits — computed a chunk of rows at a time, without the [B, T, V] logits (head_loss.h). Not with
  // last_only or hidden_states.
  torch::Tensor targets;
  // With a cache: batch row b uses cache row cache_rows[b] (B distinct rows, anywhere in the cache: e.g. a server
  // prefilling some rows of its pool while others hold sequences that are decoding). Empty: rows [0, B).
  std::vector<int64_t> cache_rows;
};

class CausalLM {
 public:
  virtual ~CausalLM() = default;
  CausalLM(const CausalLM&) = delete;
  CausalLM& operator=(const CausalLM&) = delete;

  // One forward pass over a batch.
  //   tokens    [B, T] int64; rows may be right-padded;
  //   positions [B, T] int64 (RoPE positions);
  //   valid     [B, T] bool, false on padding (undefined = all valid);
  //   cache     nullptr: causal attention within `tokens` only; otherwise the new keys/values are appended
  //             to each row of the cache and every token attends to its row's earlier valid tokens. B may
  //             be smaller than the cache's batch: the forward then uses cache rows [0, B) only, or the
  //             rows options.cache_rows names; the others are not touched.
  // Returns logits [B, T, V] (or [B, 1, V] with last_only) in float32. Differentiable with respect to the
  // adapters' weights when called outside InferenceMode/NoGradGuard. Thread-compatible: concurrent calls
  // need separate caches.
  virtual torch::Tensor forward(const torch::Tensor& tokens, const torch::Tensor& positions, const torch::Tensor& valid,
                                KvCache* cache, const ForwardOptions& options) const = 0;
  torch::Tensor forward(const torch::Tensor& tokens, const torch::Tensor& positions, const torch::Tensor& valid,
                        KvCache* cache, bool last_only = false) const;

  // A cache for `batch` rows of up to `capacity` tokens, in this model's dtype and device.
  KvCache cache_new(int64_t batch, int64_t capacity) const;

  // Every base linear layer, in the order a decode step reads them (for benchmarks and weight formats).
  virtual std::vector<const Linear*> linears() const = 0;
  // Bytes of base weights read per decoded token (all layers + head).
  virtual size_t weight_bytes() const = 0;

  const ModelConfig& config() const { return config_; }
  torch::Device device() const { return options_.device; }
  torch::ScalarType dtype() const { return options_.dtype; }
  const std::string& origin() const { return origin_; }

 protected:
  CausalLM(ModelConfig config, LoadOptions options, std::string origin)
      : config_(std::move(config)), options_(options), origin_(std::move(origin)) {}

  ModelConfig config_;
  LoadOptions options_;
  std::string origin_;
};

using TensorMap = std::map<std::string, torch::Tensor>;

// Loads a model: a Hugging Face folder (config.json, generation_config.json, safetensors) or a .gguf file
// (gguf_model.h), as the family its model_type / architecture names. Weights already in the requested dtype on CPU are
// used in place (memory-mapped). Throws IoError / FormatError naming the file and tensor (missing tensor, wrong shape,
// unsupported dtype), ResourceError for an unavailable device.
std::unique_ptr<CausalLM> causal_lm_load(const std::filesystem::path& path, const LoadOptions& options = {});
// Builds a model from tensors named as in a Hugging Face checkpoint ("model.layers.0.self_attn.q_proj.weight").
// Weight matrices found in `blocks` (same names) are used as ggml blocks in place instead (on the CPU; on a GPU with
// options.blocks_on_device, copied there; otherwise decoded).
// `origin` names their source in errors.
std::unique_ptr<CausalLM> causal_lm_from_tensors(const ModelConfig& config, const TensorMap& tensors,
                                                 const LoadOptions& options, const std::string& origin,
                                                 const std::map<std::string, Linear::Blocks>& blocks = {});
// Deterministic random weights (normal, std 0.02; norms around 1) named as in HF checkpoints.
TensorMap causal_lm_random_tensors(const ModelConfig& config, uint64_t seed);

// Parses "float32" | "bfloat16" | "float16" (and "fp32", "bf16", "fp16"); throws ConfigError naming `option`.
torch::ScalarType dtype_parse(const std::string& text, const std::string& option);
// "cpu" | "cuda" | "auto" -> a device; throws ResourceError when CUDA is asked for but absent.
torch::Device device_parse(const std::string& text, const std::string& option);

}  // namespace hearth::model
