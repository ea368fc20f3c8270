#include "convert/tensor_mix.h"

#include "quant/codec.h"

namespace hearth::convert {

using quant::GgmlType;

namespace {

// What llama.cpp's rules look at, for the whole file.
struct MixContext {
  QuantType type;
  GgmlType base;
  bool tied_head;  // no output.weight: token_embd doubles as the head
  int n_layer;
  bool is_70b;  // llama.cpp's LLM_TYPE_70B for these architectures (attn_v gets Q5_K instead of Q4_K)
};

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// tensor_allows_quantization for these families: matrices whose name ends in "weight", norms excepted.
bool quantizable(const model::GgufTensorName& t) {
  return t.shape.size() >= 2 && ends_with(t.gguf, "weight") && !ends_with(t.gguf, "_norm.weight");
}

bool use_more_bits(int i_layer, int n_layers) {
  return i_layer < n_layers / 8 || i_layer >= 7 * n_layers / 8 || (i_layer - n_layers / 8) % 3 == 2;
}

// llama_tensor_get_type_impl, reduced to the file types hearth writes (no IQ/Q2/Q3/Q5 mixes, no experts).
GgmlType mix_type(const MixContext& m, const model::GgufTensorName& t) {
  const int64_t row = t.shape.back();
  GgmlType type = m.base;
  const bool is_head = t.gguf == "output.weight" || (m.tied_head && t.gguf == "token_embd.weight");
  if (is_head) {
    if (row % quant::ggml_type_block_size(type) != 0) return GgmlType::kQ8_0;
    return type == GgmlType::kQ8_0 ? type : GgmlType::kQ6_K;
  }
  if (t.gguf.find("attn_v.weight") != std::string::npos) {
    // One attn_v per layer, visited in layer order: llama.cpp's i_attention_wv is the layer index.
    if (m.type == QuantType::kQ4_K_M && use_more_bits(t.layer, m.n_layer)) type = GgmlType::kQ6_K;
    if (m.is_70b && (type == GgmlType::kQ3_K || type == GgmlType::kQ4_K)) type = GgmlType::kQ5_K;
    return type;
  }
  if (t.gguf.find("ffn_down") != std::string::npos) {
    if (m.type == QuantType::kQ4_K_M && use_more_bits(t.layer, m.n_layer)) type = GgmlType::kQ6_K;
    return type;
  }
  return type;
}

// tensor_type_fallback: a type whose block does not divide the row length is replaced.
GgmlType fallback_type(GgmlType wanted, int64_t row) {
  GgmlType type = GgmlType::kF16;
  switch (wanted) {
    case GgmlType::kQ4_K: type = GgmlType::kQ5_0; break;
    case GgmlType::kQ6_K: type = GgmlType::kQ8_0; break;
    default: break;  // Q8_0, Q4_0: llama.cpp refuses; Q5_K -> Q5_1: not encoded by hearth. F16 either way.
  }
  if (row % quant::ggml_type_block_size(type) != 0 || !quant::can_quantize(type)) type = GgmlType::kF16;
  return type;
}

}  // namespace

std::vector<PlannedTensor> gguf_model_plan(const model::ModelConfig& config, QuantType type) {
  const std::string arch = model::gguf_arch(config);
  const QuantTypeInfo& info = quant_type_info(type);
  const bool gqa = config.num_attention_heads != config.num_key_value_heads;
  MixContext m{type, info.base, config.tie_word_embeddings, static_cast<int>(config.num_hidden_layers),
               config.num_hidden_layers == 80 && ((arch == "llama" && gqa) || arch == "qwen2")};
  std::vector<PlannedTensor> plan;
  for (auto& name : model::gguf_tensor_names(config)) {
    PlannedTensor p{std::move(name), GgmlType::kF32, std::nullopt};
    if (quantizable(p.name)) {
      if (!quant::ggml_type_is_quantized(info.base)) {
        p.type = info.base;  // f32, f16, bf16: no mix (llama.cpp applies it to quantized types only)
      } else {
        const GgmlType wanted = mix_type(m, p.name);
        const int64_t row = p.name.shape.back();
        p.type = row % quant::ggml_type_block_size(wanted) == 0 ? wanted : fallback_type(wanted, row);
        if (p.type != wanted) p.wanted = wanted;
      }
    }
    plan.push_back(std::move(p));
  }
  return plan;
}

}  // namespace hearth::convert
