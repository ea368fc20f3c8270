// Scalar reference codecs between float32 and ggml's tensor types: dequantize (decode) and quantize (encode).
//
// These are the plain, portable definitions — the yardstick that fast kernels are tested against — not fast
// kernels themselves. Layouts are those of ggml's block structs (src/ggml-common.h); all multi-byte fields are
// little-endian and read byte by byte, so source pointers need no alignment. Per block of the type:
//
//   F32, F16, BF16  one element. F16 is IEEE binary16, BF16 the top half of a float32 (see quant/half.h).
//   Q8_0   32 el, 34 B:  f16 d | int8 q[32]                          x = d·q
//   Q4_0   32 el, 18 B:  f16 d | u8 qs[16]                           x[j] = d·((qs[j] & 15) − 8),
//                                                                    x[j+16] = d·((qs[j] >> 4) − 8)
//   Q5_0   32 el, 22 B:  f16 d | u32 qh | u8 qs[16]                  as Q4_0 with a fifth bit: bit j of qh for x[j],
//                                                                    bit j+16 for x[j+16]; x = d·(q − 16)
//   Q4_K  256 el, 144 B: f16 d | f16 dmin | u8 scales[12] | u8 qs[128]
//          8 sub-blocks of 32, each with a 6-bit scale sc and 6-bit min m packed in scales[12]
//          (j < 4: sc = scales[j] & 63, m = scales[j+4] & 63; j ≥ 4: sc = (scales[j+4] & 15) | (scales[j-4] >> 6) << 4,
//          m = (scales[j+4] >> 4) | (scales[j] >> 6) << 4). Each 32 bytes of qs hold two sub-blocks: low nibbles
//          the first, high nibbles the second. x = (d·sc)·q − (dmin·m).
//   Q5_K  256 el, 176 B: f16 d | f16 dmin | u8 scales[12] | u8 qh[32] | u8 qs[128]
//          as Q4_K with a fifth bit: sub-block s takes bit s of qh[l] for its element l. x = (d·sc)·q − (dmin·m).
//   Q6_K  256 el, 210 B: u8 ql[128] | u8 qh[64] | int8 scales[16] | f16 d
//          16 sub-blocks of 16 with signed 8-bit scales; 6-bit q = 4 low bits from ql, 2 high bits from qh, minus 32.
//          Per half of 128 elements (ql += 64, qh += 32, scales += 8), element l in [0, 32):
//          x[l] = low(ql[l]) | bits 0-1 of qh[l]; x[l+32] = low(ql[l+32]) | bits 2-3; x[l+64] = high(ql[l]) | bits 4-5;
//          x[l+96] = high(ql[l+32]) | bits 6-7; scale index l/16 + 0, 2, 4, 6. x = (d·sc)·q.
//   Q8_K  256 el, 292 B: f32 d | int8 q[256] | int16 bsums[16] (sums of 16 q's)  x = d·q
//
// The quantizers follow llama.cpp's reference ("_ref") quantizers without an importance matrix: Q8_0, Q4_0 and
// Q5_0 are round-to-nearest definitions, and the K types use the same per-sub-block scale/min search in the same
// float32 operation order, so llama-quantize output is reproduced byte for byte (tested on the kq256 fixture).
// All functions are pure and thread-safe.
#pragma once

#include <cstdint>

#include "quant/block_format.h"

namespace hearth::quant {

// Whether dequantize() / quantize() support this type. Dequantize: F32, F16, BF16, Q8_0, Q4_0, Q5_0, Q4_K,
// Q5_K, Q6_K, Q8_K. Quantize: the same set.
bool can_dequantize(GgmlType type);
bool can_quantize(GgmlType type);

// Decodes `n` elements (ggml_type_nbytes(type, n) bytes at `src`) into dst[0..n).
// Throws ConfigError if the type is unsupported or n is not a multiple of its block size.
void dequantize(GgmlType type, const void* src, float* dst, int64_t n);

// Encodes src[0..n) into ggml_type_nbytes(type, n) bytes at `dst`.
// Throws ConfigError if the type is unsupported, n is not a multiple of its block size, or — for the block types —
// an input is NaN or infinite (element index named) or a block's scale overflows the F16 range (|x| ≳ 8e6).
// F16/BF16 encode inf and NaN as such (and overflow to inf) like a cast would.
void quantize(GgmlType type, const float* src, void* dst, int64_t n);

}  // namespace hearth::quant
