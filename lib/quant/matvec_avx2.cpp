// AVX2 + FMA variants of the integer block dot products (Q8_0, Q4_0, Q5_0, Q4_K, Q5_K, Q6_K) (compiled with -mavx2
// -mfma -mf16c; called only when CPUID reports them). Same results as the scalar reference up to the order of float
// additions: the per-block integer sums are exact.
#include <immintrin.h>

#include <cmath>
#include <cstring>
#include <utility>

#include "quant/matvec.h"

namespace hearth::quant::detail {
namespace {

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// A block's float16 scale, converted by the F16C instruction (exact, as half.h's f16_to_f32).
inline float scale16(const uint8_t* p) { return _cvtsh_ss(static_cast<uint16_t>(p[0] | (p[1] << 8))); }

// 8 int32 partial sums of Σ w[i]·x[i] over 32 signed bytes (|w|, |x| ≤ 127).
inline __m256i dot32(__m256i w, __m256i x) {
  const __m256i prod16 = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
  return _mm256_madd_epi16(prod16, _mm256_set1_epi16(1));
}

// 32 weights of a Q4_0 block as signed bytes: low nibbles first, then high nibbles, minus 8.
inline __m256i unpack_q4_0(const uint8_t* qs) {
  const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m128i mask = _mm_set1_epi8(15);
  const __m128i lo = _mm_and_si128(bytes, mask), hi = _mm_and_si128(_mm_srli_epi16(bytes, 4), mask);
  return _mm256_sub_epi8(_mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1), _mm256_set1_epi8(8));
}

// 32 weights of a Q5_0 block as signed bytes in [−16, 15]: as Q4_0's nibbles, with bit j of the little-endian
// u32 qh (bytes 2..5) as bit 4 of element j, minus 16.
inline __m256i unpack_q5_0(const uint8_t* blk) {
  const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 6));
  const __m128i mask = _mm_set1_epi8(15);
  const __m128i lo = _mm_and_si128(bytes, mask), hi = _mm_and_si128(_mm_srli_epi16(bytes, 4), mask);
  const __m256i nib = _mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1);
  const uint32_t qh = uint32_t(blk[2]) | uint32_t(blk[3]) << 8 | uint32_t(blk[4]) << 16 | uint32_t(blk[5]) << 24;
  // byte j <- byte j/8 of qh, then keep bit j%8: 0x10 where it is set
  const __m256i spread = _mm256_shuffle_epi8(
      _mm256_set1_epi32(static_cast<int32_t>(qh)),
      _mm256_setr_epi64x(0x0000000000000000, 0x0101010101010101, 0x0202020202020202, 0x0303030303030303));
  const __m256i bit = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201ULL));
  const __m256i fifth = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit), _mm256_set1_epi8(16));
  return _mm256_sub_epi8(_mm256_or_si256(nib, fifth), _mm256_set1_epi8(16));
}

// The three 32-element formats as the tiles below read them: a block's 32 weights as signed bytes.
struct Q8_0Rows {
  static constexpr int64_t kBytes = 34;
  static __m256i weights(const uint8_t* blk) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2)); }
};
struct Q4_0Rows {
  static constexpr int64_t kBytes = 18;
  static __m256i weights(const uint8_t* blk) { return unpack_q4_0(blk + 2); }
};
struct Q5_0Rows {
  static constexpr int64_t kBytes = 22;
  static __m256i weights(const uint8_t* blk) { return unpack_q5_0(blk); }
};

// y[c·ldy + r] = Σ_k W[r][k]·x_c[k] for RM weight rows from `w` (row_bytes apart) and RN activation rows x[0..RN),
// nb blocks each: every weight block is unpacked once for the RN activation rows. Each (r, c) keeps one
// accumulator and adds block by block in the same order whatever RM and RN are, so a product is bit-identical
// in a tile and alone (the 1×1 tile is the decode kernel).
template <class T, int RM, int RN>
void tile(const uint8_t* w, size_t row_bytes, const ActivationBlock32* const* x, int64_t nb, float* y, int64_t ldy) {
  __m256 acc[RM][RN];
  for (int r = 0; r < RM; ++r)
    for (int c = 0; c < RN; ++c) acc[r][c] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    __m256i xv[RN];
    for (int c = 0; c < RN; ++c) xv[c] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[c][b].q));
    for (int r = 0; r < RM; ++r) {
      const uint8_t* blk = w + r * row_bytes + b * T::kBytes;
      const __m256i wv = T::weights(blk);
      const __m256 wd = _mm256_set1_ps(scale16(blk));
      for (int c = 0; c < RN; ++c) {
        const __m256 s = _mm256_mul_ps(wd, _mm256_set1_ps(x[c][b].d));
        acc[r][c] = _mm256_fmadd_ps(s, _mm256_cvtepi32_ps(dot32(wv, xv[c])), acc[r][c]);
      }
    }
  }
  for (int r = 0; r < RM; ++r)
    for (int c = 0; c < RN; ++c) y[c * ldy + r] = hsum(acc[r][c]);
}

