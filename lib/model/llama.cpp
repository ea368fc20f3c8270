#include "model/llama.h"

#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "core/error.h"
#include "model/checkpoint.h"
#include "model/grad_checkpoint.h"
#include "model/rope.h"

namespace hearth::model {
namespace {

using TensorMap = std::map<std::string, torch::Tensor>;

// Fetches `name`, checks its shape, converts it to the compute dtype/device.
class WeightTaker {
 public:
  WeightTaker(const TensorMap& tensors, const LoadOptions& options, std::string origin)
      : tensors_(tensors), options_(options), origin_(std::move(origin)) {}

  torch::Tensor take(const std::string& name, std::vector<int64_t> shape) const {
    auto it = tensors_.find(name);
    if (it == tensors_.end()) throw FormatError(fmt::format("{}: missing tensor '{}'", origin_, name));
    check_shape(name, it->second, shape);
    return it->second.to(options_.device, options_.dtype);
  }
  torch::Tensor take_optional(const std::string& name, std::vector<int64_t> shape, bool wanted) const {
    if (!wanted) return {};
    return take(name, std::move(shape));
  }
  bool has(const std::string& name) const { return tensors_.count(name) > 0; }

 private:
  void check_shape(const std::string& name, const torch::Tensor& t, const std::vector<int64_t>& shape) const {
    if (t.sizes().vec() != shape)
      throw FormatError(fmt::format("{}: tensor '{}' has shape [{}]; expected [{}] from config.json", origin_, name,
                                    fmt::join(t.sizes().vec(), ", "), fmt::join(shape, ", ")));
  }
  const TensorMap& tensors_;
  const LoadOptions& options_;
  std::string origin_;
};

torch::Tensor cat_optional(const std::vector<torch::Tensor>& parts) {
  for (const auto& p : parts)
    if (!p.defined()) return {};
  return torch::cat(parts, 0);
}

LayerWeights layer_take(const ModelConfig& c, const WeightTaker& w, int64_t l) {
  const std::string p = fmt::format("model.layers.{}.", l);
  const int64_t C = c.hidden_size, hd = c.head_dim, F = c.intermediate_size;
  const int64_t q_dim = c.num_attention_heads * hd, kv_dim = c.num_key_value_heads * hd;
  LayerWeights L;
  L.attn_norm = w.take(p + "input_layernorm.weight", {C});
  L.mlp_norm = w.take(p + "post_attention_layernorm.weight", {C});
  L.wqkv = torch::cat({w.take(p + "self_attn.q_proj.weight", {q_dim, C}), w.take(p + "self_attn.k_proj.weight", {kv_dim, C}),
                       w.take(p + "self_attn.v_proj.weight", {kv_dim, C})}, 0);
  L.bqkv = cat_optional({w.take_optional(p + "self_attn.q_proj.bias", {q_dim}, c.qkv_bias),
                         w.take_optional(p + "self_attn.k_proj.bias", {kv_dim}, c.qkv_bias),
                         w.take_optional(p + "self_attn.v_proj.bias", {kv_dim}, c.qkv_bias)});
  L.wo = w.take(p + "self_attn.o_proj.weight", {C, q_dim});
  L.bo = w.take_optional(p + "self_attn.o_proj.bias", {C}, c.o_bias);
  L.q_norm = w.take_optional(p + "self_attn.q_norm.weight", {hd}, c.qk_norm);
  L.k_norm = w.take_optional(p + "self_attn.k_norm.weight", {hd}, c.qk_norm);
  L.w_gate_up = torch::cat({w.take(p + "mlp.gate_proj.weight", {F, C}), w.take(p + "mlp.up_proj.weight", {F, C})}, 0);
  L.b_gate_up = cat_optional({w.take_optional(p + "mlp.gate_proj.bias", {F}, c.mlp_bias),
                              w.take_optional(p + "mlp.up_proj.bias", {F}, c.mlp_bias)});
  L.w_down = w.take(p + "mlp.down_proj.weight", {C, F});
  L.b_down = w.take_optional(p + "mlp.down_proj.bias", {C}, c.mlp_bias);
  return L;
}

// q [B, H, T, hd], k/v [B, KV, S, hd], mask [B, 1, T, S] bool (true = may attend) or undefined
// -> [B, T, H·hd]. Grouped-query attention without materializing repeated K/V heads.
torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        const torch::Tensor& mask) {
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), hd = q.size(3);
  const int64_t KV = k.size(1), S = k.size(2), G = H / KV;
  auto qg = q.reshape({B, KV, G * T, hd});                                        // heads kv·G + g
  auto scores = torch::matmul(qg, k.transpose(-2, -1)) * (1.0 / std::sqrt(double(hd)));  // [B, KV, G·T, S]
  scores = scores.view({B, KV, G, T, S});
  if (mask.defined())
    scores = scores.masked_fill(mask.view({B, 1, 1, T, S}).logical_not(), -std::numeric_limits<float>::infinity());
  auto probs = torch::softmax(scores, -1, torch::kFloat32).to(v.scalar_type());
  auto out = torch::matmul(probs.view({B, KV, G * T, S}), v);  // [B, KV, G·T, hd]
  return out.view({B, H, T, hd}).transpose(1, 2).reshape({B, T, H * hd});
}

