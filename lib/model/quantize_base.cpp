#include "model/quantize_base.h"

#include <algorithm>
#include <cctype>

#include <fmt/format.h>

#include "core/error.h"
#include "core/log.h"
#include "io/safetensors.h"
#include "model/checkpoint.h"
#include "model/parallel_rows.h"
#include "quant/codec.h"

namespace hearth::model {
namespace {

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// A weight matrix that a Linear holds (projection, embedding, head).
bool linear_matrix(const std::string& name, size_t dims) {
  return dims == 2 &&
         (ends_with(name, "_proj.weight") || name == "model.embed_tokens.weight" || name == "lm_head.weight");
}

}  // namespace

std::optional<quant::GgmlType> quantize_base_parse(std::string_view name) {
  std::string lower(name);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  if (lower == "q8_0") return quant::GgmlType::kQ8_0;
  if (lower == "q4_0") return quant::GgmlType::kQ4_0;
  if (lower == "q4_k") return quant::GgmlType::kQ4_K;
  return std::nullopt;
}

const char* quantize_base_names() { return "q8_0, q4_0 or q4_k"; }

QuantizedWeights weights_quantize(const std::filesystem::path& dir, quant::GgmlType type) {
  auto archive = io::SafetensorsArchive::open(dir);
  const int64_t block = quant::ggml_type_block_size(type);
  QuantizedWeights out;
  for (const auto& file : archive.files())
    for (const auto& view : file->tensors()) {
      torch::Tensor t = view_to_tensor(view, file);
      if (!linear_matrix(view.name, view.shape.size()) || !t.is_floating_point()) {
        out.dense[view.name] = t;
        continue;
      }
      if (view.shape[1] % block != 0) {
        out.kept_dense.push_back(view.name);
        out.dense[view.name] = t;
        continue;
      }
      try {
        out.blocks[view.name] = Linear::Blocks::quantized(t, type);
      } catch (const ConfigError& e) {  // a NaN/inf weight, or a scale beyond F16
        throw FormatError(fmt::format("{}: tensor '{}': {}", file->path().string(), view.name, e.what()));
      }
      file->mapping()->release(view.data, view.nbytes);  // read once: the float pages leave the resident set
    }
  return out;
}

std::unique_ptr<CausalLM> causal_lm_load_quantized(const std::filesystem::path& dir, const LoadOptions& options,
                                                   quant::GgmlType type) {
  ModelConfig config = config_load(dir);
  QuantizedWeights w = weights_quantize(dir, type);
  if (!w.kept_dense.empty())
    log::info("quantize_base {}: {} of {} matrices stay dense (rows not whole blocks of {}), e.g. {}",
              quant::ggml_type_name(type), w.kept_dense.size(), w.kept_dense.size() + w.blocks.size(),
              quant::ggml_type_block_size(type), w.kept_dense.front());
  return causal_lm_from_tensors(config, w.dense, options, dir.string(), w.blocks);
}

double quantized_base_bytes(const ModelConfig& c, quant::GgmlType type, double dense_bytes) {
  const int64_t block = quant::ggml_type_block_size(type);
  auto matrix = [&](int64_t rows, int64_t in) {
    if (in % block != 0) return double(rows) * double(in) * dense_bytes;
    return double(rows) * double(quant::ggml_type_nbytes(type, in));
  };
  const int64_t C = c.hidden_size, F = c.intermediate_size, q = c.num_attention_heads * c.head_dim,
                kv = c.num_key_value_heads * c.head_dim;
  const double per_layer = matrix(q, C) + 2 * matrix(kv, C) + matrix(C, q) + 2 * matrix(F, C) + matrix(C, F);
  const double embed = matrix(c.vocab_size, C) * (c.tie_word_embeddings ? 1 : 2);
  // What is left (norms, biases) stays dense.
  const int64_t matrices = c.num_hidden_layers * (C * (q + 2 * kv) + q * C + 3 * C * F) +
                           c.vocab_size * C * (c.tie_word_embeddings ? 1 : 2);
  return double(c.num_hidden_layers) * per_layer + embed + double(c.parameter_count() - matrices) * dense_bytes;
}

}  // namespace hearth::model