// kTileRows weight rows with ncols (a multiple of kTileCols) activation rows, in tiles of two rows × kTileCols
// (AVX2 has 16 vector registers: 2 × 4 accumulators fit).
template <class T>
void panel(const uint8_t* w, size_t row_bytes, const void* const* x, int64_t ncols, int64_t nb, float* y, int64_t ldy) {
  static_assert(kTileRows % 2 == 0);
  const auto* const* cols = reinterpret_cast<const ActivationBlock32* const*>(x);
  for (int64_t c = 0; c < ncols; c += kTileCols)
    for (int r = 0; r < kTileRows; r += 2)
      tile<T, 2, kTileCols>(w + r * row_bytes, row_bytes, cols + c, nb, y + c * ldy + r, ldy);
}

template <class T>
float dot(const uint8_t* w, const void* blocks, int64_t nb) {
  const auto* x = static_cast<const ActivationBlock32*>(blocks);
  float y;
  tile<T, 1, 1>(w, 0, &x, nb, &y, 1);
  return y;
}

// Σ over 32 pairs of unsigned bytes u (≤ 63) and signed bytes x, as 16-bit pair sums, times per-lane 16-bit
// scales -> 8 int32 partial sums.
inline __m256i dot_u8_scaled(__m256i u, __m256i x, __m256i scales16) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, x), scales16);
}

// The 8 six-bit scales and mins of a Q4_K/Q5_K super-block. A private copy of codec_detail.h's
// unpack_scales on purpose: an inline function shared with the generic translation units would be compiled
// here with AVX2 enabled, and the linker may keep this copy for all callers (an illegal instruction on
// CPUs without AVX2). SIMD translation units include no inline code of the generic ones.
struct KScales {
  uint8_t sc[8], m[8];
};
KScales unpack_scales(const uint8_t* s) {
  KScales u;
  for (int j = 0; j < 4; ++j) {
    u.sc[j] = s[j] & 63;
    u.m[j] = s[j + 4] & 63;
    u.sc[j + 4] = static_cast<uint8_t>((s[j + 8] & 15) | ((s[j] >> 6) << 4));
    u.m[j + 4] = static_cast<uint8_t>((s[j + 8] >> 4) | ((s[j + 4] >> 6) << 4));
  }
  return u;
}

