#include "model/attention.h"

#include <cmath>
#include <limits>

namespace hearth::model {

torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        const torch::Tensor& mask) {
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), hd = q.size(3);
  const int64_t KV = k.size(1), S = k.size(2), G = H / KV;
  auto qg = q.reshape({B, KV, G * T, hd});                                               // heads kv·G + g
  auto scores = torch::matmul(qg, k.transpose(-2, -1)) * (1.0 / std::sqrt(double(hd)));  // [B, KV, G·T, S]
  scores = scores.view({B, KV, G, T, S});
  if (mask.defined())
    scores = scores.masked_fill(mask.view({B, 1, 1, T, S}).logical_not(), -std::numeric_limits<float>::infinity());
  auto probs = torch::softmax(scores, -1, torch::kFloat32).to(v.scalar_type());
  auto out = torch::matmul(probs.view({B, KV, G * T, S}), v);  // [B, KV, G·T, hd]
  return out.view({B, H, T, hd}).transpose(1, 2).reshape({B, T, H * hd});
}

torch::Tensor attention_mask(const torch::Tensor& q_slot, const torch::Tensor& key_valid, int64_t n_keys,
                             std::optional<int64_t> window) {
  auto key_slot =
      torch::arange(n_keys, torch::TensorOptions().dtype(torch::kInt64).device(q_slot.device())).view({1, 1, -1});
  auto qs = q_slot.unsqueeze(-1);  // [B, T, 1]
  auto allowed = key_slot <= qs;   // causal by slot
  if (key_valid.defined()) allowed = allowed.logical_and(key_valid.unsqueeze(1));
  if (window) allowed = allowed.logical_and((qs - key_slot) < *window);
  allowed = allowed.logical_or(key_slot == qs);
  return allowed.unsqueeze(1);  // [B, 1, T, n_keys]
}

}  // namespace hearth::model
