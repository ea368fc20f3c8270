// A frozen base linear layer y = x·Wᵀ + b, with LoRA adapters on top: the one place where the decoder
// multiplies by a weight matrix.
//
// A Linear may hold several projections fused along the output (q/k/v, gate/up): each is a `part` with
// its LoRA target, so adapters apply per projection while the base weights are read in one product.
// The weight's storage is this class's business: dense float32/bfloat16/float16 today; block-quantized
// formats (lib/quant) plug in here as another storage kind, behind the same forward() and bytes().
// Not a torch::nn::Module: base weights never train (LoRA weights live in LoraAdapter).
#pragma once

#include <cstdint>
#include <vector>

#include <torch/types.h>

#include "model/lora.h"

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

  Linear() = default;
  // Dense weight [out, in] (and bias [out] or undefined). `parts` split `out` in order; their sizes must
  // add up to out. An empty list means one part with no LoRA target (e.g. the output head).
  Linear(torch::Tensor weight, torch::Tensor bias, std::vector<Part> parts = {});

  // x [..., in] -> y [..., out] in x's dtype: base product, bias, and the adapters' deltas on each part.
  // Differentiable with respect to the adapters' weights (never the base).
  torch::Tensor forward(const torch::Tensor& x, const LoraCall& lora = {}) const;

  int64_t in_features() const { return weight_.size(1); }
  int64_t out_features() const { return weight_.size(0); }
  // Bytes of base weights (and bias) one forward reads.
  size_t bytes() const;
  // The dense weight [out, in], for merging and tests. Never modify it in place (it may be memory-mapped).
  const torch::Tensor& weight() const { return weight_; }
  const torch::Tensor& bias() const { return bias_; }

 private:
  torch::Tensor base(const torch::Tensor& x) const;

  torch::Tensor weight_, bias_;
  std::vector<Part> parts_;
};

}  // namespace hearth::model
