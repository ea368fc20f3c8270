#include "model/linear.h"

#include <fmt/format.h>

#include "core/error.h"

namespace hearth::model {

Linear::Linear(torch::Tensor weight, torch::Tensor bias, std::vector<Part> parts)
    : weight_(std::move(weight)), bias_(std::move(bias)), parts_(std::move(parts)) {
  if (weight_.dim() != 2) throw Error(fmt::format("Linear: weight must be 2-D, got {}-D", weight_.dim()));
  int64_t total = 0;
  for (const auto& p : parts_) total += p.size;
  if (!parts_.empty() && total != weight_.size(0))
    throw Error(fmt::format("Linear: parts add up to {} outputs; the weight has {}", total, weight_.size(0)));
}

// y = x·Wᵀ + b. A single row (decoding one sequence) goes through matrix-vector BLAS: OpenBLAS's sgemm path
// for one row reads the weights 2-3× slower than its sgemv (bench/README.md).
torch::Tensor Linear::base(const torch::Tensor& x) const {
  const int64_t in = x.size(-1);
  if (x.numel() != in || !x.device().is_cpu()) return torch::linear(x, weight_, bias_);
  auto y = torch::mv(weight_, x.reshape({in}));
  if (bias_.defined()) y = y + bias_;
  auto shape = x.sizes().vec();
  shape.back() = weight_.size(0);
  return y.view(shape);
}

torch::Tensor Linear::forward(const torch::Tensor& x, const LoraCall& lora) const {
  auto y = base(x);
  if (!lora.adapters || lora.adapters->empty() || parts_.empty()) return y;
  // Each part gets its own adapter delta; untouched parts are reused as they are.
  std::vector<torch::Tensor> pieces;
  bool any = false;
  int64_t offset = 0;
  for (const auto& p : parts_) {
    auto slice = parts_.size() == 1 ? y : y.narrow(-1, offset, p.size);
    auto delta = lora_delta(x, *lora.adapters, lora.layer, p.target, lora.training);
    any = any || delta.defined();
    pieces.push_back(delta.defined() ? slice + delta : slice);
    offset += p.size;
  }
  if (!any) return y;
  return pieces.size() == 1 ? pieces[0] : torch::cat(pieces, -1);
}

size_t Linear::bytes() const { return weight_.nbytes() + (bias_.defined() ? bias_.nbytes() : 0); }

}  // namespace hearth::model
