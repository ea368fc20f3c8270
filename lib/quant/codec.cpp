// Dispatch for quantize()/dequantize(), and the codecs of the float types and the simple block types
// (Q8_0, Q4_0, Q5_0, Q8_K). The k-quant types with sub-block scales live in k_quants.cpp. Formats: see codec.h.
#include "quant/codec.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include <fmt/format.h>

#include "core/error.h"
#include "quant/codec_detail.h"

namespace hearth::quant {

// F32 tensors are copied with memcpy and block fields assembled byte by byte; the host must be little-endian
// like the files.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "lib/quant assumes a little-endian host");

namespace detail {

uint16_t scale_to_f16(float d, const char* type_name, int64_t block) {
  const uint16_t h = f32_to_f16(d);
  if ((h & 0x7c00u) == 0x7c00u)
    throw ConfigError(
        fmt::format("quantize {}: block {}: scale {} exceeds the F16 range; the values are too large "
                    "for this type",
                    type_name, block, d));
  return h;
}

}  // namespace detail

namespace {

using detail::load_f16;
using detail::nearest_int;
using detail::scale_to_f16;

// --- Q8_0: d = max|x| / 127, q = round(x / d) (round half away from zero, as roundf) ---
void quantize_q8_0(const float* x, uint8_t* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += 32, y += 34) {
    float amax = 0.0f;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    detail::store_u16(y, scale_to_f16(d, "Q8_0", i));
    for (int j = 0; j < 32; ++j) {
      // |x·id| ≤ 127 up to rounding; the clamp only matters when 1/d overflowed (denormal d).
      const float q = std::round(x[j] * id);
      const float clamped = std::isnan(q) ? 0.0f : std::min(127.0f, std::max(-127.0f, q));
      y[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(clamped));
    }
  }
}

void dequantize_q8_0(const uint8_t* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += 34, y += 32) {
    const float d = load_f16(x);
    for (int j = 0; j < 32; ++j) y[j] = static_cast<int8_t>(x[2 + j]) * d;
  }
}

// --- Q4_0: d = m / −8 where m is the value of largest magnitude (sign kept), q = trunc(x/d + 8.5) ≤ 15 ---
uint8_t q4_0_level(float v) {
  // v = x/d + 8.5 lies in [0.5, 16.5] up to rounding; ggml truncates (int8 cast) and caps at 15.
  if (!(v >= 0.0f)) return 0;  // only reachable when 1/d overflowed
  return v >= 15.0f ? 15 : static_cast<uint8_t>(v);
}

void quantize_q4_0(const float* x, uint8_t* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += 32, y += 18) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < 32; ++j) {
      if (amax < std::fabs(x[j])) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    }
    const float d = max / -8;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    detail::store_u16(y, scale_to_f16(d, "Q4_0", i));
    for (int j = 0; j < 16; ++j) {
      const uint8_t lo = q4_0_level(x[j] * id + 8.5f);
      const uint8_t hi = q4_0_level(x[j + 16] * id + 8.5f);
      y[2 + j] = static_cast<uint8_t>(lo | (hi << 4));
    }
  }
}

void dequantize_q4_0(const uint8_t* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += 18, y += 32) {
    const float d = load_f16(x);
    for (int j = 0; j < 16; ++j) {
      y[j] = ((x[2 + j] & 0x0f) - 8) * d;
      y[j + 16] = ((x[2 + j] >> 4) - 8) * d;
    }
  }
}

// --- Q5_0: as Q4_0 with a fifth bit: d = m / −16, q = trunc(x/d + 16.5) ≤ 31; the low nibbles pack like Q4_0's
// and bit 4 of element j goes to bit j of the little-endian u32 qh ---
uint8_t q5_0_level(float v) {
  if (!(v >= 0.0f)) return 0;  // only reachable when 1/d overflowed
  return v >= 31.0f ? 31 : static_cast<uint8_t>(v);
}

void quantize_q5_0(const float* x, uint8_t* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += 32, y += 22) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < 32; ++j) {
      if (amax < std::fabs(x[j])) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    }
    const float d = max / -16;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    detail::store_u16(y, scale_to_f16(d, "Q5_0", i));
    uint32_t qh = 0;
    for (int j = 0; j < 16; ++j) {
      const uint8_t lo = q5_0_level(x[j] * id + 16.5f);
      const uint8_t hi = q5_0_level(x[j + 16] * id + 16.5f);
      y[6 + j] = static_cast<uint8_t>((lo & 0x0f) | ((hi & 0x0f) << 4));
      qh |= uint32_t(lo >> 4) << j;
      qh |= uint32_t(hi >> 4) << (j + 16);
    }
    for (int b = 0; b < 4; ++b) y[2 + b] = static_cast<uint8_t>(qh >> (8 * b));
  }
}

void dequantize_q5_0(const uint8_t* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += 22, y += 32) {
    const float d = load_f16(x);
    const uint32_t qh = uint32_t(x[2]) | uint32_t(x[3]) << 8 | uint32_t(x[4]) << 16 | uint32_t(x[5]) << 24;
    for (int j = 0; j < 16; ++j) {
      const int lo = (x[6 + j] & 0x0f) | int((qh >> j) & 1) << 4;
      const int hi = (x[6 + j] >> 4) | int((qh >> (j + 16)) & 1) << 4;
      y[j] = (lo - 16) * d;
      y[j + 16] = (hi - 16) * d;
    }
  }
}

