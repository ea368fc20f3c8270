#include "model/layers.h"

#include <fmt/format.h>

#include "core/error.h"
#include "model/attention.h"
#include "model/causal_lm.h"
#include "model/rope.h"

namespace hearth::model {
namespace {

torch::Tensor cat_optional(const std::vector<torch::Tensor>& parts) {
  for (const auto& p : parts)
    if (!p.defined()) return {};
  return torch::cat(parts, 0);
}

}  // namespace

torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps) {
  auto xf = x.to(torch::kFloat32);
  auto normed = xf * torch::rsqrt(xf.pow(2).mean(-1, /*keepdim=*/true) + eps);
  return weight * normed.to(x.scalar_type());
}

torch::Tensor self_attention(const torch::Tensor& h, const AttentionWeights& w, const ModelConfig& c,
                             const AttentionInputs& in, const LoraCall& lora) {
  const int64_t B = h.size(0), T = h.size(1), hd = c.head_dim;
  const int64_t H = c.num_attention_heads, KV = c.num_key_value_heads;
  auto qkv = w.qkv.forward(h, lora);  // [B, T, (H + 2·KV)·hd]
  auto q = qkv.narrow(-1, 0, H * hd).view({B, T, H, hd});
  auto k = qkv.narrow(-1, H * hd, KV * hd).view({B, T, KV, hd});
  auto v = qkv.narrow(-1, (H + KV) * hd, KV * hd).view({B, T, KV, hd});
  if (w.q_norm.defined()) {
    q = rms_norm(q, w.q_norm, c.rms_norm_eps);
    k = rms_norm(k, w.k_norm, c.rms_norm_eps);
  }
  q = rope_apply(q.transpose(1, 2), in.cos, in.sin);  // [B, H, T, hd]
  k = rope_apply(k.transpose(1, 2), in.cos, in.sin);  // [B, KV, T, hd]
  v = v.transpose(1, 2);                              // [B, KV, T, hd]
  torch::Tensor keys = k, values = v;
  if (in.cache) {
    in.cache->write(lora.layer, in.slots, k, v);
    std::tie(keys, values) = in.cache->read(lora.layer, in.n_keys, B);  // [B, KV, S, hd]
  }
  auto attn = attention(q, keys, values, in.mask);  // [B, T, H·hd]
  return w.o.forward(attn, lora);
}

torch::Tensor swiglu_mlp(const torch::Tensor& h, const MlpWeights& w, const LoraCall& lora) {
  const int64_t F = w.down.in_features();
  auto gate_up = w.gate_up.forward(h, lora);  // [B, T, 2·F]
  auto act = torch::silu(gate_up.narrow(-1, 0, F)) * gate_up.narrow(-1, F, F);
  return w.down.forward(act, lora);
}

WeightSource::WeightSource(const std::map<std::string, torch::Tensor>& tensors, const LoadOptions& options,
                           std::string origin)
    : tensors_(tensors), options_(options), origin_(std::move(origin)) {}

torch::Tensor WeightSource::take(const std::string& name, const std::vector<int64_t>& shape) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) throw FormatError(fmt::format("{}: missing tensor '{}'", origin_, name));
  if (it->second.sizes().vec() != shape)
    throw FormatError(fmt::format("{}: tensor '{}' has shape [{}]; expected [{}] from config.json", origin_, name,
                                  fmt::join(it->second.sizes().vec(), ", "), fmt::join(shape, ", ")));
  return it->second.to(options_.device, options_.dtype);
}

torch::Tensor WeightSource::take_optional(const std::string& name, const std::vector<int64_t>& shape,
                                          bool wanted) const {
  return wanted ? take(name, shape) : torch::Tensor();
}

AttentionWeights WeightSource::attention(const std::string& p, const ModelConfig& c) const {
  const int64_t C = c.hidden_size, hd = c.head_dim;
  const int64_t q_dim = c.num_attention_heads * hd, kv_dim = c.num_key_value_heads * hd;
  AttentionWeights w;
  auto wqkv = torch::cat({take(p + "q_proj.weight", {q_dim, C}), take(p + "k_proj.weight", {kv_dim, C}),
                          take(p + "v_proj.weight", {kv_dim, C})},
                         0);
  auto bqkv = cat_optional({take_optional(p + "q_proj.bias", {q_dim}, c.qkv_bias),
                            take_optional(p + "k_proj.bias", {kv_dim}, c.qkv_bias),
                            take_optional(p + "v_proj.bias", {kv_dim}, c.qkv_bias)});
  w.qkv = Linear(wqkv, bqkv, {{LoraTarget::kQ, q_dim}, {LoraTarget::kK, kv_dim}, {LoraTarget::kV, kv_dim}});
  w.o = Linear(take(p + "o_proj.weight", {C, q_dim}), take_optional(p + "o_proj.bias", {C}, c.o_bias),
               {{LoraTarget::kO, C}});
  w.q_norm = take_optional(p + "q_norm.weight", {hd}, c.qk_norm);
  w.k_norm = take_optional(p + "k_norm.weight", {hd}, c.qk_norm);
  return w;
}

MlpWeights WeightSource::mlp(const std::string& p, const ModelConfig& c) const {
  const int64_t C = c.hidden_size, F = c.intermediate_size;
  MlpWeights w;
  auto w_gate_up = torch::cat({take(p + "gate_proj.weight", {F, C}), take(p + "up_proj.weight", {F, C})}, 0);
  auto b_gate_up = cat_optional(
      {take_optional(p + "gate_proj.bias", {F}, c.mlp_bias), take_optional(p + "up_proj.bias", {F}, c.mlp_bias)});
  w.gate_up = Linear(w_gate_up, b_gate_up, {{LoraTarget::kGate, F}, {LoraTarget::kUp, F}});
  w.down = Linear(take(p + "down_proj.weight", {C, F}), take_optional(p + "down_proj.bias", {C}, c.mlp_bias),
                  {{LoraTarget::kDown, C}});
  return w;
}

}  // namespace hearth::model
