#include "model/gguf_model.h"

#include <malloc.h>

#include <algorithm>
#include <functional>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/error.h"
#include "io/mapped_file.h"
#include "model/gguf_names.h"
#include "quant/codec.h"

namespace hearth::model {
namespace {

// The model_type a GGUF architecture becomes (the inverse of gguf_arch: Mistral and SmolLM are `llama`).
std::string model_type_of(const io::GgufFile& f) {
  const std::string arch = f.get_string("general.architecture");
  if (arch == "llama" || arch == "qwen2" || arch == "qwen3") return arch;
  throw FormatError(fmt::format("{}: metadata 'general.architecture' is '{}'; expected llama, qwen2 or qwen3",
                                f.path().string(), arch));
}

// Linear::Blocks over tensor `t` [rows, in] of `file`, kept alive by its mapping (not the GgufFile, whose metadata,
// ~20 MB of strings for a 128k vocabulary, the model does not need once loaded); with the q/k rows of `heads`
// heads put back in HF order (a copy: a row of blocks moves as a whole) when `heads` > 0.
Linear::Blocks blocks_of(const std::shared_ptr<const io::GgufFile>& file, const io::GgufTensor& t, int64_t heads) {
  Linear::Blocks b;
  b.type = t.type;
  b.rows = t.shape()[0];
  b.in = t.shape()[1];
  b.data = t.data;
  b.owner = file->mapping();
  if (heads > 0) {
    const auto row_bytes = static_cast<int64_t>(b.row_bytes());
    auto bytes = torch::from_blob(const_cast<unsigned char*>(t.data), {b.rows, row_bytes}, torch::kUInt8);
    auto reordered = std::make_shared<torch::Tensor>(qk_rows_to_hf(bytes, heads));
    b.data = reordered->data_ptr<uint8_t>();
    b.owner = reordered;
    io::mapped_release(t.data, t.nbytes);  // read once, into the copy: not resident twice
  }
  return b;
}

}  // namespace

ModelConfig gguf_config(const io::GgufFile& f) {
  const std::string model_type = model_type_of(f);
  const std::string p = model_type + ".";
  const std::string origin = f.path().string();
  const std::string scaling = f.find(p + "rope.scaling.type") ? f.get_string(p + "rope.scaling.type") : "none";
  if (scaling != "none" && scaling != "linear")
    throw FormatError(
        fmt::format("{}: metadata '{}rope.scaling.type' is '{}'; hearth applies none or linear", origin, p, scaling));
  if (f.find_tensor("rope_freqs.weight"))
    throw FormatError(
        fmt::format("{}: tensor 'rope_freqs.weight' (llama3-style RoPE scaling) is not supported for "
                    "GGUF models yet; use the Hugging Face folder",
                    origin));
  const auto& embd = f.tensor("token_embd.weight");
  nlohmann::json j = {
      {"model_type", model_type},
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
  if (scaling == "linear")
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

torch::Tensor gguf_tensor_decode(const io::GgufFile& f, const GgufTensorName& n) {
  const io::GgufTensor& t = f.tensor(n.gguf);
  if (t.shape() != n.shape)
    throw FormatError(fmt::format("{}: tensor '{}' has shape [{}]; expected [{}] from the metadata", f.path().string(),
                                  n.gguf, fmt::join(t.shape(), ", "), fmt::join(n.shape, ", ")));
  if (!quant::can_dequantize(t.type))
    throw FormatError(
        fmt::format("{}: tensor '{}' has type {}, which hearth cannot decode; expected F32, F16, BF16, "
                    "Q8_0, Q4_0, Q5_0, Q4_K, Q5_K or Q6_K",
                    f.path().string(), n.gguf, quant::ggml_type_name(t.type)));
  auto out = torch::empty(n.shape, torch::kFloat32);
  quant::dequantize(t.type, t.data, out.data_ptr<float>(), t.numel());
  io::mapped_release(t.data, t.nbytes);  // read once, into `out`: not resident twice
  return n.qk_heads > 0 ? qk_rows_to_hf(out, n.qk_heads) : out;
}

namespace {

// The HF-named float32 tensors (q/k rows in HF order), except those `skip` names (kept as blocks). With `keep`
// (the file), an F32 tensor in HF row order is a view of its mapping that keeps the mapping open, not a copy: a model
// then holds it once in memory, as a safetensors file's.
TensorMap tensors_except(const io::GgufFile& f, const ModelConfig& c,
                         const std::function<bool(const std::string&)>& skip,
                         const std::shared_ptr<const io::GgufFile>& keep = nullptr) {
  TensorMap t;
  for (const GgufTensorName& n : gguf_tensor_names(c)) {
    if (n.hf.empty() || skip(n.hf)) continue;
    const io::GgufTensor& g = f.tensor(n.gguf);
    if (keep && g.type == quant::GgmlType::kF32 && n.qk_heads == 0 && g.shape() == n.shape)
      t[n.hf] = torch::from_blob(
          const_cast<unsigned char*>(g.data), n.shape, [mapping = keep->mapping()](void*) {}, torch::kFloat32);
    else
      t[n.hf] = gguf_tensor_decode(f, n);
  }
  return t;
}

}  // namespace

TensorMap gguf_tensors(const io::GgufFile& f, const ModelConfig& c) {
  return tensors_except(f, c, [](const std::string&) { return false; });
}

GgufWeights gguf_weights(const std::shared_ptr<const io::GgufFile>& file, const ModelConfig& c, bool keep_blocks,
                         bool kernel_copies) {
  GgufWeights w;
  if (keep_blocks)
    for (const GgufTensorName& n : gguf_tensor_names(c)) {
      if (n.hf.empty() || n.shape.size() != 2) continue;  // matrices: the embedding, the head, the linears
      const io::GgufTensor& t = file->tensor(n.gguf);
      const bool kernels = quant::ggml_type_is_quantized(t.type) || quant::ggml_type_is_half(t.type);
      if (!kernels || !quant::can_dequantize(t.type) || t.dims.size() != 2) continue;
      Linear::Blocks b = blocks_of(file, t, n.qk_heads);
      w.blocks[n.hf] = kernel_copies && n.qk_heads > 0 ? b.copied_for_kernels() : std::move(b);
    }
  // Everything else decoded; the matrices kept as blocks are checked against the config by the model.
  w.dense = tensors_except(*file, c, [&](const std::string& hf) { return w.blocks.count(hf) > 0; }, file);
  return w;
}

std::unique_ptr<CausalLM> gguf_model_load(const std::filesystem::path& path, const LoadOptions& options) {
  std::shared_ptr<const io::GgufFile> file = io::GgufFile::open(path);
  ModelConfig config = gguf_config(*file);
  GgufWeights w = gguf_weights(file, config, options.device.is_cpu() || options.blocks_on_device,
                               options.device.is_cpu() && options.copy_blocks);
  auto model = causal_lm_from_tensors(config, w.dense, options, path.string(), w.blocks);
  // The metadata was parsed (its largest part, the vocabulary and merges, by the tokenizer from its own mapping):
  // its pages leave the resident set (~7 MiB for a 128k vocabulary) while the mapping stays for the tensors.
  file->mapping()->release(file->mapping()->data(), file->data_offset());
  file.reset();
  w = {};
  malloc_trim(0);
  return model;
}

}  // namespace hearth::model