// --- Q8_K: float32 d, q = round(−127·x/m) where m has the largest magnitude, plus sums of 16 q's ---
void quantize_q8_k(const float* x, uint8_t* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK_K, y += 292) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < kQK_K; ++j) {
      if (std::fabs(x[j]) > amax) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    }
    std::memset(y, 0, 292);
    if (amax == 0.0f) continue;
    const float iscale = -127.0f / max;
    int8_t* q = reinterpret_cast<int8_t*>(y + 4);
    for (int j = 0; j < kQK_K; ++j)
      q[j] = static_cast<int8_t>(std::max(-128, std::min(127, nearest_int(iscale * x[j]))));
    for (int g = 0; g < 16; ++g) {
      int sum = 0;
      for (int l = 0; l < 16; ++l) sum += q[16 * g + l];
      detail::store_u16(y + 4 + kQK_K + 2 * g, static_cast<uint16_t>(static_cast<int16_t>(sum)));
    }
    detail::store_f32(y, 1 / iscale);
  }
}

void dequantize_q8_k(const uint8_t* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += 292, y += kQK_K) {
    const float d = detail::load_f32(x);
    for (int j = 0; j < kQK_K; ++j) y[j] = d * static_cast<int8_t>(x[4 + j]);
  }
}

bool is_supported(GgmlType type) {
  switch (type) {
    case GgmlType::kF32:
    case GgmlType::kF16:
    case GgmlType::kBF16:
    case GgmlType::kQ8_0:
    case GgmlType::kQ4_0:
    case GgmlType::kQ5_0:
    case GgmlType::kQ4_K:
    case GgmlType::kQ5_K:
    case GgmlType::kQ6_K:
    case GgmlType::kQ8_K: return true;
    default: return false;
  }
}

// Validates type and count; returns the number of blocks.
int64_t check(const char* what, GgmlType type, int64_t n) {
  const GgmlTypeInfo* info = ggml_type_find(static_cast<uint32_t>(type));
  if (!info || !is_supported(type))
    throw ConfigError(
        fmt::format("{}: type {} is not supported; expected one of F32, F16, BF16, Q8_0, Q4_0, Q5_0, "
                    "Q4_K, Q5_K, Q6_K, Q8_K",
                    what, info ? info->name : fmt::format("id {}", static_cast<uint32_t>(type))));
  if (n < 0 || n % info->block_size != 0)
    throw ConfigError(
        fmt::format("{} {}: element count must be a multiple of {}; got {}", what, info->name, info->block_size, n));
  return n / info->block_size;
}

}  // namespace

bool can_dequantize(GgmlType type) { return is_supported(type); }
bool can_quantize(GgmlType type) { return is_supported(type); }

void dequantize(GgmlType type, const void* src, float* dst, int64_t n) {
  const int64_t nb = check("dequantize", type, n);
  const auto* x = static_cast<const uint8_t*>(src);
  switch (type) {
    case GgmlType::kF32: std::memcpy(dst, x, static_cast<size_t>(n) * 4); break;
    case GgmlType::kF16:
      for (int64_t i = 0; i < n; ++i) dst[i] = load_f16(x + 2 * i);
      break;
    case GgmlType::kBF16:
      for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(detail::load_u16(x + 2 * i));
      break;
    case GgmlType::kQ8_0: dequantize_q8_0(x, dst, nb); break;
    case GgmlType::kQ4_0: dequantize_q4_0(x, dst, nb); break;
    case GgmlType::kQ5_0: dequantize_q5_0(x, dst, nb); break;
    case GgmlType::kQ4_K: detail::dequantize_q4_k(x, dst, nb); break;
    case GgmlType::kQ5_K: detail::dequantize_q5_k(x, dst, nb); break;
    case GgmlType::kQ6_K: detail::dequantize_q6_k(x, dst, nb); break;
    case GgmlType::kQ8_K: dequantize_q8_k(x, dst, nb); break;
    default: break;  // rejected by check()
  }
}

void quantize(GgmlType type, const float* src, void* dst, int64_t n) {
  const int64_t nb = check("quantize", type, n);
  auto* y = static_cast<uint8_t*>(dst);
  if (ggml_type_is_quantized(type)) {
    for (int64_t i = 0; i < n; ++i)
      if (!std::isfinite(src[i]))
        throw ConfigError(
            fmt::format("quantize {}: element {} is {}; expected a finite value", ggml_type_name(type), i, src[i]));
  }
  switch (type) {
    case GgmlType::kF32: std::memcpy(y, src, static_cast<size_t>(n) * 4); break;
    case GgmlType::kF16:
      for (int64_t i = 0; i < n; ++i) detail::store_u16(y + 2 * i, f32_to_f16(src[i]));
      break;
    case GgmlType::kBF16:
      for (int64_t i = 0; i < n; ++i) detail::store_u16(y + 2 * i, f32_to_bf16(src[i]));
      break;
    case GgmlType::kQ8_0: quantize_q8_0(src, y, nb); break;
    case GgmlType::kQ4_0: quantize_q4_0(src, y, nb); break;
    case GgmlType::kQ5_0: quantize_q5_0(src, y, nb); break;
    case GgmlType::kQ4_K: detail::quantize_q4_k(src, y, nb); break;
    case GgmlType::kQ5_K: detail::quantize_q5_k(src, y, nb); break;
    case GgmlType::kQ6_K: detail::quantize_q6_k(src, y, nb); break;
    case GgmlType::kQ8_K: quantize_q8_k(src, y, nb); break;
    default: break;
  }
}

}  // namespace hearth::quant
