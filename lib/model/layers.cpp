#include "model/layers.h"

#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/error.h"
#include "io/mapped_file.h"
#include "model/attention.h"
#include "model/block_decode.h"
#include "model/causal_lm.h"
#include "model/cpu_ops.h"
#include "model/rope.h"
#include "quant/codec.h"

namespace hearth::model {
namespace {

torch::Tensor cat_optional(const std::vector<torch::Tensor>& parts) {
  for (const auto& p : parts)
    if (!p.defined()) return {};
  return torch::cat(parts, 0);
}

}  // namespace

torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps) {
  if (cpu_ops_apply({&x, &weight}) && weight.numel() == x.size(-1)) return rms_norm_rows(x, weight, eps);
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
    in.cache->write(lora.layer, in.slots, k, v, in.cache_rows);
    std::tie(keys, values) = in.cache->read(lora.layer, in.n_keys, B, in.cache_rows);  // [B, KV, S, hd]
  }
  auto attn = attention(q, keys, values, in.mask, in.causal);  // [B, T, H·hd]
  return w.o.forward(attn, lora);
}

torch::Tensor swiglu_mlp(const torch::Tensor& h, const MlpWeights& w, const LoraCall& lora) {
  const int64_t F = w.down.in_features();
  auto gate_up = w.gate_up.forward(h, lora);  // [B, T, 2·F]
  auto act = cpu_ops_apply({&gate_up}) ? swiglu_rows(gate_up)
                                       : torch::silu(gate_up.narrow(-1, 0, F)) * gate_up.narrow(-1, F, F);
  return w.down.forward(act, lora);
}

WeightSource::WeightSource(const std::map<std::string, torch::Tensor>& tensors, const LoadOptions& options,
                           std::string origin, const BlockMap* blocks)
    : blocks_(blocks), tensors_(tensors), options_(options), origin_(std::move(origin)) {}

std::optional<std::vector<Linear::Blocks>> WeightSource::placed(const std::vector<std::string>& names,
                                                                bool lookup_only) const {
  std::vector<Linear::Blocks> out;
  for (const auto& n : names) {
    const Linear::Blocks& b = blocks_->at(n);
    if (!options_.device.is_cpu() && !(options_.blocks_on_device && blocks_decodable(b.type))) return std::nullopt;
    if (!options_.device.is_cpu()) out.push_back(b.to_device(options_.device));
    else out.push_back(options_.copy_blocks && !lookup_only ? b.copied_for_kernels() : b);
  }
  return out;
}

// A block matrix decoded to a dense weight in the compute dtype and device.
torch::Tensor WeightSource::decoded(const std::string& name) const {
  const Linear::Blocks& b = blocks_->at(name);
  auto w = torch::empty({b.rows, b.in}, torch::kFloat32);
  quant::dequantize(b.type, b.data, w.data_ptr<float>(), b.rows * b.in);
  return w.to(options_.device, options_.dtype);
}

Linear WeightSource::linear(const std::vector<std::string>& names, int64_t in, std::vector<Linear::Part> parts,
                            torch::Tensor bias) const {
  const bool all_blocks = blocks_ && std::all_of(names.begin(), names.end(),
                                                 [&](const std::string& n) { return blocks_->count(n) > 0; });
  if (all_blocks) {
    for (size_t i = 0; i < names.size(); ++i) {
      const Linear::Blocks& w = blocks_->at(names[i]);
      if (w.rows != parts[i].size || w.in != in)
        throw FormatError(fmt::format("{}: tensor '{}' has shape [{}, {}]; expected [{}, {}] from the config", origin_,
                                      names[i], w.rows, w.in, parts[i].size, in));
    }
    if (auto b = placed(names)) return Linear(std::move(*b), std::move(bias), std::move(parts));
  }
  std::vector<torch::Tensor> dense;
  for (size_t i = 0; i < names.size(); ++i)
    dense.push_back(blocks_ && blocks_->count(names[i]) ? decoded(names[i]) : take(names[i], {parts[i].size, in}));
  if (dense.size() == 1) return Linear(dense[0], std::move(bias), std::move(parts));
  auto fused = torch::cat(dense, 0);
  // The parts were read once, into the fused copy: their pages of a memory-mapped file leave the resident set
  // (else a Llama's q/k/v and gate/up weights count twice in RSS).
  for (const auto& d : dense)
    if (d.device().is_cpu()) io::mapped_release(d.data_ptr(), d.nbytes());
  return Linear(fused, std::move(bias), std::move(parts));
}

