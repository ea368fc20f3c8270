#include "model/causal_lm.h"

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>

#include "core/error.h"
#include "model/checkpoint.h"
#include "model/family.h"
#include "model/gguf_model.h"
#include "model/llama.h"

namespace hearth::model {

torch::Tensor CausalLM::forward(const torch::Tensor& tokens, const torch::Tensor& positions, const torch::Tensor& valid,
                                KvCache* cache, bool last_only) const {
  ForwardOptions o;
  o.last_only = last_only;
  return forward(tokens, positions, valid, cache, o);
}

KvCache CausalLM::cache_new(int64_t batch, int64_t capacity) const {
  return KvCache(config_, batch, capacity, torch::TensorOptions().dtype(options_.dtype).device(options_.device));
}

std::unique_ptr<CausalLM> causal_lm_from_tensors(const ModelConfig& config, const TensorMap& tensors,
                                                 const LoadOptions& options, const std::string& origin,
                                                 const std::map<std::string, Linear::Blocks>& blocks) {
  // Every supported model_type (family.h) runs on the Llama decoder; a family with its own forward code
  // gets its own class and a branch here.
  if (!family_find(config.model_type))
    throw FormatError(fmt::format("{}: model_type '{}' is not supported", origin, config.model_type));
  if (options.dtype == torch::kHalf && options.device.is_cpu())
    throw ConfigError(
        fmt::format("{}: dtype float16 is not supported on the CPU (libtorch has no CPU float16 "
                    "matmul); expected float32 or bfloat16, or float16 with --device cuda",
                    origin));
  return std::make_unique<LlamaModel>(config, tensors, options, origin, blocks.empty() ? nullptr : &blocks);
}

std::unique_ptr<CausalLM> causal_lm_load(const std::filesystem::path& dir, const LoadOptions& options) {
  std::unique_ptr<CausalLM> model;
  if (dir.extension() == ".gguf" && !std::filesystem::is_directory(dir)) {
    model = gguf_model_load(dir, options);
  } else {
    ModelConfig config = config_load(dir);
    TensorMap tensors = checkpoint_tensors(dir);
    model = causal_lm_from_tensors(config, tensors, options, dir.string());
  }
  // Every step reads every matrix: the ones read in place from the file are mapped in now, in one call each, not
  // page by page during the first forward pass (a SmolLM2-135M float32 GGUF's first 4-token prompt took 0.37 s, of
  // which ~0.3 s were its 130,000 page faults).
  for (const Linear* lin : model->linears()) lin->mapped_populate();
  return model;
}

TensorMap causal_lm_random_tensors(const ModelConfig& c, uint64_t seed) {
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

torch::ScalarType dtype_parse(const std::string& text, const std::string& option) {
  if (text == "float32" || text == "fp32") return torch::kFloat32;
  if (text == "bfloat16" || text == "bf16") return torch::kBFloat16;
  if (text == "float16" || text == "fp16") return torch::kHalf;
  throw ConfigError(
      fmt::format("{}: unknown dtype; expected float32 or bfloat16 (float16 on CUDA), got '{}'", option, text));
}

}  // namespace hearth::model
