// AVX2 + FMA variants of the integer block dot products (compiled with -mavx2 -mfma -mf16c; called only when
// CPUID reports them). Same results as the scalar reference up to the order of float additions: the
// per-block integer sums are exact.
#include <immintrin.h>

#include "quant/half.h"
#include "quant/matvec.h"

namespace hearth::quant::detail {
namespace {

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline uint16_t u16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }

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

float dot_q8_0(const uint8_t* w, const void* blocks, int64_t nb) {
  const auto* a = static_cast<const ActivationBlock32*>(blocks);
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t b = 0;
  for (; b + 1 < nb; b += 2, w += 68) {
    const __m256i x0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[b].q));
    const __m256i x1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[b + 1].q));
    const __m256i w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 2));
    const __m256i w1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 36));
    acc0 = _mm256_fmadd_ps(_mm256_set1_ps(f16_to_f32(u16(w)) * a[b].d), _mm256_cvtepi32_ps(dot32(w0, x0)), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_set1_ps(f16_to_f32(u16(w + 34)) * a[b + 1].d), _mm256_cvtepi32_ps(dot32(w1, x1)),
                           acc1);
  }
  for (; b < nb; ++b, w += 34) {
    const __m256i x0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[b].q));
    const __m256i w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 2));
    acc0 = _mm256_fmadd_ps(_mm256_set1_ps(f16_to_f32(u16(w)) * a[b].d), _mm256_cvtepi32_ps(dot32(w0, x0)), acc0);
  }
  return hsum(_mm256_add_ps(acc0, acc1));
}

float dot_q4_0(const uint8_t* w, const void* blocks, int64_t nb) {
  const auto* a = static_cast<const ActivationBlock32*>(blocks);
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t b = 0;
  for (; b + 1 < nb; b += 2, w += 36) {
    const __m256i x0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[b].q));
    const __m256i x1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[b + 1].q));
    acc0 = _mm256_fmadd_ps(_mm256_set1_ps(f16_to_f32(u16(w)) * a[b].d),
                           _mm256_cvtepi32_ps(dot32(unpack_q4_0(w + 2), x0)), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_set1_ps(f16_to_f32(u16(w + 18)) * a[b + 1].d),
                           _mm256_cvtepi32_ps(dot32(unpack_q4_0(w + 20), x1)), acc1);
  }
  for (; b < nb; ++b, w += 18) {
    const __m256i x0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[b].q));
    acc0 = _mm256_fmadd_ps(_mm256_set1_ps(f16_to_f32(u16(w)) * a[b].d),
                           _mm256_cvtepi32_ps(dot32(unpack_q4_0(w + 2), x0)), acc0);
  }
  return hsum(_mm256_add_ps(acc0, acc1));
}

}  // namespace

Kernels kernels_avx2() {
  Kernels k;
  k.q8_0 = dot_q8_0;
  k.q4_0 = dot_q4_0;
  return k;
}

}  // namespace hearth::quant::detail
