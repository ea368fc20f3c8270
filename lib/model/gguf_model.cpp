#include "model/gguf_model.h"

#include <algorithm>
#include <cstring>
#include <functional>

#include <fmt/format.h>

#include "core/error.h"
#include "quant/codec.h"

namespace hearth::model {
namespace {

// What differs per GGUF architecture: the model_type it becomes and whether q/k rows are interleaved.
struct ArchMap {
  const char* arch;
  const char* model_type;
  bool qk_interleaved;
};
constexpr ArchMap kArchs[] = {{"llama", "llama", true}, {"qwen2", "qwen2", false}, {"qwen3", "qwen3", false}};

const ArchMap& arch_of(const io::GgufFile& f) {
  const std::string arch = f.get_string("general.architecture");
  for (const auto& a : kArchs)
    if (arch == a.arch) return a;
  throw FormatError(fmt::format("{}: metadata 'general.architecture' is '{}'; expected llama, qwen2 or qwen3",
                                f.path().string(), arch));
}

// GGUF row 2j+i of each head holds HF row i·hd/2 + j: w [n_head·hd, C] -> HF order.
torch::Tensor qk_to_hf(const torch::Tensor& w, int64_t n_head, int64_t hd) {
  const int64_t C = w.size(1);
  return w.reshape({n_head, hd / 2, 2, C}).transpose(1, 2).reshape({n_head * hd, C}).contiguous();
}

// The tensor `name` decoded to float32 in outermost-first shape, checked against `shape`.
torch::Tensor decode(const io::GgufFile& f, const std::string& name, const std::vector<int64_t>& shape) {
  const io::GgufTensor& t = f.tensor(name);
  if (t.shape() != shape)
    throw FormatError(fmt::format("{}: tensor '{}' has shape [{}]; expected [{}] from the metadata", f.path().string(),
                                  name, fmt::join(t.shape(), ", "), fmt::join(shape, ", ")));
  if (!quant::can_dequantize(t.type))
    throw FormatError(
        fmt::format("{}: tensor '{}' has type {}, which hearth cannot decode; expected F32, F16, BF16, "
                    "Q8_0, Q4_0, Q4_K, Q5_K or Q6_K",
                    f.path().string(), name, quant::ggml_type_name(t.type)));
  auto out = torch::empty(shape, torch::kFloat32);
  quant::dequantize(t.type, t.data, out.data_ptr<float>(), t.numel());
  return out;
}

// Linear::Blocks over tensor `name` [rows, in] of `file`, kept alive by the file; with the q/k rows of each
// head reordered to HF order (a copy) when `heads` > 0.
Linear::Blocks blocks_of(const std::shared_ptr<const io::GgufFile>& file, const io::GgufTensor& t, int64_t heads,
                         int64_t hd) {
  Linear::Blocks b;
  b.type = t.type;
  b.rows = t.shape()[0];
  b.in = t.shape()[1];
  b.data = t.data;
  b.owner = file;
  if (heads > 0) {
    const size_t row = b.row_bytes();
    auto buf = std::make_shared<std::vector<uint8_t>>(t.nbytes);
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t j = 0; j < hd / 2; ++j)
        for (int64_t i = 0; i < 2; ++i) {
          const int64_t from = h * hd + 2 * j + i, to = h * hd + i * hd / 2 + j;  // GGUF row -> HF row
          std::memcpy(buf->data() + to * row, t.data + from * row, row);
        }
    b.data = buf->data();
    b.owner = buf;
  }
  return b;
}

}  // namespace