// Q4_K and (kFive) Q5_K: x = d·sc·q − dmin·m per sub-block of 32; 8 sub-blocks per super-block. One weight row
// with RN activation rows x[0..RN): the row's nibbles and scales are unpacked once for all of them; each product
// adds in the same order whatever RN is (bit-identical in a tile and alone).
template <bool kFive, int RN>
void row_q45_k(const uint8_t* w, const ActivationBlock256* const* x, int64_t nb, float* y, int64_t ldy) {
  constexpr size_t kBytes = kFive ? 176 : 144;
  const __m256i low4 = _mm256_set1_epi8(15), one = _mm256_set1_epi8(1);
  __m256 acc[RN];
  float mins[RN];
  for (int c = 0; c < RN; ++c) {
    acc[c] = _mm256_setzero_ps();
    mins[c] = 0;
  }
  for (int64_t b = 0; b < nb; ++b, w += kBytes) {
    const float wd = scale16(w), wdmin = scale16(w + 2);
    const KScales u = unpack_scales(w + 4);
    const uint8_t* qs = w + (kFive ? 48 : 16);
    const __m256i qh = kFive ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 16)) : _mm256_setzero_si256();
    __m256i sumi[RN];
    for (int c = 0; c < RN; ++c) sumi[c] = _mm256_setzero_si256();
    for (int p = 0; p < 4; ++p) {
      const __m256i bytes = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 32 * p));
      __m256i lo = _mm256_and_si256(bytes, low4), hi = _mm256_and_si256(_mm256_srli_epi16(bytes, 4), low4);
      if (kFive) {
        lo = _mm256_add_epi8(lo, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * p), one), 4));
        hi = _mm256_add_epi8(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * p + 1), one), 4));
      }
      const __m256i sc_lo = _mm256_set1_epi16(u.sc[2 * p]), sc_hi = _mm256_set1_epi16(u.sc[2 * p + 1]);
      for (int c = 0; c < RN; ++c) {
        const int8_t* q = x[c][b].q + 64 * p;
        const __m256i x_lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q));
        const __m256i x_hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 32));
        sumi[c] = _mm256_add_epi32(sumi[c], dot_u8_scaled(lo, x_lo, sc_lo));
        sumi[c] = _mm256_add_epi32(sumi[c], dot_u8_scaled(hi, x_hi, sc_hi));
      }
    }
    for (int c = 0; c < RN; ++c) {
      const ActivationBlock256& a = x[c][b];
      int32_t summ = 0;
      for (int j = 0; j < 8; ++j) summ += int32_t(u.m[j]) * (a.sums[2 * j] + a.sums[2 * j + 1]);
      acc[c] = _mm256_fmadd_ps(_mm256_set1_ps(wd * a.d), _mm256_cvtepi32_ps(sumi[c]), acc[c]);
      mins[c] += wdmin * a.d * float(summ);
    }
  }
  for (int c = 0; c < RN; ++c) y[c * ldy] = hsum(acc[c]) - mins[c];
}

// Q6_K: x = d·sc·(q − 32) per sub-block of 16; q = 4 low bits (ql) | 2 high bits (qh) << 4. One weight row with
// RN activation rows, as row_q45_k.
template <int RN>
void row_q6_k(const uint8_t* w, const ActivationBlock256* const* x, int64_t nb, float* y, int64_t ldy) {
  const __m256i low4 = _mm256_set1_epi8(15), low2 = _mm256_set1_epi8(3);
  __m256 acc[RN];
  for (int c = 0; c < RN; ++c) acc[c] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b, w += 210) {
    const auto* sc = reinterpret_cast<const int8_t*>(w + 192);
    const float wd = scale16(w + 208);
    __m256i sumi[RN];
    for (int c = 0; c < RN; ++c) sumi[c] = _mm256_setzero_si256();
    for (int half = 0; half < 2; ++half) {
      const uint8_t* ql = w + 64 * half;
      const uint8_t* qhp = w + 128 + 32 * half;
      const int8_t* s = sc + 8 * half;
      const __m256i l0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql));
      const __m256i l1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql + 32));
      const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qhp));
      const __m256i q[4] = {
          _mm256_or_si256(_mm256_and_si256(l0, low4), _mm256_slli_epi16(_mm256_and_si256(h, low2), 4)),
          _mm256_or_si256(_mm256_and_si256(l1, low4),
                          _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2), low2), 4)),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), low4),
                          _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 4), low2), 4)),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), low4),
                          _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 6), low2), 4))};
      for (int k = 0; k < 4; ++k) {
        // 32 elements x[32k ..]: the first 16 with scale s[2k], the next 16 with s[2k + 1]
        const __m256i scales16 = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_set1_epi16(s[2 * k])),
                                                         _mm_set1_epi16(s[2 * k + 1]), 1);
        for (int c = 0; c < RN; ++c) {
          const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[c][b].q + 128 * half + 32 * k));
          sumi[c] = _mm256_add_epi32(sumi[c], dot_u8_scaled(q[k], xv, scales16));
        }
      }
    }
    for (int c = 0; c < RN; ++c) {
      const ActivationBlock256& a = x[c][b];
      int32_t offset = 0;  // Σ sc·Σx per sub-block of 16, for the −32
      for (int g = 0; g < 16; ++g) offset += int32_t(sc[g]) * a.sums[g];
      const float d = wd * a.d;
      acc[c] = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi[c]), acc[c]);
      acc[c] = _mm256_sub_ps(acc[c], _mm256_setr_ps(d * 32.0f * float(offset), 0, 0, 0, 0, 0, 0, 0));
    }
  }
  for (int c = 0; c < RN; ++c) y[c * ldy] = hsum(acc[c]);
}

