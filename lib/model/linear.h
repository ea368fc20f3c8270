// A frozen base linear layer y = x·Wᵀ + b, with LoRA adapters on top: the one place where the decoder
// multiplies by a weight matrix.
//
// A Linear may hold several projections fused along the output (q/k/v, gate/up): each is a `part` with
// its LoRA target, so adapters apply per projection while the base weights are read in one product.
// The weight's storage is this class's business: a dense float32/bfloat16/float16 tensor, or ggml blocks
// (Q8_0, Q4_0, Q4_K, Q5_K, Q6_K, ...) read in place by lib/quant's kernels — on the CPU, with the activations
// quantized to 8-bit blocks — behind the same forward() and bytes(). Block weights are for inference (and
// LoRA on top); gradients through them (QLoRA) are not implemented and refused.
// Not a torch::nn::Module: base weights never train (LoRA weights live in LoraAdapter).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

#include "model/lora.h"
#include "quant/block_format.h"

namespace hearth::model {

// Which adapters apply to one forward call of a layer's linears.
struct LoraCall {
  const std::vector<const LoraAdapter*>* adapters = nullptr;  // per batch row, or one for all (see lora_delta)
  int64_t layer = 0;
  bool training = false;  // LoRA dropout on
};

class Linear {
 public:
  // One output slice [offset, offset + size) of a fused weight and the LoRA target it belongs to.
  struct Part {
    LoraTarget target;
    int64_t size;
  };

  // A weight matrix [rows, in] as ggml blocks: rows × ggml_type_nbytes(type, in) bytes at `data`, kept alive
  // by `owner` (a memory-mapped file, or a buffer).
  struct Blocks {
    quant::GgmlType type = quant::GgmlType::kF32;
    const uint8_t* data = nullptr;
    int64_t rows = 0, in = 0;
    std::shared_ptr<const void> owner;
    size_t row_bytes() const;
  };

  Linear() = default;
  // Dense weight [out, in] (and bias [out] or undefined). `parts` split `out` in order; their sizes must
  // add up to out. An empty list means one part with no LoRA target (e.g. the output head).
  Linear(torch::Tensor weight, torch::Tensor bias, std::vector<Part> parts = {});
  // Block weights, one per part (parts[i].size rows each, all with the same `in`), or one with no LoRA target
  // when `parts` is empty. Throws Error when they do not fit together.
  Linear(std::vector<Blocks> blocks, torch::Tensor bias, std::vector<Part> parts = {});

  // x [..., in] -> y [..., out] in x's dtype: base product, bias, and the adapters' deltas on each part.
  // Differentiable with respect to the adapters' weights (never the base).
  torch::Tensor forward(const torch::Tensor& x, const LoraCall& lora = {}) const;

  int64_t in_features() const { return in_; }
  int64_t out_features() const { return out_; }
  // Bytes of base weights (and bias) one forward reads.
  size_t bytes() const;
  // True when the weight is held as ggml blocks.
  bool quantized() const { return !blocks_.empty(); }
  // The dense weight [out, in]; undefined when quantized() (see dense()). Never modify it in place (it may
  // be memory-mapped).
  const torch::Tensor& weight() const { return weight_; }
  const torch::Tensor& bias() const { return bias_; }
  // Rows `ids` of the weight (an embedding lookup): ids [...] int64 -> [..., in] in `dtype`.
  torch::Tensor rows(const torch::Tensor& ids, torch::ScalarType dtype) const;
  // The weight as a float32 tensor [out, in] (decoded from blocks when quantized) — for merging and tests.
  torch::Tensor dense() const;
  // The storage type of each part: "F32", "BF16", "Q4_K", ...
  std::vector<std::string> storage_types() const;

 private:
  torch::Tensor base(const torch::Tensor& x) const;
  torch::Tensor base_blocks(const torch::Tensor& x) const;

  torch::Tensor weight_, bias_;
  std::vector<Blocks> blocks_;
  std::vector<Part> parts_;
  int64_t in_ = 0, out_ = 0;
};

}  // namespace hearth::model
