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

// The 6-bit scale and min of sub-block j (0..7) of a Q4_K/Q5_K super-block, from its 12 packed bytes.
inline void unpack_scale_min(int j, const uint8_t* s, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = s[j] & 63;
    *m = s[j + 4] & 63;
  } else {
    *sc = static_cast<uint8_t>((s[j + 4] & 0x0f) | ((s[j - 4] >> 6) << 4));
    *m = static_cast<uint8_t>((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
  }
}

// All 8 scales and mins of a Q4_K/Q5_K super-block.
struct KScales {
  uint8_t sc[8], m[8];
};
inline KScales unpack_scales(const uint8_t* s) {
  KScales u;
  for (int j = 0; j < 8; ++j) unpack_scale_min(j, s, &u.sc[j], &u.m[j]);
  return u;
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
