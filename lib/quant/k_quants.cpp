// The k-quant codecs Q4_K, Q5_K and Q6_K: 256-element super-blocks of sub-blocks with their own scales.
//
// Layouts: codec.h and docs/gguf.md. The quantizers follow llama.cpp's reference quantizers without an
// importance matrix (quantize_row_q{4,5,6}_K_ref in ggml/src/ggml-quants.c), which is what llama-quantize runs
// when no imatrix is given:
//   Q4_K/Q5_K: per 32-element sub-block, fit q ∈ [0, nmax] with x ≈ scale·q − min by a weighted least-squares
//     search over a few candidate inverse scales (weights |x| + rms of the sub-block); then encode the 8 scales and
//     8 mins as 6-bit multiples of the super-block's d = max scale / 63 and dmin = max min / 63, and re-round every
//     q against those encoded values.
//   Q6_K: per 16-element sub-block, fit a signed scale with q ∈ [−32, 31] by a search over 19 inverse scales
//     weighted by x², encode the 16 scales as int8 multiples of d = max |scale| / 128, then re-round.
// Every accumulation below is float32 in element order, as in the reference, because byte-exact output depends
// on it (the library is built with -ffp-contract=off for the same reason).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "quant/block_format.h"
#include "quant/codec_detail.h"

namespace hearth::quant::detail {

namespace {

constexpr float kGroupMaxEps = 1e-15f;  // below this a sub-block counts as all zero

// Fits x[0..n) ≈ scale·L − min with L ∈ [0, nmax] minimising Σ w·(scale·L − min − x)², trying inverse scales
// (nmax + rmin + rdelta·k) / (max − min) for k = 0..nstep and keeping the best least-squares (scale, min) pair.
// Returns scale; writes L and the (non-negative) min, such that x ≈ scale·L − *min_out.
float fit_scale_min(int n, int nmax, const float* x, const float* w, uint8_t* L, float* min_out, float rmin,
                    float rdelta, int nstep) {
  float min = x[0], max = x[0];
  float sum_w = w[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    sum_w += w[i];
    sum_x += w[i] * x[i];
  }
  if (min > 0) min = 0;
  if (max == min) {
    std::fill(L, L + n, uint8_t(0));
    *min_out = -min;
    return 0.0f;
  }
  float iscale = nmax / (max - min);
  float scale = 1 / iscale;
  float best_error = 0;
  for (int i = 0; i < n; ++i) {
    L[i] = static_cast<uint8_t>(std::max(0, std::min(nmax, nearest_int(iscale * (x[i] - min)))));
    const float diff = scale * L[i] + min - x[i];
    best_error += w[i] * (diff * diff);
  }
  uint8_t trial[32];
  for (int step = 0; step <= nstep; ++step) {
    iscale = (rmin + rdelta * step + nmax) / (max - min);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      const int l = std::max(0, std::min(nmax, nearest_int(iscale * (x[i] - min))));
      trial[i] = static_cast<uint8_t>(l);
      sum_l += w[i] * l;
      sum_l2 += w[i] * l * l;
      sum_xl += w[i] * l * x[i];
    }
    const float det = sum_w * sum_l2 - sum_l * sum_l;
    if (!(det > 0)) continue;
    float this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
    float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
    if (this_min > 0) {
      this_min = 0;
      this_scale = sum_xl / sum_l2;
    }
    float error = 0;
    for (int i = 0; i < n; ++i) {
      const float diff = this_scale * trial[i] + this_min - x[i];
      error += w[i] * (diff * diff);
    }
    if (error < best_error) {
      std::copy(trial, trial + n, L);
      best_error = error;
      scale = this_scale;
      min = this_min;
    }
  }
  *min_out = -min;
  return scale;
}

// Fits x[0..n) ≈ scale·(L − nmax) with L − nmax ∈ [−nmax, nmax − 1], weights x², trying inverse scales
// −(nmax + 0.1·k)/m for k = −9..9 (m: the value of largest magnitude). Returns the (signed) scale.
float fit_signed_scale(int n, int nmax, const float* x, int8_t* L) {
  float max = 0, amax = 0;
  for (int i = 0; i < n; ++i) {
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      max = x[i];
    }
  }
  if (amax < kGroupMaxEps) {
    std::fill(L, L + n, int8_t(0));
    return 0.0f;
  }
  auto level = [nmax](float v) { return std::max(-nmax, std::min(nmax - 1, nearest_int(v))); };
  float iscale = -nmax / max;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = level(iscale * x[i]);
    L[i] = static_cast<int8_t>(l + nmax);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * l;
    suml2 += w * l * l;
  }
  float scale = suml2 != 0 ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int step = -9; step <= 9; ++step) {
    if (step == 0) continue;
    iscale = -(nmax + 0.1f * step) / max;
    sumlx = suml2 = 0;
    for (int i = 0; i < n; ++i) {
      const int l = level(iscale * x[i]);
      const float w = x[i] * x[i];
      sumlx += w * x[i] * l;
      suml2 += w * l * l;
    }
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(nmax + level(iscale * x[i]));
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

// Packs 8 six-bit scales and mins into 12 bytes: bytes 0-3 scales 0-3 (+ top bits of scales 4-7),
// bytes 4-7 mins 0-3 (+ top bits of mins 4-7), bytes 8-11 low nibbles of scales 4-7 | mins 4-7.
void pack_scale_min(const uint8_t* ls, const uint8_t* lm, uint8_t* s) {
  std::memset(s, 0, kKScaleSize);
  for (int j = 0; j < 8; ++j) {
    if (j < 4) {
      s[j] = ls[j];
      s[j + 4] = lm[j];
    } else {
      s[j + 4] = static_cast<uint8_t>((ls[j] & 0x0f) | ((lm[j] & 0x0f) << 4));
      s[j - 4] |= static_cast<uint8_t>((ls[j] >> 4) << 6);
      s[j] |= static_cast<uint8_t>((lm[j] >> 4) << 6);
    }
  }
}

// Q4_K and Q5_K share everything up to the bit packing: fills the 12 scale bytes, d, dmin and the levels L.
// A sub-block whose encoded scale is zero keeps the levels of its fit, as in the reference.
void fit_super_block_with_mins(const float* x, int nmax, float rmin, float rdelta, int nstep, const char* type_name,
                               int64_t block, uint8_t* scales12, uint16_t* d_out, uint16_t* dmin_out, uint8_t* L) {
  float scales[8], mins[8], weights[32];
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < 8; ++j) {
    const float* xs = x + 32 * j;
    float sum_x2 = 0;
    for (int l = 0; l < 32; ++l) sum_x2 += xs[l] * xs[l];
    const float av_x = std::sqrt(sum_x2 / 32);
    for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(xs[l]);
    scales[j] = fit_scale_min(32, nmax, xs, weights, L + 32 * j, &mins[j], rmin, rdelta, nstep);
    if (scales[j] > max_scale) max_scale = scales[j];
    if (mins[j] > max_min) max_min = mins[j];
  }
  const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
  const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
  uint8_t ls[8], lm[8];
  for (int j = 0; j < 8; ++j) {
    // The reference stores nearest_int() into a uint8_t before capping at 63; keep that wrap-around.
    ls[j] = std::min<uint8_t>(63, static_cast<uint8_t>(nearest_int(inv_scale * scales[j])));
    lm[j] = std::min<uint8_t>(63, static_cast<uint8_t>(nearest_int(inv_min * mins[j])));
  }
  pack_scale_min(ls, lm, scales12);
  *d_out = scale_to_f16(max_scale / 63.f, type_name, block);
  *dmin_out = scale_to_f16(max_min / 63.f, type_name, block);
  const float d_all = f16_to_f32(*d_out), dmin_all = f16_to_f32(*dmin_out);
  for (int j = 0; j < 8; ++j) {
    uint8_t sc, m;
    unpack_scale_min(j, scales12, &sc, &m);
    const float d = d_all * sc;
    if (d == 0.0f) continue;
    const float dm = dmin_all * m;
    for (int l = 0; l < 32; ++l)
      L[32 * j + l] = static_cast<uint8_t>(std::max(0, std::min(nmax, nearest_int((x[32 * j + l] + dm) / d))));
  }
}

}  // namespace

