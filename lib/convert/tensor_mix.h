// Which ggml type each tensor of a GGUF gets for an output type: llama.cpp's quantization mix.
//
// The rules are those of llama-quantize without an importance matrix, --pure or per-tensor overrides
// (llama.cpp src/llama-quant.cpp: tensor_allows_quantization, llama_tensor_get_type_impl, tensor_type_fallback),
// as far as they concern the families and types hearth writes; docs/quantize.md states them in full. In short:
//   - 1-D tensors (norms, biases, rope_freqs) and *_norm.weight stay F32; f32/f16/bf16 give every other weight
//     that type.
//   - Quantized types: the head (output.weight, or token_embd.weight when the head is tied) becomes Q6_K, or
//     stays Q8_0 for q8_0, or becomes Q8_0 when its row length is not a multiple of the type's block size.
//   - q4_k_m: attn_v.weight and ffn_down.weight of layer i use Q6_K when use_more_bits(i, n_layer):
//     i < n/8 || i >= 7n/8 || (i - n/8) % 3 == 2; attn_v of a "70B" (llama with 80 layers and grouped-query
//     attention, qwen2 with 80 layers) that would be Q4_K becomes Q5_K.
//   - A row length (ne[0]) that is not a multiple of the chosen type's block size falls back: Q4_K -> Q5_0,
//     Q6_K -> Q8_0, then F16 if even that does not fit. Where llama.cpp has no fallback (Q8_0, Q4_0: it refuses
//     the file) or would pick a type hearth cannot encode (Q5_K -> Q5_1), hearth uses F16.
// The kq256 fixture checks the result against llama-quantize for every tensor of every type.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "convert/quant_type.h"
#include "model/config.h"
#include "model/gguf_names.h"
#include "quant/block_format.h"

namespace hearth::convert {

// One tensor of the file to write, with its type.
struct PlannedTensor {
  model::GgufTensorName name;
  quant::GgmlType type = quant::GgmlType::kF32;  // what is written
  // Set when the row length did not fit the mix's choice and `type` is the fallback.
  std::optional<quant::GgmlType> wanted;
  // ne[] as GGUF lists them (row length first).
  std::vector<int64_t> dims() const { return {name.shape.rbegin(), name.shape.rend()}; }
};

// Every tensor of a GGUF of `config` (model::gguf_tensor_names order) with the type `type` gives it. Throws as
// model::gguf_tensor_names.
std::vector<PlannedTensor> gguf_model_plan(const model::ModelConfig& config, QuantType type);

}  // namespace hearth::convert