// kTileRows weight rows of a k-quant with ncols (a multiple of kTileCols) activation rows: one row at a time with
// kTileCols activation rows.
template <void (*Row)(const uint8_t*, const ActivationBlock256* const*, int64_t, float*, int64_t)>
void k_panel(const uint8_t* w, size_t row_bytes, const void* const* x, int64_t ncols, int64_t nb, float* y,
             int64_t ldy) {
  const auto* const* cols = reinterpret_cast<const ActivationBlock256* const*>(x);
  for (int64_t c = 0; c < ncols; c += kTileCols)
    for (int r = 0; r < kTileRows; ++r) Row(w + r * row_bytes, cols + c, nb, y + c * ldy + r, ldy);
}

template <void (*Row)(const uint8_t*, const ActivationBlock256* const*, int64_t, float*, int64_t)>
float k_dot(const uint8_t* w, const void* blocks, int64_t nb) {
  const auto* x = static_cast<const ActivationBlock256*>(blocks);
  float y;
  Row(w, &x, nb, &y, 1);
  return y;
}

// Interleaved Q4_0 (quant/interleave.h), as the AVX-512 variant does it, one half of the group (8 rows, lane r row
// 8·half + r) at a time: each step's 64 bytes are two registers, one per half.
template <int RN>
void group_half_q4_0(const uint8_t* g, int half, const ActivationBlock32* const* x, int64_t nb, float* y, int64_t ldy) {
  __m256 acc[RN];
  for (int c = 0; c < RN; ++c) acc[c] = _mm256_setzero_ps();
  const __m256i mask = _mm256_set1_epi8(15);
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = g + b * Q4_0Rows::kBytes * kGroupRows;
    const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 16 * half)));
    __m256i pairs[RN];  // 16-bit pair sums stay exact: 8 pair sums of 2 products ≤ 15·127 each (30480 < 2^15)
    for (int c = 0; c < RN; ++c) pairs[c] = _mm256_setzero_si256();
    for (int s = 0; s < 4; ++s) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 32 + 64 * s + 32 * half));
      const __m256i lo = _mm256_and_si256(v, mask), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), mask);
      for (int c = 0; c < RN; ++c) {
        int32_t xl, xh;
        std::memcpy(&xl, x[c][b].q + 4 * s, 4);
        std::memcpy(&xh, x[c][b].q + 16 + 4 * s, 4);
        pairs[c] = _mm256_add_epi16(pairs[c], _mm256_add_epi16(_mm256_maddubs_epi16(lo, _mm256_set1_epi32(xl)),
                                                               _mm256_maddubs_epi16(hi, _mm256_set1_epi32(xh))));
      }
    }
    for (int c = 0; c < RN; ++c) {
      const __m256i sums = _mm256_add_epi32(_mm256_set1_epi32(-8 * x[c][b].sum),
                                            _mm256_madd_epi16(pairs[c], _mm256_set1_epi16(1)));
      acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), _mm256_mul_ps(d, _mm256_set1_ps(x[c][b].d)), acc[c]);
    }
  }
  for (int c = 0; c < RN; ++c) _mm256_storeu_ps(y + c * ldy + 8 * half, acc[c]);
}

// Interleaved Q8_0, the same way: 8 steps of 4 signed bytes per row; the sign goes onto the broadcast activations and
// maddubs takes |q| ≤ 128, whose pair sums (≤ 2·128·127) fit 16 bits, widened every step.
template <int RN>
void group_half_q8_0(const uint8_t* g, int half, const ActivationBlock32* const* x, int64_t nb, float* y, int64_t ldy) {
  __m256 acc[RN];
  for (int c = 0; c < RN; ++c) acc[c] = _mm256_setzero_ps();
  const __m256i ones = _mm256_set1_epi16(1);
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = g + b * Q8_0Rows::kBytes * kGroupRows;
    const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 16 * half)));
    __m256i sums[RN];
    for (int c = 0; c < RN; ++c) sums[c] = _mm256_setzero_si256();
    for (int s = 0; s < 8; ++s) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 32 + 64 * s + 32 * half));
      const __m256i magnitude = _mm256_sign_epi8(v, v);
      for (int c = 0; c < RN; ++c) {
        int32_t xw;
        std::memcpy(&xw, x[c][b].q + 4 * s, 4);
        const __m256i sx = _mm256_sign_epi8(_mm256_set1_epi32(xw), v);
        sums[c] = _mm256_add_epi32(sums[c], _mm256_madd_epi16(_mm256_maddubs_epi16(magnitude, sx), ones));
      }
    }
    for (int c = 0; c < RN; ++c)
      acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums[c]), _mm256_mul_ps(d, _mm256_set1_ps(x[c][b].d)), acc[c]);
  }
  for (int c = 0; c < RN; ++c) _mm256_storeu_ps(y + c * ldy + 8 * half, acc[c]);
}

