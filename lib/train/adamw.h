// AdamW with decoupled weight decay, step for step as torch.optim.AdamW (amsgrad off):
//   p ← p·(1 − lr·wd);  m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²;
//   p ← p − (lr / (1−β1ᵗ)) · m / (√v / √(1−β2ᵗ) + ε)
// The parameters live in one flat buffer (each a view of it), as do the moments and the step's gradient, so that an
// update is a handful of whole-buffer operations whatever the number of tensors — LoRA on every projection of a
// Llama-3.2-1B is 224 small tensors, which per-tensor ops would turn into ~1,600 kernel launches a step on a GPU.
// Its whole state (m, v, t) is plain tensors so checkpoints can store it exactly. Not thread-safe.
#pragma once

#include <vector>

#include <torch/types.h>

namespace hearth::train {

struct AdamWOptions {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
};

// The gradients of `params` in one flat float32 tensor [Σ numel] in their order, zeros for a param without one;
// undefined when none has a gradient.
torch::Tensor grads_flat(const std::vector<torch::Tensor>& params);

class AdamW {
 public:
  // `params`: float32 leaf tensors that require grad, all on one device. From here on each is a view of the
  // optimizer's flat buffer, its values kept (every holder of the tensor — e.g. the LoRA adapter — sees the one
  // storage). Throws ConfigError for other dtypes or mixed devices.
  AdamW(std::vector<torch::Tensor> params, AdamWOptions options);
  // One update with learning rate `lr` from the flat gradient `grad` ([Σ numel] as grads_flat makes it, any float
  // dtype). An undefined `grad` counts the step and changes nothing.
  void step(double lr, const torch::Tensor& grad);
  // The same from the params' current .grad() (grads_flat): a param without one counts as a zero gradient, where
  // torch.optim.AdamW would skip it (finetune-lora's steps give every LoRA weight a gradient).
  void step(double lr) { step(lr, grads_flat(params_)); }
  void zero_grad();
  int64_t steps() const { return t_; }
  // State for checkpoints: m and v for every param (same order, views of the flat moments), and the step count.
  const std::vector<torch::Tensor>& exp_avg() const { return m_; }
  const std::vector<torch::Tensor>& exp_avg_sq() const { return v_; }
  // Restores a saved state; shapes must match (throws FormatError otherwise).
  void state_load(const std::vector<torch::Tensor>& m, const std::vector<torch::Tensor>& v, int64_t t);

 private:
  std::vector<torch::Tensor> params_, m_, v_;  // views of flat_, m_flat_, v_flat_
  torch::Tensor flat_, m_flat_, v_flat_;       // [Σ numel] float32
  AdamWOptions o_;
  int64_t t_ = 0;
};

// Scales the flat gradient `grad` in place so its L2 norm is at most `max_norm` (no-op when max_norm <= 0);
// returns the norm before clipping (as torch.nn.utils.clip_grad_norm_ over the tensors it was made from).
double grad_clip(const torch::Tensor& grad, double max_norm);

}  // namespace hearth::train
