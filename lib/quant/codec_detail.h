// Internals shared by the codec files of lib/quant (not part of the library's interface): byte loads/stores,
// ggml's round-to-nearest, F16 scale encoding, and the per-type block functions that codec.cpp dispatches to.
#pragma once

#include <cmath>
#include <cstdint>

#include "quant/half.h"

namespace hearth::quant::detail {

inline uint16_t load_u16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
inline void store_u16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
}
inline float load_f16(const uint8_t* p) { return f16_to_f32(load_u16(p)); }
inline float load_f32(const uint8_t* p) {
  return float_from_bits(uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24);
}
inline void store_f32(uint8_t* p, float v) {
  const uint32_t u = float_bits(v);
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(u >> (8 * i));
}

// Round half to even, as ggml's nearest_int (its magic-number trick) does for |x| < 2^22; independent of the
// FPU rounding mode. Saturates beyond ±2^22 and maps NaN to 0, so hostile values never reach an int cast.
inline int nearest_int(float x) {
  if (!(std::fabs(x) < 4194304.f)) return std::isnan(x) ? 0 : (x > 0 ? 4194304 : -4194304);
  const float r = std::floor(x);
  const float frac = x - r;  // exact for |x| < 2^23
  int i = static_cast<int>(r);
  if (frac > 0.5f || (frac == 0.5f && (i & 1))) ++i;
  return i;
}

// Encodes a block scale as F16. Throws ConfigError naming the type and block if it overflows to inf.
uint16_t scale_to_f16(float d, const char* type_name, int64_t block);

// One row of whole blocks each: `nb` blocks from x (nb × block_size floats) to y (nb × block_bytes bytes).
void quantize_q4_k(const float* x, uint8_t* y, int64_t nb);
void quantize_q5_k(const float* x, uint8_t* y, int64_t nb);
void quantize_q6_k(const float* x, uint8_t* y, int64_t nb);
void dequantize_q4_k(const uint8_t* x, float* y, int64_t nb);
void dequantize_q5_k(const uint8_t* x, float* y, int64_t nb);
void dequantize_q6_k(const uint8_t* x, float* y, int64_t nb);

}  // namespace hearth::quant::detail