// y = x·Wᵀ + b for x [..., in]. A single row (decoding one sequence) goes through matrix-vector BLAS:
// OpenBLAS's sgemm path for one row reads the weights 2-3× slower than its sgemv (bench/README.md).
torch::Tensor project(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
  const int64_t in = x.size(-1);
  if (x.numel() != in || !x.device().is_cpu()) return torch::linear(x, w, b);
  auto y = torch::mv(w, x.reshape({in}));
  if (b.defined()) y = y + b;
  auto shape = x.sizes().vec();
  shape.back() = w.size(0);
  return y.view(shape);
}

}  // namespace

torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps) {
  auto xf = x.to(torch::kFloat32);
  auto normed = xf * torch::rsqrt(xf.pow(2).mean(-1, /*keepdim=*/true) + eps);
  return weight * normed.to(x.scalar_type());
}

LlamaModel LlamaModel::from_tensors(const ModelConfig& c, const TensorMap& tensors, const LoadOptions& options,
                                    const std::string& origin) {
  LlamaModel m;
  m.config_ = c;
  m.options_ = options;
  m.origin_ = origin;
  WeightTaker w(tensors, options, origin);
  m.embed_ = w.take("model.embed_tokens.weight", {c.vocab_size, c.hidden_size});
  m.norm_ = w.take("model.norm.weight", {c.hidden_size});
  if (c.tie_word_embeddings)
    m.lm_head_ = m.embed_;
  else
    m.lm_head_ = w.take("lm_head.weight", {c.vocab_size, c.hidden_size});
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) m.layers_.push_back(layer_take(c, w, l));
  m.inv_freq_ = rope_inv_freq(c).to(options.device);
  return m;
}

LlamaModel LlamaModel::load(const std::filesystem::path& dir, const LoadOptions& options) {
  ModelConfig config = config_load(dir);
  TensorMap tensors = checkpoint_tensors(dir);
  return from_tensors(config, tensors, options, dir.string());
}

TensorMap LlamaModel::random_tensors(const ModelConfig& c, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  auto normal = [&](std::vector<int64_t> shape, double std) {
    return at::normal(0.0, std, shape, gen, torch::TensorOptions().dtype(torch::kFloat32));
  };
  auto near_one = [&](int64_t n) { return 1.0 + normal({n}, 0.1); };
  const int64_t C = c.hidden_size, hd = c.head_dim, F = c.intermediate_size;
  const int64_t q_dim = c.num_attention_heads * hd, kv_dim = c.num_key_value_heads * hd;
  TensorMap t;
  t["model.embed_tokens.weight"] = normal({c.vocab_size, C}, 0.02);
  t["model.norm.weight"] = near_one(C);
  if (!c.tie_word_embeddings) t["lm_head.weight"] = normal({c.vocab_size, C}, 0.02);
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = fmt::format("model.layers.{}.", l);
    t[p + "input_layernorm.weight"] = near_one(C);
    t[p + "post_attention_layernorm.weight"] = near_one(C);
    t[p + "self_attn.q_proj.weight"] = normal({q_dim, C}, 0.02);
    t[p + "self_attn.k_proj.weight"] = normal({kv_dim, C}, 0.02);
    t[p + "self_attn.v_proj.weight"] = normal({kv_dim, C}, 0.02);
    t[p + "self_attn.o_proj.weight"] = normal({C, q_dim}, 0.02);
    if (c.qkv_bias) {
      t[p + "self_attn.q_proj.bias"] = normal({q_dim}, 0.02);
      t[p + "self_attn.k_proj.bias"] = normal({kv_dim}, 0.02);
      t[p + "self_attn.v_proj.bias"] = normal({kv_dim}, 0.02);
    }
    if (c.o_bias) t[p + "self_attn.o_proj.bias"] = normal({C}, 0.02);
    if (c.qk_norm) {
      t[p + "self_attn.q_norm.weight"] = near_one(hd);
      t[p + "self_attn.k_norm.weight"] = near_one(hd);
    }
    t[p + "mlp.gate_proj.weight"] = normal({F, C}, 0.02);
    t[p + "mlp.up_proj.weight"] = normal({F, C}, 0.02);
    t[p + "mlp.down_proj.weight"] = normal({C, F}, 0.02);
    if (c.mlp_bias) {
      t[p + "mlp.gate_proj.bias"] = normal({F}, 0.02);
      t[p + "mlp.up_proj.bias"] = normal({F}, 0.02);
      t[p + "mlp.down_proj.bias"] = normal({C}, 0.02);
    }
  }
  return t;
}

