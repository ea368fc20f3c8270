#include "train/base_model.h"

#include <algorithm>
#include <filesystem>

#include <fmt/format.h>

#include "core/error.h"
#include "io/gguf.h"
#include "model/block_decode.h"
#include "model/config.h"
#include "model/gguf_model.h"
#include "model/quantize_base.h"
#include "quant/codec.h"
#include "tokenizer/gguf_vocab.h"

namespace hearth::train {
namespace fs = std::filesystem;

namespace {

// The tokenizer.* keys that decide how text becomes ids (not the chat template, not the padding id).
constexpr const char* kTokenizationKeys[] = {
    "tokenizer.ggml.model",         "tokenizer.ggml.pre",           "tokenizer.ggml.tokens",
    "tokenizer.ggml.scores",        "tokenizer.ggml.token_type",    "tokenizer.ggml.merges",
    "tokenizer.ggml.bos_token_id",  "tokenizer.ggml.eos_token_id",  "tokenizer.ggml.unknown_token_id",
    "tokenizer.ggml.add_bos_token", "tokenizer.ggml.add_eos_token", "tokenizer.ggml.add_space_prefix"};

const io::GgufValue* kv_find(const std::vector<io::GgufKv>& kv, const std::string& key) {
  for (const auto& e : kv)
    if (e.key == key) return &e.value;
  return nullptr;
}

}  // namespace

bool base_is_gguf(const recipe::LoraRecipe& r) {
  const fs::path p(r.model);
  return p.extension() == ".gguf" && !fs::is_directory(p);
}

std::optional<quant::GgmlType> base_quantize_type(const recipe::LoraRecipe& r) {
  if (r.quantize_base.empty()) return std::nullopt;
  auto t = model::quantize_base_parse(r.quantize_base);
  if (!t)
    throw ConfigError(
        fmt::format("quantize_base: expected {}, got '{}'", model::quantize_base_names(), r.quantize_base));
  return t;
}

model::ModelConfig base_config(const recipe::LoraRecipe& r) {
  if (base_is_gguf(r)) {
    if (!r.quantize_base.empty())
      throw ConfigError(
          fmt::format("quantize_base: the model {} is a GGUF file, already quantized; quantize_base "
                      "applies to a Hugging Face folder (remove the key to train through the file's blocks)",
                      r.model));
    return model::gguf_config(*io::GgufFile::open(r.model));
  }
  if (!fs::is_directory(r.model))
    throw IoError(
        fmt::format("model: '{}' is not a directory; expected a Hugging Face model folder or a .gguf file", r.model));
  base_quantize_type(r);
  return model::config_load(r.model);
}

void base_tokenizer_check(const recipe::LoraRecipe& r, const data::Dataset& dataset, const std::string& path) {
  if (!base_is_gguf(r)) {
    const std::string fingerprint = data::tokenizer_fingerprint(r.model);
    if (dataset.tokenizer_fingerprint() != fingerprint)
      throw ConfigError(
          fmt::format("datasets: {} was tokenized with another tokenizer ({}) than the model {} ({}); "
                      "re-run hearth ingest with --model {}",
                      path, dataset.tokenizer_fingerprint(), r.model, fingerprint, r.model));
    return;
  }
  const fs::path copy = fs::path(path) / dataset.manifest()["tokenizer"].value("dir", "tokenizer");
  auto file = io::GgufFile::open(r.model);
  std::vector<io::GgufKv> want;
  try {
    want = tokenizer::tokenizer_gguf_metadata(tokenizer::Tokenizer::load(copy));
  } catch (const FormatError& e) {
    throw ConfigError(
        fmt::format("datasets: {} was tokenized with a tokenizer GGUF cannot hold ({}), so not with the "
                    "tokenizer of {}",
                    path, e.what(), r.model));
  }
  for (const char* key : kTokenizationKeys) {
    const io::GgufValue* a = kv_find(want, key);
    const io::GgufValue* b = file->find(key);
    if ((a == nullptr) != (b == nullptr) || (a && *a != *b))
      throw ConfigError(
          fmt::format("datasets: {} was tokenized with another tokenizer ({}) than the model {}: its "
                      "metadata '{}' differs; re-run hearth ingest with the Hugging Face folder the GGUF "
                      "was made from",
                      path, copy.string(), r.model, key));
  }
}

double base_weight_bytes(const recipe::LoraRecipe& r, const model::ModelConfig& config, double dense_bytes,
                         torch::Device device) {
  if (auto type = base_quantize_type(r)) return model::quantized_base_bytes(config, *type, dense_bytes);
  if (!base_is_gguf(r)) return double(config.parameter_count()) * dense_bytes;
  auto file = io::GgufFile::open(r.model);
  double bytes = 0;
  for (const auto& t : file->tensors()) {
    if (t.name == "rope_freqs.weight") continue;
    const bool blocks = quant::ggml_type_is_quantized(t.type) && t.dims.size() == 2 &&
                        (device.is_cpu() || model::blocks_decodable(t.type));
    bytes += blocks ? double(t.nbytes) : double(t.numel()) * dense_bytes;
  }
  return bytes;
}

double base_block_decode_bytes(const recipe::LoraRecipe& r, const model::ModelConfig& c, torch::Device device) {
  if (!base_is_gguf(r) && r.quantize_base.empty()) return 0;
  const int64_t C = c.hidden_size, qkv = (c.num_attention_heads + 2 * c.num_key_value_heads) * c.head_dim;
  const double largest = double(std::max({c.vocab_size * C, 2 * c.intermediate_size * C, qkv * C})) * 4;
  return std::min(largest, 64.0 * 1024 * 1024) * (device.is_cpu() ? 1 : 4);
}

std::unique_ptr<model::CausalLM> base_load(const recipe::LoraRecipe& r, model::LoadOptions options) {
  options.blocks_on_device = true;
  options.copy_blocks = false;
  if (auto type = base_quantize_type(r)) return model::causal_lm_load_quantized(r.model, options, *type);
  return model::causal_lm_load(r.model, options);
}

}  // namespace hearth::train
