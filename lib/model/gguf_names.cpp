#include "model/gguf_names.h"

#include <algorithm>

#include <fmt/format.h>

#include "core/error.h"

namespace hearth::model {

std::string gguf_arch(const ModelConfig& c) {
  if (c.model_type == "llama" || c.model_type == "mistral") return "llama";
  if (c.model_type == "qwen2" || c.model_type == "qwen3") return c.model_type;
  throw FormatError(
      fmt::format("model_type '{}' has no GGUF architecture in hearth; expected llama, mistral, qwen2 "
                  "or qwen3",
                  c.model_type));
}

bool gguf_arch_interleaves_qk(const std::string& arch) { return arch == "llama"; }

std::vector<GgufTensorName> gguf_tensor_names(const ModelConfig& c) {
  const std::string arch = gguf_arch(c);
  const bool interleave = gguf_arch_interleaves_qk(arch);
  const int64_t C = c.hidden_size, F = c.intermediate_size, V = c.vocab_size, hd = c.head_dim;
  const int64_t H = c.num_attention_heads, KV = c.num_key_value_heads;
  std::vector<GgufTensorName> out;
  auto add = [&](std::string gguf, std::string hf, std::vector<int64_t> shape, int layer, int64_t qk_heads = 0) {
    out.push_back({std::move(gguf), std::move(hf), std::move(shape), interleave ? qk_heads : 0, layer});
  };
  add("token_embd.weight", "model.embed_tokens.weight", {V, C}, -1);
  add("output_norm.weight", "model.norm.weight", {C}, -1);
  if (!c.tie_word_embeddings) add("output.weight", "lm_head.weight", {V, C}, -1);
  if (c.rope_scaling.rope_type == "llama3") add("rope_freqs.weight", "", {hd / 2}, -1);
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    const std::string g = fmt::format("blk.{}.", l), h = fmt::format("model.layers.{}.", l);
    add(g + "attn_norm.weight", h + "input_layernorm.weight", {C}, l);
    add(g + "ffn_norm.weight", h + "post_attention_layernorm.weight", {C}, l);
    add(g + "attn_q.weight", h + "self_attn.q_proj.weight", {H * hd, C}, l, H);
    add(g + "attn_k.weight", h + "self_attn.k_proj.weight", {KV * hd, C}, l, KV);
    add(g + "attn_v.weight", h + "self_attn.v_proj.weight", {KV * hd, C}, l);
    add(g + "attn_output.weight", h + "self_attn.o_proj.weight", {C, H * hd}, l);
    if (c.qkv_bias) {
      add(g + "attn_q.bias", h + "self_attn.q_proj.bias", {H * hd}, l, H);
      add(g + "attn_k.bias", h + "self_attn.k_proj.bias", {KV * hd}, l, KV);
      add(g + "attn_v.bias", h + "self_attn.v_proj.bias", {KV * hd}, l);
    }
    if (c.o_bias) add(g + "attn_output.bias", h + "self_attn.o_proj.bias", {C}, l);
    if (c.qk_norm) {
      add(g + "attn_q_norm.weight", h + "self_attn.q_norm.weight", {hd}, l);
      add(g + "attn_k_norm.weight", h + "self_attn.k_norm.weight", {hd}, l);
    }
    add(g + "ffn_gate.weight", h + "mlp.gate_proj.weight", {F, C}, l);
    add(g + "ffn_up.weight", h + "mlp.up_proj.weight", {F, C}, l);
    add(g + "ffn_down.weight", h + "mlp.down_proj.weight", {C, F}, l);
    if (c.mlp_bias) {
      add(g + "ffn_gate.bias", h + "mlp.gate_proj.bias", {F}, l);
      add(g + "ffn_up.bias", h + "mlp.up_proj.bias", {F}, l);
      add(g + "ffn_down.bias", h + "mlp.down_proj.bias", {C}, l);
    }
  }
  // llama.cpp's weight_name_comparer: by block (-1 first), then by name (byte order).
  std::stable_sort(out.begin(), out.end(), [](const GgufTensorName& a, const GgufTensorName& b) {
    return a.layer != b.layer ? a.layer < b.layer : a.gguf < b.gguf;
  });
  return out;
}

namespace {

// w viewed as [heads, 2, hd/2, C] (HF: half i, index j) <-> [heads, hd/2, 2, C] (GGUF: row 2j+i).
torch::Tensor swap_halves(const torch::Tensor& w, int64_t heads, bool to_gguf) {
  const int64_t rows = w.size(0);
  const int64_t C = w.dim() == 2 ? w.size(1) : 1;
  if (heads <= 0 || rows % (2 * heads) != 0)
    throw Error(fmt::format("qk rows: {} rows do not split into {} heads of an even size", rows, heads));
  const int64_t half = rows / heads / 2;
  auto v = to_gguf ? w.reshape({heads, 2, half, C}) : w.reshape({heads, half, 2, C});
  return v.transpose(1, 2).reshape(w.sizes()).contiguous();
}

}  // namespace

torch::Tensor qk_rows_to_gguf(const torch::Tensor& w, int64_t heads) { return swap_halves(w, heads, true); }
torch::Tensor qk_rows_to_hf(const torch::Tensor& w, int64_t heads) { return swap_halves(w, heads, false); }

}  // namespace hearth::model
