// Products of quantized weight rows with activations: the decode-time kernels (matrix × vector) that read the
// GGUF blocks in place.
//
// The activations are quantized once per product to 8-bit blocks — of 32 for Q8_0/Q4_0/Q5_0 weights, of 256
// with per-16 sums for the k-quants (ActivationBlock32/256 below; like ggml's Q8_0/Q8_K but with a float32
// scale) — so each block's dot product is an exact integer sum, scaled once in float. Weight types without a kernel
// (F32, F16, BF16) are decoded row by row. Variants: a portable scalar one (the reference the others are tested
// against), AVX2+FMA and AVX-512 (BW/VL, VNNI where present), each in its own translation unit compiled with its flags,
// chosen once at run time from CPUID; the binary itself stays generic x86-64. `HEARTH_KERNELS=scalar|avx2|avx512` caps
// the choice. Thread-safe: pure functions over caller-owned memory; callers split rows across threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "quant/block_format.h"
#include "quant/interleave.h"

namespace hearth::quant {

// 8-bit activation blocks: x[i] ≈ d·q[i], d = max|x| / 127 over the block, q rounded to nearest (even).
struct ActivationBlock32 {
  float d;
  int8_t q[32];
  int32_t sum;  // Σ q (Q4_0 rows store q + 8 unsigned and subtract 8·Σ x with it)
};
struct ActivationBlock256 {
  float d;
  int8_t q[256];
  int16_t sums[16];  // Σ of each 16 consecutive q (the k-quants subtract their minimums with these)
};

// Activations prepared for products with rows of one weight type.
struct Activations {
  GgmlType weight_type = GgmlType::kF32;
  int64_t n = 0;                         // elements (the rows' length)
  std::vector<ActivationBlock32> b32;    // for Q8_0, Q4_0 and Q5_0 rows
  std::vector<ActivationBlock256> b256;  // for Q4_K, Q5_K, Q6_K rows
  std::vector<float> values;             // for rows without an integer kernel (F32, F16, BF16, ...)
};

// Prepares x[0..n) for products with `weight_type` rows (reuses `out`'s storage). n must be a multiple of the
// weight type's block size. Throws ConfigError otherwise or for a type without a decoder.
void activations_prepare(GgmlType weight_type, const float* x, int64_t n, Activations& out);

// Y[i][r - row_begin] = Σ_k W[r][k]·x[i][k] for the m activation rows x[0..m) and the rows r in
// [row_begin, row_end) of W, whose rows are `row_bytes` bytes each (ggml_type_nbytes(type, x[i].n)) from `w`;
// y's rows are `ldy` floats apart. Each weight row is read once for all m activation rows (decode: m = 1;
// batched decode: m = the batch).
void matmul_rows(GgmlType type, const void* w, size_t row_bytes, const Activations* x, int64_t m, float* y, int64_t ldy,
                 int64_t row_begin, int64_t row_end);

// matmul_rows for `rows` Q4_0, Q8_0, Q4_K or Q6_K rows in the interleaved layout (quant/interleave.h): row_begin a
// multiple of kGroupRows, row_end one too or `rows`. Same contract otherwise; each product is bit-identical whatever m
// and the row range (not to matmul_rows on the same rows in ggml's layout: the float additions go in another order).
void matmul_interleaved(GgmlType type, const void* w, int64_t rows, const Activations* x, int64_t m, float* y,
                        int64_t ldy, int64_t row_begin, int64_t row_end);

// F16 and BF16 rows have kernels of their own (matmul_rows): the weights widened to float32 in registers (exactly),
// multiplied with the float32 activations (Activations::values), each (row, activation row) summed in the same order
// whatever m — reading 2 bytes per weight where a float32 copy of them read 4.

// n F16 or BF16 values at `src` widened to float32 into dst: the floats dequantize() gives (the conversion is exact;
// a NaN stays a NaN of its sign, F16C setting its quiet bit), with the variant's vector conversion. Throws Error for
// other types.
void widen(GgmlType type, const void* src, float* dst, int64_t n);

// Whether a model loading `type` rows for these kernels copies them into the interleaved layout (interleave.h):
// Q4_0 always; Q8_0 with the SIMD variants (the portable scalar one reads ggml's rows faster; bench/README.md,
// bench_kernels "Q8_0x16"); Q4_K and Q6_K with the AVX-512 ones (the others have no group kernels of their own for
// them).
bool interleave_at_load(GgmlType type);

// Y[i][r - row_begin] = Σ_j W[r][j]·x[i][j] for float32 weight rows W[r] = w + r·k (k floats each) and the m
// activation rows x + i·k, r in [row_begin, row_end); y's rows are `ldy` floats apart. Each weight row is read once
// for all m rows: a batched decode step of a float32 model, where sgemm would first copy the weights into its
// packed layout. Each (r, i) product adds in the same order whatever m and the row range.
void matmul_f32(const float* w, int64_t k, const float* x, int64_t m, float* y, int64_t ldy, int64_t row_begin,
                int64_t row_end);
// o[j] = Σ_s p[s]·v[s·ldv + j] for j < n over the s < count with p[s] > 0 (the others, and NaN, skipped), each sum
// in s order as a multiply and then an add (no fused multiply-add: every variant gives the scalar loop's bits).
// Attention's probability-weighted values.
void weighted_rows_f32(const float* p, int64_t count, const float* v, int64_t ldv, int64_t n, float* o);

// The most activation rows for which matmul_f32 beats sgemm on the variant in use: 16 for AVX-512 (4×4 tiles), 12
// otherwise (one weight row at a time; measured on the 135M shape, bench/README.md).
int64_t matmul_f32_max_rows();

// The variant matmul_rows uses: "avx512vnni", "avx512", "avx2" or "scalar".
const char* kernel_isa();

namespace detail {
// One variant's dot product of a weight row (nb blocks) with activation blocks of the matching kind.
using DotFn = float (*)(const uint8_t* row, const void* blocks, int64_t nb);
// A variant's products of kTileRows weight rows (row_bytes apart, from `rows`) with ncols activation rows, ncols a
// multiple of kTileCols (x[c]: the blocks of row c, of the kind the weight type takes), nb blocks each:
// y[c·ldy + r]. Bit-identical to the variant's DotFn on each pair.
inline constexpr int kTileRows = 4, kTileCols = 4;
using TileFn = void (*)(const uint8_t* rows, size_t row_bytes, const void* const* x, int64_t ncols, int64_t nb,
                        float* y, int64_t ldy);
// A variant's products of one group of kGroupRows interleaved rows (Q4_0, Q8_0, Q4_K or Q6_K) (nb blocks each) with
// ncols ≥ 1 activation rows x[c]: y[c·ldy + r] for r < kGroupRows. Each (r, c) adds in the same order whatever ncols.
using GroupFn = void (*)(const uint8_t* group, const void* const* x, int64_t ncols, int64_t nb, float* y, int64_t ldy);
// A variant's matmul_f32.
using F32Fn = void (*)(const float* w, int64_t k, const float* x, int64_t m, float* y, int64_t ldy, int64_t row_begin,
                       int64_t row_end);
// A variant's weighted_rows_f32.
using WeightedFn = void (*)(const float* p, int64_t count, const float* v, int64_t ldv, int64_t n, float* o);
// A variant's products of F16 or BF16 weight rows w + r·k (k elements each) with m float32 activation rows x[i]:
// y[i·ldy + (r − row_begin)] for r in [row_begin, row_end). Each (r, i) adds in the same order whatever m.
using HalfFn = void (*)(const uint16_t* w, int64_t k, const float* const* x, int64_t m, float* y, int64_t ldy,
                        int64_t row_begin, int64_t row_end);
// A variant's widen() of n F16 or BF16 values.
using WidenFn = void (*)(const uint16_t* src, float* dst, int64_t n);
// A variant's activations_prepare for `blocks` blocks of 32 (or 256) floats from x: each block's scale
// d = max|x| / 127 and levels round(x · 127 / max|x|) to nearest even, clamped to ±127 (NaN: 0; a block whose
// max|x| is 0, infinite or NaN: all zero), with their sums. Bit-identical to the scalar variant.
using Quantize32Fn = void (*)(const float* x, int64_t blocks, ActivationBlock32* out);
using Quantize256Fn = void (*)(const float* x, int64_t blocks, ActivationBlock256* out);
struct Kernels {
  // Decode takes one row at a time, in memory order: reading several rows' streams at once (to share the
  // activation loads) reads 2-4x slower from memory than one stream (bench_kernels on a matrix larger than the
  // last-level cache, every type and variant, on AMD Zen 5). Rows interleaved in memory at load are one stream.
  DotFn q8_0 = nullptr, q4_0 = nullptr, q5_0 = nullptr, q4_k = nullptr, q5_k = nullptr, q6_k = nullptr;
  TileFn q8_0_tile = nullptr, q4_0_tile = nullptr, q5_0_tile = nullptr;  // nullptr: one DotFn per pair
  TileFn q4_k_tile = nullptr, q5_k_tile = nullptr, q6_k_tile = nullptr;
  GroupFn q4_0_group = nullptr, q8_0_group = nullptr;  // interleaved Q4_0, Q8_0
  GroupFn q4_k_group = nullptr, q6_k_group = nullptr;  // interleaved Q4_K, Q6_K
  F32Fn f32 = nullptr;                                 // float32 rows
  HalfFn f16 = nullptr, bf16 = nullptr;
  WidenFn widen_f16 = nullptr, widen_bf16 = nullptr;
  Quantize32Fn quantize32 = nullptr;
  Quantize256Fn quantize256 = nullptr;
  WeightedFn weighted_f32 = nullptr;
};
// A variant's table; types it has no kernel for are taken from the scalar table.
Kernels kernels_scalar();
Kernels kernels_avx2();
Kernels kernels_avx512();
Kernels kernels_avx512_vnni();
// For tests: matmul_rows with a given variant ("scalar", "avx2", "avx512", "avx512vnni"); false if this CPU
// cannot run it.
bool matmul_rows_with(const char* isa, GgmlType type, const void* w, size_t row_bytes, const Activations* x, int64_t m,
                      float* y, int64_t ldy, int64_t row_begin, int64_t row_end);
// The same for matmul_interleaved.
bool matmul_interleaved_with(const char* isa, GgmlType type, const void* w, int64_t rows, const Activations* x,
                             int64_t m, float* y, int64_t ldy, int64_t row_begin, int64_t row_end);
// The same for activations_prepare.
bool activations_prepare_with(const char* isa, GgmlType weight_type, const float* x, int64_t n, Activations& out);
// The same for weighted_rows_f32.
bool weighted_rows_f32_with(const char* isa, const float* p, int64_t count, const float* v, int64_t ldv, int64_t n,
                            float* o);
// The same for widen.
bool widen_with(const char* isa, GgmlType type, const void* src, float* dst, int64_t n);
// The same for matmul_f32.
bool matmul_f32_with(const char* isa, const float* w, int64_t k, const float* x, int64_t m, float* y, int64_t ldy,
                     int64_t row_begin, int64_t row_end);
}  // namespace detail

}  // namespace hearth::quant
