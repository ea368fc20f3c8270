// IEEE binary16 (F16) and bfloat16 (BF16) ↔ float32 conversions, bit-exact and independent of the FPU's
// rounding mode.
//
// F16: 1 sign, 5 exponent (bias 15), 10 mantissa bits (IEEE 754-2008 binary16). BF16: the top 16 bits of a
// float32 (1 sign, 8 exponent, 7 mantissa). float32 → half rounds to nearest, ties to even — the rounding of
// ggml's GGML_FP32_TO_FP16 / GGML_FP32_TO_BF16 and numpy's astype — so files written with these match
// llama.cpp's byte for byte. Overflow gives ±inf; NaN gives a quiet NaN of the same sign. Subnormals are kept
// (no flush to zero). Widening is exact. Header-only: these sit in every inner loop of lib/quant.
#pragma once

#include <cstdint>
#include <cstring>

namespace hearth::quant {

inline uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof(u));
  return u;
}

inline float float_from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof(f));
  return f;
}

// Exact.
inline float f16_to_f32(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu;
  const uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0x1f) return float_from_bits(sign | 0x7f800000u | (mantissa << 13));  // inf / NaN
  if (exponent != 0) return float_from_bits(sign | ((exponent + 112) << 23) | (mantissa << 13));
  if (mantissa == 0) return float_from_bits(sign);  // ±0
  // Subnormal: mantissa × 2^-24. Normalise it into a float32 exponent.
  uint32_t e = 113;  // 2^-14 as a biased float32 exponent, before the shift below
  uint32_t m = mantissa;
  while ((m & 0x400u) == 0) {
    m <<= 1;
    --e;
  }
  return float_from_bits(sign | (e << 23) | ((m & 0x3ffu) << 13));
}

// Round to nearest, ties to even.
inline uint16_t f32_to_f16(float f) {
  const uint32_t u = float_bits(f);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  const uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return sign | 0x7e00u;   // NaN → quiet NaN
  if (a >= 0x477ff000u) return sign | 0x7c00u;  // ≥ 65520 (half-way past 65504) → inf
  if (a >= 0x38800000u) {                       // normal half (≥ 2^-14)
    uint32_t h = ((a >> 23) - 112) << 10 | ((a >> 13) & 0x3ffu);
    const uint32_t rest = a & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;  // a carry may step into the next exponent
    return static_cast<uint16_t>(sign | h);
  }
  if (a <= 0x33000000u) return sign;  // ≤ 2^-25 (half of the smallest subnormal) → ±0
  // Subnormal half: value / 2^-24 = m × 2^(e - 126), with e in [102, 112], rounded to an integer.
  const uint32_t m = (a & 0x7fffffu) | 0x800000u;
  const uint32_t shift = 126 - (a >> 23);
  uint32_t h = m >> shift;
  const uint32_t rest = m & ((1u << shift) - 1);
  const uint32_t half = 1u << (shift - 1);
  if (rest > half || (rest == half && (h & 1u))) ++h;  // 1024 becomes the smallest normal, correctly
  return static_cast<uint16_t>(sign | h);
}

// Exact.
inline float bf16_to_f32(uint16_t h) { return float_from_bits(uint32_t(h) << 16); }

// Round to nearest, ties to even.
inline uint16_t f32_to_bf16(float f) {
  const uint32_t u = float_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);  // quiet NaN
  return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

}  // namespace hearth::quant