ModelConfig gguf_config(const io::GgufFile& f) {
  const ArchMap& a = arch_of(f);
  const std::string p = std::string(a.arch) + ".";
  const std::string origin = f.path().string();
  if (f.find(p + "rope.scaling.type") && f.get_string(p + "rope.scaling.type") != "none" &&
      f.get_string(p + "rope.scaling.type") != "linear")
    throw FormatError(fmt::format("{}: metadata '{}rope.scaling.type' is '{}'; hearth applies none or linear", origin,
                                  p, f.get_string(p + "rope.scaling.type")));
  if (f.find_tensor("rope_freqs.weight"))
    throw FormatError(
        fmt::format("{}: tensor 'rope_freqs.weight' (llama3-style RoPE scaling) is not supported for "
                    "GGUF models yet; use the Hugging Face folder",
                    origin));
  const auto& embd = f.tensor("token_embd.weight");
  nlohmann::json j = {
      {"model_type", a.model_type},
      {"vocab_size", embd.shape()[0]},
      {"hidden_size", f.get_int(p + "embedding_length")},
      {"intermediate_size", f.get_int(p + "feed_forward_length")},
      {"num_hidden_layers", f.get_int(p + "block_count")},
      {"num_attention_heads", f.get_int(p + "attention.head_count")},
      {"num_key_value_heads", f.find(p + "attention.head_count_kv") ? f.get_int(p + "attention.head_count_kv")
                                                                    : f.get_int(p + "attention.head_count")},
      {"max_position_embeddings", f.get_int(p + "context_length")},
      {"rms_norm_eps", f.get_float(p + "attention.layer_norm_rms_epsilon")},
      {"rope_theta", f.find(p + "rope.freq_base") ? f.get_float(p + "rope.freq_base") : 10000.0},
      {"tie_word_embeddings", f.find_tensor("output.weight") == nullptr},
      {"attention_bias", f.find_tensor("blk.0.attn_output.bias") != nullptr},
      {"mlp_bias", f.find_tensor("blk.0.ffn_down.bias") != nullptr},
  };
  if (f.find(p + "attention.key_length")) j["head_dim"] = f.get_int(p + "attention.key_length");
  if (f.find(p + "rope.scaling.type") && f.get_string(p + "rope.scaling.type") == "linear")
    j["rope_scaling"] = {{"rope_type", "linear"}, {"factor", f.get_float(p + "rope.scaling.factor")}};
  if (f.find(p + "attention.sliding_window")) {
    j["sliding_window"] = f.get_int(p + "attention.sliding_window");
    j["use_sliding_window"] = true;
  }
  if (f.find("tokenizer.ggml.bos_token_id")) j["bos_token_id"] = f.get_int("tokenizer.ggml.bos_token_id");
  // The ids that end generation, as generation_config.json lists them for a folder: EOS, then the end-of-turn and
  // end-of-message tokens llama.cpp also stops at (llama_vocab_is_eog), e.g. <|im_end|> or <|eot_id|> of a chat
  // model whose EOS is another token.
  nlohmann::json eos = nlohmann::json::array();
  for (const char* key :
       {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"}) {
    if (!f.find(key)) continue;
    const int64_t id = f.get_int(key);
    if (std::find(eos.begin(), eos.end(), id) == eos.end()) eos.push_back(id);
  }
  if (!eos.empty()) j["eos_token_id"] = eos;
  return config_parse(j, origin + " (metadata)");
}

namespace {

// The HF-named float32 tensors, except those `skip` names (kept as blocks).
TensorMap tensors_except(const io::GgufFile& f, const ModelConfig& c,
                         const std::function<bool(const std::string&)>& skip) {
  const ArchMap& a = arch_of(f);
  const int64_t C = c.hidden_size, hd = c.head_dim, F = c.intermediate_size;
  const int64_t H = c.num_attention_heads, KV = c.num_key_value_heads;
  TensorMap t;
  if (!skip("model.embed_tokens.weight"))
    t["model.embed_tokens.weight"] = decode(f, "token_embd.weight", {c.vocab_size, C});
  t["model.norm.weight"] = decode(f, "output_norm.weight", {C});
  if (!c.tie_word_embeddings && !skip("lm_head.weight"))
    t["lm_head.weight"] = decode(f, "output.weight", {c.vocab_size, C});
  auto maybe = [&](const std::string& gguf, const std::string& hf, std::vector<int64_t> shape, bool wanted) {
    if (wanted) t[hf] = decode(f, gguf, shape);
  };
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string g = fmt::format("blk.{}.", l), h = fmt::format("model.layers.{}.", l);
    t[h + "input_layernorm.weight"] = decode(f, g + "attn_norm.weight", {C});
    t[h + "post_attention_layernorm.weight"] = decode(f, g + "ffn_norm.weight", {C});
    auto matrix = [&](const std::string& gguf, const std::string& hf, std::vector<int64_t> shape, int64_t heads) {
      if (skip(hf)) return;
      auto m = decode(f, gguf, shape);
      t[hf] = heads > 0 && a.qk_interleaved ? qk_to_hf(m, heads, hd) : m;
    };
    matrix(g + "attn_q.weight", h + "self_attn.q_proj.weight", {H * hd, C}, H);
    matrix(g + "attn_k.weight", h + "self_attn.k_proj.weight", {KV * hd, C}, KV);
    matrix(g + "attn_v.weight", h + "self_attn.v_proj.weight", {KV * hd, C}, 0);
    matrix(g + "attn_output.weight", h + "self_attn.o_proj.weight", {C, H * hd}, 0);
    if (c.qkv_bias) {
      auto qb = decode(f, g + "attn_q.bias", {H * hd}), kb = decode(f, g + "attn_k.bias", {KV * hd});
      t[h + "self_attn.q_proj.bias"] = a.qk_interleaved ? qk_to_hf(qb.unsqueeze(1), H, hd).squeeze(1) : qb;
      t[h + "self_attn.k_proj.bias"] = a.qk_interleaved ? qk_to_hf(kb.unsqueeze(1), KV, hd).squeeze(1) : kb;
      t[h + "self_attn.v_proj.bias"] = decode(f, g + "attn_v.bias", {KV * hd});
    }
    maybe(g + "attn_output.bias", h + "self_attn.o_proj.bias", {C}, c.o_bias);
    maybe(g + "attn_q_norm.weight", h + "self_attn.q_norm.weight", {hd}, c.qk_norm);
    maybe(g + "attn_k_norm.weight", h + "self_attn.k_norm.weight", {hd}, c.qk_norm);
    matrix(g + "ffn_gate.weight", h + "mlp.gate_proj.weight", {F, C}, 0);
    matrix(g + "ffn_up.weight", h + "mlp.up_proj.weight", {F, C}, 0);
    matrix(g + "ffn_down.weight", h + "mlp.down_proj.weight", {C, F}, 0);
    maybe(g + "ffn_gate.bias", h + "mlp.gate_proj.bias", {F}, c.mlp_bias);
    maybe(g + "ffn_up.bias", h + "mlp.up_proj.bias", {F}, c.mlp_bias);
    maybe(g + "ffn_down.bias", h + "mlp.down_proj.bias", {C}, c.mlp_bias);
  }
  return t;
}

}  // namespace

