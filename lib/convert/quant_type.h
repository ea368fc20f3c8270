// The output types of `hearth quantize` (and later `hearth export gguf`): names as users type them, the
// llama.cpp file type (`general.file_type`, enum llama_ftype in llama.cpp's include/llama.h) each one writes, and
// the ggml tensor type most weights get. Which tensors get which type is the mix (tensor_mix.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "quant/block_format.h"

namespace hearth::convert {

enum class QuantType { kF32, kF16, kBF16, kQ8_0, kQ4_0, kQ6_K, kQ4_K_M };

struct QuantTypeInfo {
  QuantType type;
  std::string_view name;     // "q4_k_m", as on the command line
  uint32_t llama_ftype;      // general.file_type: ALL_F32 0, MOSTLY_F16 1, Q4_0 2, Q8_0 7, Q4_K_M 15, Q6_K 18, BF16 32
  quant::GgmlType base;      // the type of most 2-D weights (Q4_K for q4_k_m)
  std::string_view summary;  // one line for --help and docs
};

// Every type, in the order --help lists them.
const std::vector<QuantTypeInfo>& quant_type_all();
const QuantTypeInfo& quant_type_info(QuantType type);
// Case-insensitive ("Q4_K_M" works too); std::nullopt if unknown.
std::optional<QuantType> quant_type_parse(std::string_view name);
// "f32, f16, bf16, q8_0, q4_0, q6_k, q4_k_m" — for error messages.
std::string quant_type_names();

}  // namespace hearth::convert
