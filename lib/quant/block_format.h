// ggml tensor types: ids, names, block sizes and bytes per block.
//
// A ggml tensor row is stored as consecutive blocks; a block holds `block_size` elements in `block_bytes`
// bytes (for F32/F16/BF16 and the integer types a "block" is one element). The ids are the `ggml_type`
// values of ggml's include/ggml.h, which GGUF stores per tensor (ggml docs/gguf.md); ids that ggml removed
// (4, 5, 31-33, 36-38) are unknown here. The byte layouts of the types hearth decodes are described in
// docs/gguf.md and in lib/quant/codec.h. This file only describes types; it does no arithmetic.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace hearth::quant {

// Elements per super-block of the k-quant types (Q2_K..Q8_K), and bytes of their packed 6-bit scales.
constexpr int64_t kQK_K = 256;
constexpr size_t kKScaleSize = 12;

enum class GgmlType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,
  kIQ2_XXS = 16,
  kIQ2_XS = 17,
  kIQ3_XXS = 18,
  kIQ1_S = 19,
  kIQ4_NL = 20,
  kIQ3_S = 21,
  kIQ2_S = 22,
  kIQ4_XS = 23,
  kI8 = 24,
  kI16 = 25,
  kI32 = 26,
  kI64 = 27,
  kF64 = 28,
  kIQ1_M = 29,
  kBF16 = 30,
  kTQ1_0 = 34,
  kTQ2_0 = 35,
  kMXFP4 = 39,
};

struct GgmlTypeInfo {
  GgmlType type;
  std::string_view name;  // ggml's spelling: "F32", "Q4_K", "BF16", ...
  int64_t block_size;     // elements per block
  size_t block_bytes;     // bytes per block
  bool quantized;         // false for the float and integer types (one element per block)
};

// nullptr for an id ggml does not define (or no longer supports).
const GgmlTypeInfo* ggml_type_find(uint32_t id);
// The entry for a valid enum value. Throws hearth::Error (internal) for a value outside the table.
const GgmlTypeInfo& ggml_type_info(GgmlType type);
// Case-insensitive ("q4_k" and "Q4_K" both work); std::nullopt if unknown.
std::optional<GgmlType> ggml_type_parse(std::string_view name);

inline std::string_view ggml_type_name(GgmlType type) { return ggml_type_info(type).name; }
inline int64_t ggml_type_block_size(GgmlType type) { return ggml_type_info(type).block_size; }
inline size_t ggml_type_block_bytes(GgmlType type) { return ggml_type_info(type).block_bytes; }
inline bool ggml_type_is_quantized(GgmlType type) { return ggml_type_info(type).quantized; }
// F16 or BF16: 16-bit floats, which the CPU kernels read as they are (quant/matvec.h).
inline bool ggml_type_is_half(GgmlType type) { return type == GgmlType::kF16 || type == GgmlType::kBF16; }

// Bytes taken by `n` elements. Throws hearth::ConfigError if n is negative or not a multiple of the block size.
size_t ggml_type_nbytes(GgmlType type, int64_t n);

}  // namespace hearth::quant