// One activation row against the whole group, both halves in one pass over its bytes (decode reads each group from
// memory once); per lane the very operations of group_half_q8_0, so the same bits.
void group_one_q8_0(const uint8_t* g, const ActivationBlock32* x, int64_t nb, float* y) {
  __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
  const __m256i ones = _mm256_set1_epi16(1);
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = g + b * Q8_0Rows::kBytes * kGroupRows;
    __m256i sums[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
    for (int s = 0; s < 8; ++s) {
      int32_t xw;
      std::memcpy(&xw, x[b].q + 4 * s, 4);
      const __m256i xb = _mm256_set1_epi32(xw);
      for (int half = 0; half < 2; ++half) {
        const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 32 + 64 * s + 32 * half));
        sums[half] = _mm256_add_epi32(
            sums[half], _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(v, v), _mm256_sign_epi8(xb, v)), ones));
      }
    }
    for (int half = 0; half < 2; ++half) {
      const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 16 * half)));
      acc[half] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums[half]), _mm256_mul_ps(d, _mm256_set1_ps(x[b].d)), acc[half]);
    }
  }
  _mm256_storeu_ps(y, acc[0]);
  _mm256_storeu_ps(y + 8, acc[1]);
}

void group_q4_0(const uint8_t* g, const void* const* x, int64_t ncols, int64_t nb, float* y, int64_t ldy) {
  const auto* const* cols = reinterpret_cast<const ActivationBlock32* const*>(x);
  for (int half = 0; half < 2; ++half) {
    int64_t c = 0;
    for (; c + 4 <= ncols; c += 4) group_half_q4_0<4>(g, half, cols + c, nb, y + c * ldy, ldy);
    for (; c < ncols; ++c) group_half_q4_0<1>(g, half, cols + c, nb, y + c * ldy, ldy);
  }
}

void group_q8_0(const uint8_t* g, const void* const* x, int64_t ncols, int64_t nb, float* y, int64_t ldy) {
  const auto* const* cols = reinterpret_cast<const ActivationBlock32* const*>(x);
  const int64_t fours = ncols / 4 * 4;
  for (int half = 0; half < 2; ++half)
    for (int64_t c = 0; c < fours; c += 4) group_half_q8_0<4>(g, half, cols + c, nb, y + c * ldy, ldy);
  for (int64_t c = fours; c < ncols; ++c) group_one_q8_0(g, cols[c], nb, y + c * ldy);
}

}  // namespace

// Float32 rows (matmul_f32): NC activation rows against one weight row, two accumulators each (even and odd
// 8-float steps), so each (row, column) sum has the same order whatever NC.
template <int NC>
void f32_cols(const float* wr, int64_t k, const float* x, float* y, int64_t ldy) {
  __m256 a0[NC], a1[NC];
  for (int c = 0; c < NC; ++c) a0[c] = a1[c] = _mm256_setzero_ps();
  int64_t j = 0;
  for (; j + 16 <= k; j += 16) {
    const __m256 w0 = _mm256_loadu_ps(wr + j), w1 = _mm256_loadu_ps(wr + j + 8);
    for (int c = 0; c < NC; ++c) {
      a0[c] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + c * k + j), a0[c]);
      a1[c] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + c * k + j + 8), a1[c]);
    }
  }
  if (j + 8 <= k) {
    const __m256 w0 = _mm256_loadu_ps(wr + j);
    for (int c = 0; c < NC; ++c) a0[c] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + c * k + j), a0[c]);
    j += 8;
  }
  for (int c = 0; c < NC; ++c) {
    float s = hsum(_mm256_add_ps(a0[c], a1[c]));
    for (int64_t t = j; t < k; ++t) s += wr[t] * x[c * k + t];
    y[c * ldy] = s;
  }
}