KvCache LlamaModel::cache_new(int64_t batch, int64_t capacity) const {
  return KvCache(config_, batch, capacity, torch::TensorOptions().dtype(options_.dtype).device(options_.device));
}

size_t LlamaModel::weight_bytes() const {
  size_t n = lm_head_.nbytes() + norm_.nbytes();
  for (const auto& L : layers_)
    for (const auto* t : {&L.attn_norm, &L.wqkv, &L.bqkv, &L.wo, &L.bo, &L.q_norm, &L.k_norm, &L.mlp_norm,
                          &L.w_gate_up, &L.b_gate_up, &L.w_down, &L.b_down})
      if (t->defined()) n += t->nbytes();
  return n;
}

// Which keys each query may attend to: [B, 1, T, n_keys] bool, or undefined when all may (one token, no
// padding, no window). Always lets a token see itself, so padded rows stay finite.
torch::Tensor LlamaModel::attention_mask(const torch::Tensor& valid, KvCache* cache, const torch::Tensor& slots,
                                         int64_t n_keys) const {
  auto dev = options_.device;
  torch::Tensor key_valid = cache ? cache->valid(n_keys, slots.size(0)) : valid;  // [B, n_keys]
  torch::Tensor q_slot = slots;                                    // [B, T]
  auto key_slot = torch::arange(n_keys, torch::TensorOptions().dtype(torch::kInt64).device(dev)).view({1, 1, -1});
  auto qs = q_slot.unsqueeze(-1);  // [B, T, 1]
  auto allowed = key_slot <= qs;   // causal by slot
  if (key_valid.defined()) allowed = allowed.logical_and(key_valid.unsqueeze(1));
  if (config_.sliding_window) allowed = allowed.logical_and((qs - key_slot) < *config_.sliding_window);
  allowed = allowed.logical_or(key_slot == qs);
  return allowed.unsqueeze(1);  // [B, 1, T, n_keys]
}

torch::Tensor LlamaModel::layer_forward(int64_t l, const torch::Tensor& x, const torch::Tensor& cos,
                                        const torch::Tensor& sin, const torch::Tensor& mask, KvCache* cache,
                                        const torch::Tensor& slots, int64_t n_keys, const ForwardOptions& o) const {
  const LayerWeights& L = layers_[l];
  const ModelConfig& c = config_;
  const int64_t B = x.size(0), T = x.size(1), hd = c.head_dim;
  const int64_t H = c.num_attention_heads, KV = c.num_key_value_heads;
  // x [B, T, C] -> qkv [B, T, (H + 2KV)·hd]
  auto h = rms_norm(x, L.attn_norm, c.rms_norm_eps);
  auto qkv = project(h, L.wqkv, L.bqkv);
  auto q = qkv.narrow(-1, 0, H * hd);
  auto k = qkv.narrow(-1, H * hd, KV * hd);
  auto v = qkv.narrow(-1, (H + KV) * hd, KV * hd);
  auto with_lora = [&](torch::Tensor y, const torch::Tensor& in, LoraTarget t) {
    if (o.adapters.empty()) return y;
    auto delta = lora_delta(in, o.adapters, l, t, o.training);
    return delta.defined() ? y + delta : y;
  };
  q = with_lora(q, h, LoraTarget::kQ).view({B, T, H, hd});
  k = with_lora(k, h, LoraTarget::kK).view({B, T, KV, hd});
  v = with_lora(v, h, LoraTarget::kV).view({B, T, KV, hd});
  if (c.qk_norm) {
    q = rms_norm(q, L.q_norm, c.rms_norm_eps);
    k = rms_norm(k, L.k_norm, c.rms_norm_eps);
  }
  q = rope_apply(q.transpose(1, 2), cos, sin);  // [B, H, T, hd]
  k = rope_apply(k.transpose(1, 2), cos, sin);  // [B, KV, T, hd]
  v = v.transpose(1, 2);
  torch::Tensor keys = k, values = v;
  if (cache) {
    cache->write(l, slots, k, v);
    std::tie(keys, values) = cache->read(l, n_keys, B);
  }
  auto attn = attention(q, keys, values, mask);  // [B, T, H·hd]
  auto out = x + with_lora(project(attn, L.wo, L.bo), attn, LoraTarget::kO);
  // SwiGLU MLP: down(silu(gate(h)) * up(h))
  auto h2 = rms_norm(out, L.mlp_norm, c.rms_norm_eps);
  auto gate_up = project(h2, L.w_gate_up, L.b_gate_up);
  const int64_t F = c.intermediate_size;
  auto gate = with_lora(gate_up.narrow(-1, 0, F), h2, LoraTarget::kGate);
  auto up = with_lora(gate_up.narrow(-1, F, F), h2, LoraTarget::kUp);
  auto act = torch::silu(gate) * up;
  return out + with_lora(project(act, L.w_down, L.b_down), act, LoraTarget::kDown);
}