TensorMap gguf_tensors(const io::GgufFile& f, const ModelConfig& c) {
  return tensors_except(f, c, [](const std::string&) { return false; });
}

GgufWeights gguf_weights(const std::shared_ptr<const io::GgufFile>& file, const ModelConfig& c, bool keep_blocks) {
  const ArchMap& a = arch_of(*file);
  GgufWeights w;
  // GGUF name -> HF name of every linear matrix, and the heads to reorder (llama q/k).
  struct Matrix {
    std::string hf;
    int64_t heads;
  };
  std::map<std::string, Matrix> matrices;
  matrices["token_embd.weight"] = {"model.embed_tokens.weight", 0};  // looked up row by row, and the tied head
  if (!c.tie_word_embeddings) matrices["output.weight"] = {"lm_head.weight", 0};
  const char* names[][2] = {{"attn_q", "self_attn.q_proj"}, {"attn_k", "self_attn.k_proj"},
                            {"attn_v", "self_attn.v_proj"}, {"attn_output", "self_attn.o_proj"},
                            {"ffn_gate", "mlp.gate_proj"},  {"ffn_up", "mlp.up_proj"},
                            {"ffn_down", "mlp.down_proj"}};
  for (int64_t l = 0; l < c.num_hidden_layers; ++l)
    for (const auto& n : names) {
      int64_t heads = 0;
      if (a.qk_interleaved && std::strcmp(n[0], "attn_q") == 0) heads = c.num_attention_heads;
      if (a.qk_interleaved && std::strcmp(n[0], "attn_k") == 0) heads = c.num_key_value_heads;
      matrices[fmt::format("blk.{}.{}.weight", l, n[0])] = {fmt::format("model.layers.{}.{}.weight", l, n[1]), heads};
    }
  if (keep_blocks)
    for (const auto& [gguf, m] : matrices) {
      const io::GgufTensor& t = file->tensor(gguf);
      if (!quant::ggml_type_is_quantized(t.type) || !quant::can_dequantize(t.type) || t.dims.size() != 2) continue;
      w.blocks[m.hf] = blocks_of(file, t, m.heads, c.head_dim);
    }
  // Everything else decoded; the matrices kept as blocks are checked against the config by the model.
  w.dense = tensors_except(*file, c, [&](const std::string& hf) { return w.blocks.count(hf) > 0; });
  return w;
}

std::unique_ptr<CausalLM> gguf_model_load(const std::filesystem::path& path, const LoadOptions& options) {
  std::shared_ptr<const io::GgufFile> file = io::GgufFile::open(path);
  ModelConfig config = gguf_config(*file);
  GgufWeights w = gguf_weights(file, config, options.device.is_cpu());
  return causal_lm_from_tensors(config, w.dense, options, path.string(), w.blocks);
}

}  // namespace hearth::model