void f32_rows(const float* w, int64_t k, const float* x, int64_t m, float* y, int64_t ldy, int64_t row_begin,
              int64_t row_end) {
  for (int64_t r = row_begin; r < row_end; ++r) {
    const float* wr = w + r * k;
    float* yr = y + (r - row_begin);
    int64_t i = 0;
    for (; i + 4 <= m; i += 4) f32_cols<4>(wr, k, x + i * k, yr + i * ldy, ldy);
    switch (m - i) {
      case 3: f32_cols<3>(wr, k, x + i * k, yr + i * ldy, ldy); break;
      case 2: f32_cols<2>(wr, k, x + i * k, yr + i * ldy, ldy); break;
      case 1: f32_cols<1>(wr, k, x + i * k, yr + i * ldy, ldy); break;
      default: break;
    }
  }
}

namespace {

// F16/BF16 rows (HalfFn): as f32_cols, the weights widened to float32 as they are loaded (F16C's conversion, or the
// bfloat16 bits moved to the top of each lane: both exact).
template <bool kBf16>
inline __m256 half8(const uint16_t* p) {
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  if constexpr (kBf16) return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  else return _mm256_cvtph_ps(h);
}

template <bool kBf16>
inline float half1(uint16_t h) {
  if constexpr (kBf16) return _mm_cvtss_f32(_mm_castsi128_ps(_mm_cvtsi32_si128(static_cast<int>(uint32_t(h) << 16))));
  else return _cvtsh_ss(h);
}

template <bool kBf16>
void widen(const uint16_t* src, float* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, half8<kBf16>(src + i));
  for (; i < n; ++i) dst[i] = half1<kBf16>(src[i]);
}

template <bool kBf16, int NC>
void half_cols(const uint16_t* wr, int64_t k, const float* const* x, float* y, int64_t ldy) {
  __m256 a0[NC], a1[NC];
  for (int c = 0; c < NC; ++c) a0[c] = a1[c] = _mm256_setzero_ps();
  int64_t j = 0;
  for (; j + 16 <= k; j += 16) {
    const __m256 w0 = half8<kBf16>(wr + j), w1 = half8<kBf16>(wr + j + 8);
    for (int c = 0; c < NC; ++c) {
      a0[c] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x[c] + j), a0[c]);
      a1[c] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x[c] + j + 8), a1[c]);
    }
  }
  if (j + 8 <= k) {
    const __m256 w0 = half8<kBf16>(wr + j);
    for (int c = 0; c < NC; ++c) a0[c] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x[c] + j), a0[c]);
    j += 8;
  }
  for (int c = 0; c < NC; ++c) {
    float s = hsum(_mm256_add_ps(a0[c], a1[c]));
    for (int64_t t = j; t < k; ++t) s += half1<kBf16>(wr[t]) * x[c][t];
    y[c * ldy] = s;
  }
}

template <bool kBf16>
void half_rows(const uint16_t* w, int64_t k, const float* const* x, int64_t m, float* y, int64_t ldy, int64_t row_begin,
               int64_t row_end) {
  for (int64_t r = row_begin; r < row_end; ++r) {
    const uint16_t* wr = w + r * k;
    float* yr = y + (r - row_begin);
    int64_t i = 0;
    for (; i + 4 <= m; i += 4) half_cols<kBf16, 4>(wr, k, x + i, yr + i * ldy, ldy);
    for (; i < m; ++i) half_cols<kBf16, 1>(wr, k, x + i, yr + i * ldy, ldy);
  }
}

// activations_prepare's rounding, 8 floats at a time: x·(127/max|x|) rounded to nearest even by adding and taking
// off 1.5·2^23 (the scalar variant's own operations, so the same bits), clamped to ±127, NaN to 0.
inline __m256i levels8(__m256 x, __m256 id) {
  const __m256 round = _mm256_set1_ps(12582912.0f);
  const __m256 v = _mm256_sub_ps(_mm256_add_ps(_mm256_mul_ps(x, id), round), round);
  const __m256 clamped = _mm256_min_ps(_mm256_max_ps(v, _mm256_set1_ps(-127.0f)), _mm256_set1_ps(127.0f));
  const __m256 number = _mm256_cmp_ps(v, v, _CMP_ORD_Q);
  return _mm256_cvtps_epi32(_mm256_and_ps(clamped, number));
}

// max |x[i]| over n floats (n a multiple of 8). vmaxps returns its second operand when one is NaN: NaN never wins,
// as in the scalar std::max.
inline float abs_max(const float* x, int n) {
  const __m256 magnitude = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  __m256 m = _mm256_setzero_ps();
  for (int i = 0; i < n; i += 8) m = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(x + i), magnitude), m);
  __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
  h = _mm_max_ps(h, _mm_movehl_ps(h, h));
  h = _mm_max_ss(h, _mm_movehdup_ps(h));
  return _mm_cvtss_f32(h);
}