// --- Q4_K: 144 bytes = d, dmin, scales[12], qs[128] ---
void quantize_q4_k(const float* x, uint8_t* y, int64_t nb) {
  uint8_t L[kQK_K];
  for (int64_t i = 0; i < nb; ++i, x += kQK_K, y += 144) {
    uint16_t d, dmin;
    fit_super_block_with_mins(x, 15, -1.0f, 0.1f, 20, "Q4_K", i, y + 4, &d, &dmin, L);
    store_u16(y, d);
    store_u16(y + 2, dmin);
    uint8_t* q = y + 4 + kKScaleSize;
    for (int j = 0; j < kQK_K; j += 64, q += 32)
      for (int l = 0; l < 32; ++l) q[l] = static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 4));
  }
}

void dequantize_q4_k(const uint8_t* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += 144) {
    const float d = load_f16(x), dmin = load_f16(x + 2);
    const uint8_t* scales = x + 4;
    const uint8_t* q = x + 4 + kKScaleSize;
    for (int j = 0; j < 8; j += 2, q += 32) {
      uint8_t sc, m;
      unpack_scale_min(j, scales, &sc, &m);
      const float d1 = d * sc, m1 = dmin * m;
      unpack_scale_min(j + 1, scales, &sc, &m);
      const float d2 = d * sc, m2 = dmin * m;
      for (int l = 0; l < 32; ++l) *y++ = d1 * (q[l] & 0x0f) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * (q[l] >> 4) - m2;
    }
  }
}

