#include "convert/quant_type.h"

#include <cctype>

#include <fmt/format.h>

#include "core/error.h"

namespace hearth::convert {

using quant::GgmlType;

const std::vector<QuantTypeInfo>& quant_type_all() {
  // llama_ftype values checked against the general.file_type of llama-quantize's kq256 files.
  static const std::vector<QuantTypeInfo> kTypes = {
      {QuantType::kF32, "f32", 0, GgmlType::kF32, "float32, no loss (32 bits per weight)"},
      {QuantType::kF16, "f16", 1, GgmlType::kF16, "IEEE half (16 bits per weight)"},
      {QuantType::kBF16, "bf16", 32, GgmlType::kBF16, "bfloat16 (16 bits per weight)"},
      {QuantType::kQ8_0, "q8_0", 7, GgmlType::kQ8_0, "8-bit blocks of 32 (8.5 bits per weight), near lossless"},
      {QuantType::kQ4_0, "q4_0", 2, GgmlType::kQ4_0, "4-bit blocks of 32, embeddings/head Q6_K (about 4.5-5 bits)"},
      {QuantType::kQ6_K, "q6_k", 18, GgmlType::kQ6_K, "6-bit k-quant (6.56 bits per weight)"},
      {QuantType::kQ4_K_M, "q4_k_m", 15, GgmlType::kQ4_K,
       "4-bit k-quant, Q6_K for the head and some attn_v/ffn_down (about 4.8-5 bits)"},
  };
  return kTypes;
}

const QuantTypeInfo& quant_type_info(QuantType type) {
  for (const auto& t : quant_type_all())
    if (t.type == type) return t;
  throw Error(fmt::format("quant_type_info: unknown QuantType {}", static_cast<int>(type)));
}

std::optional<QuantType> quant_type_parse(std::string_view name) {
  std::string lower;
  for (char c : name) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const auto& t : quant_type_all())
    if (lower == t.name) return t.type;
  return std::nullopt;
}

std::string quant_type_names() {
  std::string out;
  for (const auto& t : quant_type_all()) out += (out.empty() ? "" : ", ") + std::string(t.name);
  return out;
}

}  // namespace hearth::convert
