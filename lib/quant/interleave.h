// Q4_0 and Q8_0 rows interleaved 16 at a time: the layout hearth's kernels for these types read, made once when a
// model loads from the GGUF rows (same bytes, reordered; nothing is decoded).
//
// Why: a row-at-a-time Q4_0 kernel spends most of its instructions moving each block's nibbles and scale into place
// (~25 per 64 weights); it reads ~19 GB/s on one Zen 5 core whether the weights are in cache or not. Interleaved, a
// 64-byte load holds 4 bytes (8 Q4_0 or 4 Q8_0 weights) of each of 16 rows, so one integer multiply-add serves 16
// rows at once and a 16-float register holds one block's scales for the 16 rows (bench/README.md, bench_kernels
// "Q4_0x16", "Q8_0x16").
//
// Layout of a group of 16 consecutive rows r0..r15 of n elements (nb = n/32 blocks), for each block b in order,
// 16 blocks' bytes (Q4_0: 16 × 18 = 288, Q8_0: 16 × 34 = 544, so the group takes exactly the bytes its rows took):
//   [0, 32)    the 16 rows' float16 scales d, row r at 2r;
//   then, for step s = 0..3 (Q4_0) or 0..7 (Q8_0), for row r = 0..15: bytes qs[4s .. 4s+4) of row r's block b
//              (64 bytes per step). Q4_0: weights 4s..4s+3 in the low nibbles and 16+4s..16+4s+3 in the high ones,
//              as in ggml's block; Q8_0: weights 4s..4s+3, signed bytes as in ggml's block.
// Rows past the last whole group (rows % 16 of them) follow in ggml's layout. Group g starts at byte g·16·row_bytes
// in both layouts, so a row range that starts on a group boundary has the same offset in either.
#pragma once

#include <cstdint>

#include "quant/block_format.h"

namespace hearth::quant {

inline constexpr int64_t kGroupRows = 16;

// True for the types that have an interleaved layout and kernels for it (Q4_0, Q8_0).
bool interleavable(GgmlType type);

// Throws Error unless `type` has the layout and rows [row_begin, row_end) of `rows` rows of n elements are whole
// groups of whole blocks: row_begin a multiple of 16, row_end one too or `rows`, n a positive multiple of 32.
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

}  // namespace hearth::quant
