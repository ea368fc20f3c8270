// The ggml type table. Block sizes and byte counts follow the block structs of ggml's src/ggml-common.h
// (e.g. block_q4_K = {f16 d, f16 dmin, u8 scales[12], u8 qs[128]} = 144 bytes per 256 elements).
#include "quant/block_format.h"

#include <cctype>
#include <limits>

#include <fmt/format.h>

#include "core/error.h"

namespace hearth::quant {

namespace {

constexpr GgmlTypeInfo kTypes[] = {
    {GgmlType::kF32, "F32", 1, 4, false},
    {GgmlType::kF16, "F16", 1, 2, false},
    {GgmlType::kQ4_0, "Q4_0", 32, 2 + 16, true},          // f16 d, 32 × 4 bits
    {GgmlType::kQ4_1, "Q4_1", 32, 2 + 2 + 16, true},      // f16 d, f16 m, 32 × 4 bits
    {GgmlType::kQ5_0, "Q5_0", 32, 2 + 4 + 16, true},      // f16 d, 32 high bits, 32 × 4 bits
    {GgmlType::kQ5_1, "Q5_1", 32, 2 + 2 + 4 + 16, true},  // f16 d, f16 m, 32 high bits, 32 × 4 bits
    {GgmlType::kQ8_0, "Q8_0", 32, 2 + 32, true},          // f16 d, 32 × int8
    {GgmlType::kQ8_1, "Q8_1", 32, 2 + 2 + 32, true},      // f16 d, f16 s, 32 × int8
    {GgmlType::kQ2_K, "Q2_K", kQK_K, 16 + 64 + 2 + 2, true},
    {GgmlType::kQ3_K, "Q3_K", kQK_K, 32 + 64 + 12 + 2, true},
    {GgmlType::kQ4_K, "Q4_K", kQK_K, 2 + 2 + kKScaleSize + 128, true},
    {GgmlType::kQ5_K, "Q5_K", kQK_K, 2 + 2 + kKScaleSize + 32 + 128, true},
    {GgmlType::kQ6_K, "Q6_K", kQK_K, 128 + 64 + 16 + 2, true},
    {GgmlType::kQ8_K, "Q8_K", kQK_K, 4 + 256 + 2 * 16, true},  // f32 d, 256 × int8, 16 × int16 sums
    {GgmlType::kIQ2_XXS, "IQ2_XXS", kQK_K, 2 + 64, true},
    {GgmlType::kIQ2_XS, "IQ2_XS", kQK_K, 2 + 64 + 8, true},
    {GgmlType::kIQ3_XXS, "IQ3_XXS", kQK_K, 2 + 96, true},
    {GgmlType::kIQ1_S, "IQ1_S", kQK_K, 2 + 32 + 16, true},
    {GgmlType::kIQ4_NL, "IQ4_NL", 32, 2 + 16, true},
    {GgmlType::kIQ3_S, "IQ3_S", kQK_K, 2 + 64 + 8 + 32 + 4, true},
    {GgmlType::kIQ2_S, "IQ2_S", kQK_K, 2 + 64 + 8 + 8, true},
    {GgmlType::kIQ4_XS, "IQ4_XS", kQK_K, 2 + 2 + 4 + 128, true},
    {GgmlType::kI8, "I8", 1, 1, false},
    {GgmlType::kI16, "I16", 1, 2, false},
    {GgmlType::kI32, "I32", 1, 4, false},
    {GgmlType::kI64, "I64", 1, 8, false},
    {GgmlType::kF64, "F64", 1, 8, false},
    {GgmlType::kIQ1_M, "IQ1_M", kQK_K, 32 + 16 + 8, true},
    {GgmlType::kBF16, "BF16", 1, 2, false},
    {GgmlType::kTQ1_0, "TQ1_0", kQK_K, 48 + 4 + 2, true},
    {GgmlType::kTQ2_0, "TQ2_0", kQK_K, 64 + 2, true},
    {GgmlType::kMXFP4, "MXFP4", 32, 1 + 16, true},  // e8m0 shared exponent, 32 × 4 bits
};

bool iequal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::toupper(static_cast<unsigned char>(a[i])) != std::toupper(static_cast<unsigned char>(b[i]))) return false;
  return true;
}

}  // namespace

const GgmlTypeInfo* ggml_type_find(uint32_t id) {
  for (const auto& t : kTypes)
    if (static_cast<uint32_t>(t.type) == id) return &t;
  return nullptr;
}

const GgmlTypeInfo& ggml_type_info(GgmlType type) {
  const GgmlTypeInfo* info = ggml_type_find(static_cast<uint32_t>(type));
  if (!info) throw Error(fmt::format("ggml type: no entry for id {}", static_cast<uint32_t>(type)));
  return *info;
}

std::optional<GgmlType> ggml_type_parse(std::string_view name) {
  for (const auto& t : kTypes)
    if (iequal(t.name, name)) return t.type;
  return std::nullopt;
}

size_t ggml_type_nbytes(GgmlType type, int64_t n) {
  const GgmlTypeInfo& info = ggml_type_info(type);
  if (n < 0 || n % info.block_size != 0)
    throw ConfigError(
        fmt::format("ggml type {}: element count must be a multiple of {}; got {}", info.name, info.block_size, n));
  const uint64_t blocks = static_cast<uint64_t>(n / info.block_size);
  if (blocks > std::numeric_limits<size_t>::max() / info.block_bytes)
    throw ConfigError(fmt::format("ggml type {}: {} elements overflow a byte count", info.name, n));
  return static_cast<size_t>(blocks) * info.block_bytes;
}

}  // namespace hearth::quant