torch::Tensor LlamaModel::forward(const torch::Tensor& tokens, const torch::Tensor& positions,
                                  const torch::Tensor& valid, KvCache* cache, bool last_only) const {
  ForwardOptions o;
  o.last_only = last_only;
  return forward(tokens, positions, valid, cache, o);
}

torch::Tensor LlamaModel::forward(const torch::Tensor& tokens_in, const torch::Tensor& positions_in,
                                  const torch::Tensor& valid_in, KvCache* cache, const ForwardOptions& o) const {
  const auto dev = options_.device;
  auto tokens = tokens_in.to(dev);
  auto positions = positions_in.to(dev);
  const int64_t B = tokens.size(0), T = tokens.size(1);
  if (cache && cache->batch() < B)
    throw Error(fmt::format("forward: batch of {} rows but the cache has {}", B, cache->batch()));
  torch::Tensor valid = valid_in.defined() ? valid_in.to(dev) : torch::ones({B, T}, tokens.options().dtype(torch::kBool));
  torch::Tensor slots;
  int64_t n_keys = T;
  if (cache) {
    slots = cache->append(valid);
    n_keys = slots.max().item<int64_t>() + 1;
  } else {
    slots = torch::arange(T, tokens.options()).unsqueeze(0).expand({B, T});
  }
  bool need_mask = T > 1 || valid_in.defined() || config_.sliding_window.has_value() ||
                   (cache && cache->valid(n_keys, B).logical_not().any().item<bool>());
  torch::Tensor mask = need_mask ? attention_mask(cache ? torch::Tensor() : valid, cache, slots, n_keys)
                                 : torch::Tensor();
  auto [cos, sin] = rope_cos_sin(inv_freq_, positions, options_.dtype);
  auto x = torch::embedding(embed_, tokens);  // [B, T, C]
  if (o.adapters.size() > 1 && static_cast<int64_t>(o.adapters.size()) != B)
    throw Error(fmt::format("forward: {} adapters for a batch of {} rows", o.adapters.size(), B));
  const bool recompute = o.checkpoint_layers && !cache && torch::GradMode::is_enabled();
  for (int64_t l = 0; l < config_.num_hidden_layers; ++l)
    x = recompute ? layer_forward_checkpointed(*this, l, x, cos, sin, mask, slots, n_keys, o)
                  : layer_forward(l, x, cos, sin, mask, cache, slots, n_keys, o);
  if (o.last_only) {
    // each row's last valid token: index = count(valid) - 1
    auto last = (valid.sum(1) - 1).clamp_min(0).view({B, 1, 1}).expand({B, 1, x.size(2)});
    x = x.gather(1, last);
  }
  x = rms_norm(x, norm_, config_.rms_norm_eps);
  return project(x, lm_head_, torch::Tensor()).to(torch::kFloat32);  // [B, T, V]
}

torch::ScalarType dtype_parse(const std::string& text, const std::string& option) {
  if (text == "float32" || text == "fp32") return torch::kFloat32;
  if (text == "bfloat16" || text == "bf16") return torch::kBFloat16;
  if (text == "float16" || text == "fp16") return torch::kHalf;
  throw ConfigError(fmt::format("{}: unknown dtype; expected float32 or bfloat16 (float16 on CUDA), got '{}'", option,
                                text));
}

std::string dtype_to_string(torch::ScalarType dtype) {
  switch (dtype) {
    case torch::kFloat32: return "float32";
    case torch::kBFloat16: return "bfloat16";
    case torch::kHalf: return "float16";
    default: return "other";
  }
}

}  // namespace hearth::model