torch::Tensor WeightSource::take(const std::string& name, const std::vector<int64_t>& shape) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) throw FormatError(fmt::format("{}: missing tensor '{}'", origin_, name));
  if (it->second.sizes().vec() != shape)
    throw FormatError(fmt::format("{}: tensor '{}' has shape [{}]; expected [{}] from config.json", origin_, name,
                                  fmt::join(it->second.sizes().vec(), ", "), fmt::join(shape, ", ")));
  // Integer weights (an I8/U8/I32 tensor: a quantization format hearth does not read from safetensors) would be
  // cast to float value by value — a model of garbage. Refuse them by name.
  if (!it->second.is_floating_point())
    throw FormatError(fmt::format("{}: tensor '{}' has dtype {}; expected a float type (F32, F16, BF16)", origin_, name,
                                  c10::toString(it->second.scalar_type())));
  return it->second.to(options_.device, options_.dtype);
}

torch::Tensor WeightSource::take_optional(const std::string& name, const std::vector<int64_t>& shape,
                                          bool wanted) const {
  return wanted ? take(name, shape) : torch::Tensor();
}

Linear WeightSource::matrix(const std::string& name, int64_t rows, int64_t in, bool lookup_only) const {
  if (blocks_ && blocks_->count(name)) {
    const Linear::Blocks& w = blocks_->at(name);
    if (w.rows != rows || w.in != in)
      throw FormatError(fmt::format("{}: tensor '{}' has shape [{}, {}]; expected [{}, {}] from the config", origin_,
                                    name, w.rows, w.in, rows, in));
    if (auto b = placed({name}, lookup_only)) return Linear(std::move(*b), {});
    return Linear(decoded(name), {});
  }
  return Linear(take(name, {rows, in}), {});
}

AttentionWeights WeightSource::attention(const std::string& p, const ModelConfig& c) const {
  const int64_t C = c.hidden_size, hd = c.head_dim;
  const int64_t q_dim = c.num_attention_heads * hd, kv_dim = c.num_key_value_heads * hd;
  AttentionWeights w;
  auto bqkv = cat_optional({take_optional(p + "q_proj.bias", {q_dim}, c.qkv_bias),
                            take_optional(p + "k_proj.bias", {kv_dim}, c.qkv_bias),
                            take_optional(p + "v_proj.bias", {kv_dim}, c.qkv_bias)});
  w.qkv = linear({p + "q_proj.weight", p + "k_proj.weight", p + "v_proj.weight"}, C,
                 {{LoraTarget::kQ, q_dim}, {LoraTarget::kK, kv_dim}, {LoraTarget::kV, kv_dim}}, bqkv);
  w.o = linear({p + "o_proj.weight"}, q_dim, {{LoraTarget::kO, C}}, take_optional(p + "o_proj.bias", {C}, c.o_bias));
  w.q_norm = take_optional(p + "q_norm.weight", {hd}, c.qk_norm);
  w.k_norm = take_optional(p + "k_norm.weight", {hd}, c.qk_norm);
  return w;
}

MlpWeights WeightSource::mlp(const std::string& p, const ModelConfig& c) const {
  const int64_t C = c.hidden_size, F = c.intermediate_size;
  MlpWeights w;
  auto b_gate_up = cat_optional(
      {take_optional(p + "gate_proj.bias", {F}, c.mlp_bias), take_optional(p + "up_proj.bias", {F}, c.mlp_bias)});
  w.gate_up = linear({p + "gate_proj.weight", p + "up_proj.weight"}, C, {{LoraTarget::kGate, F}, {LoraTarget::kUp, F}},
                     b_gate_up);
  w.down = linear({p + "down_proj.weight"}, F, {{LoraTarget::kDown, C}},
                  take_optional(p + "down_proj.bias", {C}, c.mlp_bias));
  return w;
}

}  // namespace hearth::model
