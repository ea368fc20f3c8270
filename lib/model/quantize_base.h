// QLoRA's `quantize_base`: a Hugging Face model whose weight matrices are quantized to ggml blocks as they are read,
// so that only the blocks stay in memory (the float weights are read once from the memory map and released page
// by page, as `hearth inspect --verify` reads them).
//
// The matrices quantized are those a Linear holds: every *_proj.weight of the layers, the token embedding and the
// output head. A matrix whose rows are not whole blocks of the type (stories260K's FFN of 172) stays dense, as
// llama.cpp keeps such tensors in a float type. Norms and biases stay dense. The quantizers are lib/quant's
// (llama.cpp's reference quantizers, no importance matrix). Not here: writing a quantized file (`hearth quantize`,
// lib/convert).
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "model/causal_lm.h"
#include "model/layers.h"
#include "quant/block_format.h"

namespace hearth::model {

// "q8_0" | "q4_0" | "q4_k" (case-insensitive) -> the type; std::nullopt for anything else.
std::optional<quant::GgmlType> quantize_base_parse(std::string_view name);
// The accepted names, for messages: "q8_0, q4_0 or q4_k".
const char* quantize_base_names();

struct QuantizedWeights {
  TensorMap dense;                      // everything not quantized, as stored (memory-mapped)
  BlockMap blocks;                      // the quantized matrices, by HF name
  std::vector<std::string> kept_dense;  // matrices left dense because their rows are not whole blocks
};

// Reads DIR's safetensors and quantizes its matrices to `type`, rows split across the intra-op threads. Throws as
// checkpoint_tensors, and FormatError naming the file and tensor for a non-finite weight or a scale the type
// cannot hold.
QuantizedWeights weights_quantize(const std::filesystem::path& dir, quant::GgmlType type);

// config.json + weights_quantize, as a model (`options` as for causal_lm_load; on a GPU pass
// options.blocks_on_device to keep the blocks quantized there). Logs which matrices stayed dense.
std::unique_ptr<CausalLM> causal_lm_load_quantized(const std::filesystem::path& dir, const LoadOptions& options,
                                                   quant::GgmlType type);

// Bytes the base weights of `config` take once quantized to `type`: blocks for the matrices whose rows are whole
// blocks, `dense_bytes` per element for the rest (other matrices, norms, biases).
double quantized_base_bytes(const ModelConfig& config, quant::GgmlType type, double dense_bytes);

}  // namespace hearth::model
