// AdamW with decoupled weight decay, step for step as torch.optim.AdamW (amsgrad off, foreach off):
//   p ← p·(1 − lr·wd);  m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²;
//   p ← p − (lr / (1−β1ᵗ)) · m / (√v / √(1−β2ᵗ) + ε)
// Its whole state (m, v, t) is plain tensors so checkpoints can store it exactly. Not thread-safe.
#pragma once

#include <vector>

#include <torch/types.h>

namespace hearth::train {

struct AdamWOptions {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
};

class AdamW {
 public:
  // `params` must be float32 leaf tensors that require grad; they are updated in place.
  AdamW(std::vector<torch::Tensor> params, AdamWOptions options);
  // One update with learning rate `lr` from the params' current .grad() (params without a grad are skipped).
  void step(double lr);
  void zero_grad();
  int64_t steps() const { return t_; }
  // State for checkpoints: m and v for every param (same order), and the step count.
  const std::vector<torch::Tensor>& exp_avg() const { return m_; }
  const std::vector<torch::Tensor>& exp_avg_sq() const { return v_; }
  // Restores a saved state; shapes must match (throws FormatError otherwise).
  void state_load(const std::vector<torch::Tensor>& m, const std::vector<torch::Tensor>& v, int64_t t);

 private:
  std::vector<torch::Tensor> params_, m_, v_;
  AdamWOptions o_;
  int64_t t_ = 0;
};

// Scales grads so their global L2 norm is at most `max_norm` (no-op when max_norm <= 0); returns the norm
// before clipping (as torch.nn.utils.clip_grad_norm_).
double grad_clip(const std::vector<torch::Tensor>& params, double max_norm);

}  // namespace hearth::train