inline int hsum_i32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}

// 32 floats to 32 levels at q (id = 127 / max|x| of the block); returns the sums of the first and second 16.
inline std::pair<int, int> levels32(const float* x, __m256 id, int8_t* q) {
  const __m256i a = levels8(_mm256_loadu_ps(x), id), b = levels8(_mm256_loadu_ps(x + 8), id);
  const __m256i c = levels8(_mm256_loadu_ps(x + 16), id), d = levels8(_mm256_loadu_ps(x + 24), id);
  // packs works within 128-bit lanes: the bytes come out as a0-3 b0-3 c0-3 d0-3 a4-7 b4-7 c4-7 d4-7; put them back.
  const __m256i packed = _mm256_packs_epi16(_mm256_packs_epi32(a, b), _mm256_packs_epi32(c, d));
  const __m256i ordered = _mm256_permutevar8x32_epi32(packed, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(q), ordered);
  return {hsum_i32(_mm256_add_epi32(a, b)), hsum_i32(_mm256_add_epi32(c, d))};
}

using Vec = __m256;
inline Vec broadcast(float v) { return _mm256_set1_ps(v); }

#include "quant/matvec_quantize.inc"

// weighted_rows_f32: 64 columns of o at a time in eight registers across every s (the scalar loop stores o back
// per s), then 8 and the rest; a multiply and an add per term, as the scalar loop.
void weighted_rows(const float* p, int64_t count, const float* v, int64_t ldv, int64_t n, float* o) {
  int64_t j = 0;
  for (; j + 64 <= n; j += 64) {
    __m256 acc[8];
    for (auto& a : acc) a = _mm256_setzero_ps();
    for (int64_t s = 0; s < count; ++s) {
      if (!(p[s] > 0.0f)) continue;
      const __m256 w = _mm256_set1_ps(p[s]);
      const float* vr = v + s * ldv + j;
      for (int c = 0; c < 8; ++c) acc[c] = _mm256_add_ps(acc[c], _mm256_mul_ps(w, _mm256_loadu_ps(vr + 8 * c)));
    }
    for (int c = 0; c < 8; ++c) _mm256_storeu_ps(o + j + 8 * c, acc[c]);
  }
  for (; j + 8 <= n; j += 8) {
    __m256 acc = _mm256_setzero_ps();
    for (int64_t s = 0; s < count; ++s)
      if (p[s] > 0.0f) acc = _mm256_add_ps(acc, _mm256_mul_ps(_mm256_set1_ps(p[s]), _mm256_loadu_ps(v + s * ldv + j)));
    _mm256_storeu_ps(o + j, acc);
  }
  for (; j < n; ++j) {
    float acc = 0.0f;
    for (int64_t s = 0; s < count; ++s)
      if (p[s] > 0.0f) acc += p[s] * v[s * ldv + j];
    o[j] = acc;
  }
}

}  // namespace

Kernels kernels_avx2() {
  Kernels k;
  k.weighted_f32 = weighted_rows;
  k.quantize32 = quantize32;
  k.quantize256 = quantize256;
  k.f32 = f32_rows;
  k.f16 = half_rows<false>;
  k.bf16 = half_rows<true>;
  k.widen_f16 = widen<false>;
  k.widen_bf16 = widen<true>;
  k.q8_0 = dot<Q8_0Rows>;
  k.q4_0 = dot<Q4_0Rows>;
  k.q5_0 = dot<Q5_0Rows>;
  k.q8_0_tile = panel<Q8_0Rows>;
  k.q4_0_tile = panel<Q4_0Rows>;
  k.q5_0_tile = panel<Q5_0Rows>;
  k.q4_k = k_dot<row_q45_k<false, 1>>;
  k.q5_k = k_dot<row_q45_k<true, 1>>;
  k.q6_k = k_dot<row_q6_k<1>>;
  k.q4_k_tile = k_panel<row_q45_k<false, kTileCols>>;
  k.q5_k_tile = k_panel<row_q45_k<true, kTileCols>>;
  k.q6_k_tile = k_panel<row_q6_k<kTileCols>>;
  k.q4_0_group = group_q4_0;
  k.q8_0_group = group_q8_0;
  return k;
}

}  // namespace hearth::quant::detail
