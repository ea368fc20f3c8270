#include "model/llama.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/error.h"
#include "model/attention.h"
#include "model/grad_checkpoint.h"
#include "model/head_loss.h"
#include "model/rope.h"

namespace hearth::model {

LlamaModel::LlamaModel(const ModelConfig& c, const TensorMap& tensors, const LoadOptions& options,
                       const std::string& origin, const BlockMap* blocks)
    : CausalLM(c, options, origin) {
  WeightSource w(tensors, options, origin, blocks);
  embed_ = w.matrix("model.embed_tokens.weight", c.vocab_size, c.hidden_size, !c.tie_word_embeddings);
  norm_ = w.take("model.norm.weight", {c.hidden_size});
  lm_head_ = c.tie_word_embeddings ? embed_ : w.matrix("lm_head.weight", c.vocab_size, c.hidden_size);
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = fmt::format("model.layers.{}.", l);
    layers_.push_back({w.take(p + "input_layernorm.weight", {c.hidden_size}), w.attention(p + "self_attn.", c),
                       w.take(p + "post_attention_layernorm.weight", {c.hidden_size}), w.mlp(p + "mlp.", c)});
  }
  inv_freq_ = rope_inv_freq(c).to(options.device);
}

std::vector<const Linear*> LlamaModel::linears() const {
  std::vector<const Linear*> out;
  for (const auto& L : layers_)
    for (const Linear* lin : {&L.attn.qkv, &L.attn.o, &L.mlp.gate_up, &L.mlp.down}) out.push_back(lin);
  out.push_back(&lm_head_);
  return out;
}

size_t LlamaModel::weight_bytes() const {
  size_t n = norm_.nbytes();
  for (const Linear* lin : linears()) n += lin->bytes();
  for (const auto& L : layers_)
    for (const auto* t : {&L.attn_norm, &L.attn.q_norm, &L.attn.k_norm, &L.mlp_norm})
      if (t->defined()) n += t->nbytes();
  return n;
}

torch::Tensor LlamaModel::layer_forward(int64_t l, const torch::Tensor& x, const AttentionInputs& in,
                                        const ForwardOptions& o) const {
  const LlamaLayer& L = layers_[l];
  const double eps = config_.rms_norm_eps;
  const LoraCall lora{&o.adapters, l, o.training};
  auto out = x + self_attention(rms_norm(x, L.attn_norm, eps), L.attn, config_, in, lora);
  return out + swiglu_mlp(rms_norm(out, L.mlp_norm, eps), L.mlp, lora);
}

torch::Tensor LlamaModel::forward(const torch::Tensor& tokens_in, const torch::Tensor& positions_in,
                                  const torch::Tensor& valid_in, KvCache* cache, const ForwardOptions& o) const {
  const auto dev = options_.device;
  auto tokens = tokens_in.to(dev);
  auto positions = positions_in.to(dev);
  const int64_t B = tokens.size(0), T = tokens.size(1);
  if (cache && o.cache_rows.empty() && cache->batch() < B)
    throw Error(fmt::format("forward: batch of {} rows but the cache has {}", B, cache->batch()));
  if (!o.cache_rows.empty() && (!cache || static_cast<int64_t>(o.cache_rows.size()) != B))
    throw Error(fmt::format("forward: {} cache rows for a batch of {} rows{}", o.cache_rows.size(), B,
                            cache ? "" : " and no cache"));
  if (o.targets.defined() && (o.last_only || o.hidden_states || o.targets.sizes() != tokens.sizes()))
    throw Error(fmt::format("forward: targets [{}] for tokens [{}]{}", fmt::join(o.targets.sizes().vec(), ", "),
                            fmt::join(tokens.sizes().vec(), ", "),
                            o.last_only || o.hidden_states ? " with last_only or hidden_states" : ""));
  if (o.adapters.size() > 1 && static_cast<int64_t>(o.adapters.size()) != B)
    throw Error(fmt::format("forward: {} adapters for a batch of {} rows", o.adapters.size(), B));
  torch::Tensor valid = valid_in.defined() ? valid_in.to(dev)
                                           : torch::ones({B, T}, tokens.options().dtype(torch::kBool));
  AttentionInputs in;
  in.cache = cache;
  in.cache_rows = o.cache_rows;
  if (cache) {
    in.slots = cache->append(valid, o.cache_rows);
    in.n_keys = in.slots.max().item<int64_t>() + 1;
  } else {
    in.slots = torch::arange(T, tokens.options()).unsqueeze(0).expand({B, T});
    in.n_keys = T;
  }
  // No mask when every query may see every key: one token, no padding, no window, no stale cache slots.
  const bool need_mask = T > 1 || valid_in.defined() || config_.sliding_window.has_value() ||
                         (cache && cache->valid(in.n_keys, B, o.cache_rows).logical_not().any().item<bool>());
  if (need_mask)
    in.mask = attention_mask(in.slots, cache ? cache->valid(in.n_keys, B, o.cache_rows) : valid, in.n_keys,
                             config_.sliding_window);
  // Plain causal for every real token: no cache, no window, and each row's padding after its tokens. Asked only
  // where a fused kernel can use it (valid_in is on the CPU in training: no wait for the device).
  if (!cache && !config_.sliding_window && dev.is_cuda() && fused_attention_available()) {
    const auto v = valid_in.defined() ? valid_in.to(torch::kCPU) : valid_in;
    in.causal = !v.defined() || T < 2 ||
                !v.narrow(1, 1, T - 1).logical_and(v.narrow(1, 0, T - 1).logical_not()).any().item<bool>();
  }
  std::tie(in.cos, in.sin) = rope_cos_sin(inv_freq_, positions, options_.dtype);
  auto x = embed_.rows(tokens, options_.dtype);  // [B, T, C]
  const bool recompute = o.checkpoint_layers && !cache && torch::GradMode::is_enabled();
  for (int64_t l = 0; l < config_.num_hidden_layers; ++l) {
    if (recompute)  // the layer function owns copies of what it reads: it runs again in backward
      x = checkpointed(x, lora_trainable(o.adapters, l),
                       [this, l, in, o](const torch::Tensor& xin) { return layer_forward(l, xin, in, o); });
    else x = layer_forward(l, x, in, o);
  }
  if (o.last_only) {
    // each row's last valid token: index = count(valid) - 1
    auto last = (valid.sum(1) - 1).clamp_min(0).view({B, 1, 1}).expand({B, 1, x.size(2)});
    x = x.gather(1, last);
  }
  x = rms_norm(x, norm_, config_.rms_norm_eps);
  if (o.hidden_states) return x.to(torch::kFloat32);  // [B, T, C]
  // [B·T, C] against [B·T] -> []
  if (o.targets.defined())
    return head_cross_entropy(lm_head_, x.reshape({B * T, x.size(2)}), o.targets.to(dev).reshape({B * T}));
  return lm_head_.forward(x).to(torch::kFloat32);  // [B, T, V]
}

}  // namespace hearth::model