// --- Q5_K: 176 bytes = d, dmin, scales[12], qh[32], qs[128] ---
void quantize_q5_k(const float* x, uint8_t* y, int64_t nb) {
  uint8_t L[kQK_K];
  for (int64_t i = 0; i < nb; ++i, x += kQK_K, y += 176) {
    uint16_t d, dmin;
    fit_super_block_with_mins(x, 31, -0.5f, 0.1f, 15, "Q5_K", i, y + 4, &d, &dmin, L);
    store_u16(y, d);
    store_u16(y + 2, dmin);
    uint8_t* qh = y + 4 + kKScaleSize;
    uint8_t* ql = qh + 32;
    std::memset(qh, 0, 32);
    // Sub-block s (0..7) keeps its fifth bits in bit s of qh[0..32).
    for (int s = 0; s < 8; s += 2, ql += 32) {
      for (int l = 0; l < 32; ++l) {
        const int lo = L[32 * s + l], hi = L[32 * (s + 1) + l];
        qh[l] |= static_cast<uint8_t>(((lo >> 4) << s) | ((hi >> 4) << (s + 1)));
        ql[l] = static_cast<uint8_t>((lo & 0x0f) | ((hi & 0x0f) << 4));
      }
    }
  }
}

void dequantize_q5_k(const uint8_t* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += 176) {
    const float d = load_f16(x), dmin = load_f16(x + 2);
    const uint8_t* scales = x + 4;
    const uint8_t* qh = x + 4 + kKScaleSize;
    const uint8_t* ql = qh + 32;
    for (int j = 0; j < 8; j += 2, ql += 32) {
      uint8_t sc, m;
      unpack_scale_min(j, scales, &sc, &m);
      const float d1 = d * sc, m1 = dmin * m;
      unpack_scale_min(j + 1, scales, &sc, &m);
      const float d2 = d * sc, m2 = dmin * m;
      for (int l = 0; l < 32; ++l) *y++ = d1 * ((ql[l] & 0x0f) + (((qh[l] >> j) & 1) << 4)) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * ((ql[l] >> 4) + (((qh[l] >> (j + 1)) & 1) << 4)) - m2;
    }
  }
}

// --- Q6_K: 210 bytes = ql[128], qh[64], scales[16] (int8), d ---
void quantize_q6_k(const float* x, uint8_t* y, int64_t nb) {
  int8_t L[kQK_K];
  float scales[16];
  for (int64_t i = 0; i < nb; ++i, x += kQK_K, y += 210) {
    float max_scale = 0, max_abs_scale = 0;
    for (int ib = 0; ib < 16; ++ib) {
      scales[ib] = fit_signed_scale(16, 32, x + 16 * ib, L + 16 * ib);
      if (std::fabs(scales[ib]) > max_abs_scale) {
        max_abs_scale = std::fabs(scales[ib]);
        max_scale = scales[ib];
      }
    }
    std::memset(y, 0, 210);
    if (max_abs_scale < kGroupMaxEps) continue;  // all zero: d = 0, everything 0
    uint8_t* ql = y;
    uint8_t* qh = y + 128;
    int8_t* sc = reinterpret_cast<int8_t*>(y + 192);
    const float iscale = -128.f / max_scale;
    const uint16_t d16 = scale_to_f16(1 / iscale, "Q6_K", i);
    store_u16(y + 208, d16);
    for (int ib = 0; ib < 16; ++ib) sc[ib] = static_cast<int8_t>(std::min(127, nearest_int(iscale * scales[ib])));
    const float d_all = f16_to_f32(d16);
    for (int j = 0; j < 16; ++j) {
      const float d = d_all * sc[j];
      if (d == 0.0f) continue;
      for (int l = 0; l < 16; ++l)
        L[16 * j + l] = static_cast<int8_t>(32 + std::max(-32, std::min(31, nearest_int(x[16 * j + l] / d))));
    }
    for (int j = 0; j < kQK_K; j += 128, ql += 64, qh += 32) {
      for (int l = 0; l < 32; ++l) {
        const int q1 = L[j + l], q2 = L[j + l + 32], q3 = L[j + l + 64], q4 = L[j + l + 96];
        ql[l] = static_cast<uint8_t>((q1 & 0x0f) | ((q3 & 0x0f) << 4));
        ql[l + 32] = static_cast<uint8_t>((q2 & 0x0f) | ((q4 & 0x0f) << 4));
        qh[l] = static_cast<uint8_t>((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
      }
    }
  }
}

void dequantize_q6_k(const uint8_t* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += 210) {
    const float d = load_f16(x + 208);
    const uint8_t* ql = x;
    const uint8_t* qh = x + 128;
    const int8_t* sc = reinterpret_cast<const int8_t*>(x + 192);
    for (int half = 0; half < 2; ++half, y += 128, ql += 64, qh += 32, sc += 8) {
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = ((ql[l] & 0x0f) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l] = d * sc[is + 0] * q1;
        y[l + 32] = d * sc[is + 2] * q2;
        y[l + 64] = d * sc[is + 4] * q3;
        y[l + 96] = d * sc[is + 6] * q4;
      }
    }
  }
}

}  // namespace hearth::quant::detail
