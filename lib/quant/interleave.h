// Q4_0, Q8_0, Q4_K and Q6_K rows interleaved 16 at a time: the layout hearth's kernels for these types read, made once
// when a model loads from the GGUF rows (same bytes, reordered; nothing is decoded).
//
// Why: a row-at-a-time Q4_0 kernel spends most of its instructions moving each block's nibbles and scale into place
// (~25 per 64 weights); it reads ~19 GB/s on one Zen 5 core whether the weights are in cache or not. Interleaved, a
// 64-byte load holds 4 bytes (8 Q4_0 or 4 Q8_0 weights) of each of 16 rows, so one integer multiply-add serves 16
// rows at once and a 16-float register holds one block's scales for the 16 rows (bench/README.md, bench_kernels
// "Q4_0x16", "Q8_0x16", "Q4_Kx16", "Q6_Kx16").
//
// Layout of a group of 16 consecutive rows r0..r15 of n elements, for each block b in order, the 16 rows' block b
// (so the group takes exactly the bytes its rows took): first each header field of the block, the 16 rows' copies
// side by side, then the block's weight bytes in steps of 64 bytes, each 4 bytes of each row:
//   Q4_0 (18 bytes a block) and Q8_0 (34):
//     [0, 32)      the float16 scale d, row r at 2r;
//     then, for step s = 0..3 (Q4_0) or 0..7 (Q8_0), for row r = 0..15: bytes qs[4s .. 4s+4) of row r's block
//                  (64 bytes per step). Q4_0: weights 4s..4s+3 in the low nibbles and 16+4s..16+4s+3 in the high
//                  ones, as in ggml's block; Q8_0: weights 4s..4s+3, signed bytes as in ggml's block.
//   Q4_K (144 bytes a 256-weight super-block):
//     [0, 32)      the float16 d, row r at 2r;      [32, 64)  the float16 dmin, row r at 32 + 2r;
//     [64, 256)    the 12 bytes of packed 6-bit scales and mins, byte k of row r at 64 + 16k + r;
//     then step s = 0..31: bytes qs[4s .. 4s+4) of each row at 256 + 64s + 4r. Steps 8j..8j+7 are the 32 bytes of
//                  weights 64j..64j+63: low nibbles sub-block 2j, high nibbles sub-block 2j+1, as in ggml's block.
//   Q6_K (210 bytes a 256-weight super-block; ggml's order ql[128], qh[64], scales[16], d):
//     [0, 32)      the float16 d, row r at 2r;
//     [32, 288)    the 16 signed 8-bit scales, scale k of row r at 32 + 16k + r;
//     then for h = 0, 1 and t = 0..7, three steps (64 bytes each, 4 bytes of each row): ql[64h + 4t ..+4),
//                  ql[64h + 32 + 4t ..+4) and qh[32h + 4t ..+4) — the bytes of weights 128h + 32i + 4t ..+3 for
//                  i = 0..3 (low nibbles of the first step i = 0, of the second i = 1, high nibbles i = 2, 3; bits
//                  2i, 2i+1 of the third), at 288 + 64·(24h + 3t + 0, 1, 2) + 4r.
// Rows past the last whole group (rows % 16 of them) follow in ggml's layout. Group g starts at byte g·16·row_bytes
// in both layouts, so a row range that starts on a group boundary has the same offset in either.
#pragma once

#include <cstdint>

#include "quant/block_format.h"

namespace hearth::quant {

inline constexpr int64_t kGroupRows = 16;

// True for the types that have an interleaved layout and kernels for it (Q4_0, Q8_0, Q4_K, Q6_K).
bool interleavable(GgmlType type);

// Throws Error unless `type` has the layout and rows [row_begin, row_end) of `rows` rows of n elements are whole
// groups of whole blocks: row_begin a multiple of 16, row_end one too or `rows`, n a positive multiple of the type's
// block size.
void interleaved_rows_check(GgmlType type, int64_t rows, int64_t n, int64_t row_begin, int64_t row_end);

// Rows [row_begin, row_end) of `rows` rows of n elements, from ggml's layout at `src` into the interleaved layout at
// `dst` (the same offsets; dst never overlaps src). row_begin is a multiple of 16; row_end is one too, or `rows`.
// Throws Error for a type without the layout or a range off the groups.
void interleave_rows(GgmlType type, const uint8_t* src, uint8_t* dst, int64_t rows, int64_t n, int64_t row_begin,
                     int64_t row_end);
// The inverse: interleaved rows back to ggml's layout.
void deinterleave_rows(GgmlType type, const uint8_t* src, uint8_t* dst, int64_t rows, int64_t n, int64_t row_begin,
                       int64_t row_end);
// Rows [r0, r1) of the interleaved matrix (`rows` rows of n elements at `data`) decoded to float32 into
// out[0 .. (r1 − r0)·n): the same values dequantize() gives for the rows in ggml's layout. Throws Error for rows
// outside [0, rows).
void dequantize_interleaved(GgmlType type, const uint8_t* data, int64_t rows, int64_t n, int64_t r0, int64_t r1,
                            float* out);
// Row r (< 16) of block b of a group at `group`, gathered back into ggml's layout at `out` (the type's block bytes).
void interleaved_block(GgmlType type, const uint8_t* group, int64_t r, int64_t b, uint8_t* out);

}  // namespace hearth::quant
